//! Writer for the cpio "newc" (SVR4, no CRC) format: the boot bundle that QEMU
//! passes as `-initrd` and `hyp` reads its modules from.
//!
//! Output is deterministic so that the same inputs give the same bundle byte for
//! byte: inode numbers count from 1, mtime, uid and gid are 0, every file is
//! mode 0644, entries keep the order given.

use std::fmt;

/// Magic of the newc format (`070701`; `070702` would be the CRC variant).
const MAGIC: &str = "070701";
/// Name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";
/// `S_IFREG | 0644`.
const MODE_FILE: u32 = 0o100_644;

/// Why a bundle could not be written.
#[derive(Debug, PartialEq, Eq)]
pub enum CpioError {
    /// A name is empty, holds `/` or NUL, or is the trailer name.
    BadName(String),
    /// Two entries have the same name.
    Duplicate(String),
    /// A file does not fit the format's 32-bit size field.
    TooLarge(String),
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName(n) => write!(f, "bad module name {n:?} (flat names only)"),
            Self::Duplicate(n) => write!(f, "module {n:?} given twice"),
            Self::TooLarge(n) => write!(f, "module {n:?} is 4 GiB or larger"),
        }
    }
}

impl std::error::Error for CpioError {}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn header(out: &mut Vec<u8>, ino: u32, mode: u32, nlink: u32, name: &str, size: u32) {
    // Fields in order: ino mode uid gid nlink mtime filesize devmajor devminor
    // rdevmajor rdevminor namesize check. namesize counts the NUL.
    let namesize = name.len() as u32 + 1;
    let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, 0];
    out.extend_from_slice(MAGIC.as_bytes());
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    // The 110-byte header plus the name is padded to a multiple of 4.
    pad4(out);
}

/// Writes a newc archive holding `entries` (name, contents) and a trailer.
pub fn write(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, CpioError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, (name, data)) in entries.iter().enumerate() {
        if name.is_empty() || name.contains(['/', '\0']) || *name == TRAILER {
            return Err(CpioError::BadName((*name).to_owned()));
        }
        if !seen.insert(*name) {
            return Err(CpioError::Duplicate((*name).to_owned()));
        }
        let size =
            u32::try_from(data.len()).map_err(|_| CpioError::TooLarge((*name).to_owned()))?;
        header(&mut out, i as u32 + 1, MODE_FILE, 1, name, size);
        out.extend_from_slice(data);
        pad4(&mut out);
    }
    header(&mut out, 0, 0, 1, TRAILER, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_cpio_reader() {
        let big: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let entries: [(&str, &[u8]); 4] = [
            ("dom0", b"\x7fELF dom0"),
            ("demo.toml", b"name = \"demo\"\n"),
            ("empty", b""),
            ("demo-guest", &big),
        ];
        let archive = write(&entries).unwrap();
        assert_eq!(archive.len() % 4, 0);
        let got: Vec<_> = cpio_reader::iter_files(&archive)
            .map(|e| (e.name().to_owned(), e.file().to_vec(), e.mode()))
            .collect();
        assert_eq!(got.len(), entries.len());
        for ((name, data, mode), (want_name, want_data)) in got.iter().zip(entries) {
            assert_eq!(name, want_name);
            assert_eq!(data, want_data);
            assert!(mode.contains(cpio_reader::Mode::REGULAR_FILE));
        }
    }

    #[test]
    fn is_deterministic_and_ends_with_trailer() {
        let a = write(&[("x", b"1")]).unwrap();
        assert_eq!(a, write(&[("x", b"1")]).unwrap());
        let tail = b"TRAILER!!!\0";
        let pos = a.windows(tail.len()).rposition(|w| w == tail).unwrap();
        assert!(a[pos + tail.len()..].iter().all(|&b| b == 0));
        // Header layout: magic then 13 eight-digit hex fields.
        assert_eq!(&a[..6], b"070701");
        assert_eq!(&a[6..14], b"00000001");
        assert_eq!(&a[14..22], b"000081A4");
    }

    #[test]
    fn rejects_bad_and_duplicate_names() {
        assert!(matches!(write(&[("", b"")]), Err(CpioError::BadName(_))));
        assert!(matches!(write(&[("a/b", b"")]), Err(CpioError::BadName(_))));
        assert!(matches!(
            write(&[(TRAILER, b"")]),
            Err(CpioError::BadName(_))
        ));
        assert!(matches!(
            write(&[("a", b""), ("a", b"")]),
            Err(CpioError::Duplicate(_))
        ));
    }
}
