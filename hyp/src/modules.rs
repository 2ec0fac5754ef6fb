//! Boot modules: the initrd is a cpio "newc" archive (`dom0`, guest images,
//! `*.toml` domain configurations), read with the `cpio_reader` crate.
//!
//! Public API:
//! - [`Modules::new`]`(archive: &[u8]) -> Result<Modules<'_>, ModuleError>`
//! - [`Modules::iter`]` -> impl Iterator<Item = Module<'_>>` (regular files only)
//! - [`Modules::find`]`(name) -> Option<Module<'_>>`, [`Modules::len`]
//! - [`Module`] `{ name, data }`
//!
//! `new` validates the whole archive up front: every header must be "newc"
//! (magic `070701`, or `070702` with a correct checksum), entries must be laid out
//! back to back with the format's 4-byte padding, names must be unique, and the
//! archive must end with the `TRAILER!!!` entry. A truncated or corrupt archive is
//! an error rather than a silently shorter module list. Leading `./` and `/` are
//! stripped from names.
#![forbid(unsafe_code)]

use cpio_reader::Mode;

/// Size of a newc header: 6-byte magic and 13 eight-digit hex fields.
const NEWC_HEADER_LEN: usize = 110;
/// Offset of the `namesize` field in a newc header.
const NEWC_NAMESIZE_OFFSET: usize = 94;
/// Digits of one numeric header field.
const NEWC_FIELD_LEN: usize = 8;
/// newc aligns names and file data to 4 bytes.
const NEWC_ALIGN: usize = 4;
/// Magic of plain newc and of newc with checksums.
const NEWC_MAGIC: &[u8] = b"070701";
const NEWC_CRC_MAGIC: &[u8] = b"070702";
/// Name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";
/// Bits of `mode` that give the file type (POSIX `S_IFMT`).
const FILE_TYPE_MASK: u32 = 0o170_000;

/// Why an archive was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleError {
    /// An entry is not a valid newc header (bad magic, digits, mode or checksum),
    /// or runs past the end of the archive.
    Corrupt {
        /// Byte offset of the bad entry.
        offset: usize,
    },
    /// The archive ends without a `TRAILER!!!` entry.
    MissingTrailer,
    /// Two regular files have the same name.
    DuplicateName,
}

/// One boot module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module<'a> {
    /// File name without a leading `./`.
    pub name: &'a str,
    /// Contents.
    pub data: &'a [u8],
}

/// A validated module archive.
#[derive(Clone, Copy, Debug)]
pub struct Modules<'a> {
    archive: &'a [u8],
}

fn align(n: usize) -> Option<usize> {
    n.checked_next_multiple_of(NEWC_ALIGN)
}

fn clean_name(name: &str) -> &str {
    let name = name.trim_start_matches("./");
    name.trim_start_matches('/')
}

fn is_regular(mode: Mode) -> bool {
    mode.bits() & FILE_TYPE_MASK == Mode::REGULAR_FILE.bits()
}

/// The name of the newc entry at `offset`, read directly (the crate hides the
/// trailer). `None` if no well-formed header starts there.
fn raw_entry_name(archive: &[u8], offset: usize) -> Option<&str> {
    let header = archive.get(offset..offset.checked_add(NEWC_HEADER_LEN)?)?;
    if !(header.starts_with(NEWC_MAGIC) || header.starts_with(NEWC_CRC_MAGIC)) {
        return None;
    }
    let field = header.get(NEWC_NAMESIZE_OFFSET..NEWC_NAMESIZE_OFFSET + NEWC_FIELD_LEN)?;
    let namesize = usize::from_str_radix(core::str::from_utf8(field).ok()?, 16).ok()?;
    let start = offset + NEWC_HEADER_LEN;
    let name = archive.get(start..start.checked_add(namesize.checked_sub(1)?)?)?;
    core::str::from_utf8(name).ok()
}

impl<'a> Modules<'a> {
    /// Validates `archive` (see the module documentation).
    pub fn new(archive: &'a [u8]) -> Result<Self, ModuleError> {
        let mut offset = 0usize;
        for entry in cpio_reader::iter_files(archive) {
            // The crate also accepts other cpio formats; insist on newc and on the
            // layout we expect, so that `offset` tracks it exactly.
            let corrupt = ModuleError::Corrupt { offset };
            if raw_entry_name(archive, offset) != Some(entry.name()) {
                return Err(corrupt);
            }
            let name_end = offset + NEWC_HEADER_LEN + entry.name().len() + 1;
            let data_start = align(name_end).ok_or(corrupt)?;
            let data_end = data_start.checked_add(entry.file().len()).ok_or(corrupt)?;
            if archive.get(data_start..data_end).map(|d| d.as_ptr()) != Some(entry.file().as_ptr())
            {
                return Err(corrupt);
            }
            offset = align(data_end).ok_or(corrupt)?;
        }
        match raw_entry_name(archive, offset) {
            Some(TRAILER) => {}
            Some(_) => return Err(ModuleError::Corrupt { offset }),
            None => return Err(ModuleError::MissingTrailer),
        }
        let modules = Self { archive };
        for (i, a) in modules.iter().enumerate() {
            if modules.iter().skip(i + 1).any(|b| b.name == a.name) {
                return Err(ModuleError::DuplicateName);
            }
        }
        Ok(modules)
    }

    /// The regular files, in archive order (directories and links are skipped).
    pub fn iter(&self) -> impl Iterator<Item = Module<'a>> + 'a {
        cpio_reader::iter_files(self.archive)
            .filter(|e| is_regular(e.mode()))
            .map(|e| Module {
                name: clean_name(e.name()),
                data: e.file(),
            })
    }

    /// The module called `name`.
    pub fn find(&self, name: &str) -> Option<Module<'a>> {
        self.iter().find(|m| m.name == name)
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no modules.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const REG: u32 = 0o100_644;
    const DIR: u32 = 0o040_755;

    /// Appends one newc entry, written by hand from the format description.
    fn entry(out: &mut Vec<u8>, name: &str, data: &[u8], mode: u32) {
        let fields = [
            1,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(NEWC_MAGIC);
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }

    fn archive(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (n, d, m) in files {
            entry(&mut v, n, d, *m);
        }
        entry(&mut v, TRAILER, &[], 0);
        v
    }

    fn sample() -> Vec<u8> {
        archive(&[
            (".", b"", DIR),
            ("./dom0", b"\x7fELF dom0 image", REG),
            ("guests", b"", DIR),
            ("demo.toml", b"name = \"demo\"\n", REG),
            ("odd", b"abc", REG),
            ("empty", b"", REG),
        ])
    }

    #[test]
    fn lists_and_finds_files() {
        let a = sample();
        let m = Modules::new(&a).unwrap();
        let names: Vec<_> = m.iter().map(|m| m.name).collect();
        assert_eq!(names, ["dom0", "demo.toml", "odd", "empty"]);
        assert_eq!(m.len(), 4);
        assert!(!m.is_empty());
        assert_eq!(m.find("dom0").unwrap().data, b"\x7fELF dom0 image");
        assert_eq!(m.find("odd").unwrap().data, b"abc");
        assert_eq!(m.find("empty").unwrap().data, b"");
        assert_eq!(m.find("guests"), None, "directories are not modules");
        assert_eq!(m.find("missing"), None);
    }

    #[test]
    fn empty_archive_is_valid() {
        let a = archive(&[]);
        let m = Modules::new(&a).unwrap();
        assert!(m.is_empty());
    }

    #[test]
    fn truncation_is_rejected() {
        let a = sample();
        assert_eq!(Modules::new(&[]).err(), Some(ModuleError::MissingTrailer));
        // Cutting only the trailer's padding (up to 3 bytes) is harmless.
        for cut in [5, 50, 120, 200, a.len() / 2, a.len() - 4] {
            assert!(Modules::new(&a[..a.len() - cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn corruption_is_rejected() {
        let mut a = sample();
        // Bad magic on the second entry.
        let second = a
            .windows(6)
            .enumerate()
            .filter(|(_, w)| *w == NEWC_MAGIC)
            .nth(1)
            .unwrap()
            .0;
        a[second] = b'X';
        assert!(Modules::new(&a).is_err());
        // Other cpio formats are refused.
        let mut odc = b"070707".to_vec();
        odc.extend_from_slice(&[b'0'; 70]);
        assert!(Modules::new(&odc).is_err());
        // Garbage after the trailer is fine (padding), garbage instead of it is not.
        let mut b = archive(&[("x", b"1", REG)]);
        b.extend_from_slice(&[0; 512]);
        assert!(Modules::new(&b).is_ok());
    }

    #[test]
    fn duplicates_are_rejected() {
        let a = archive(&[("dom0", b"a", REG), ("./dom0", b"b", REG)]);
        assert_eq!(Modules::new(&a).err(), Some(ModuleError::DuplicateName));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Modules::new(&bytes).map(|m| m.len());
        }

        #[test]
        fn mutated_archives_never_panic(pos in 0usize..400, byte in any::<u8>()) {
            let mut a = sample();
            let p = pos % a.len();
            a[p] = byte;
            if let Ok(m) = Modules::new(&a) {
                let _ = m.iter().count();
            }
        }
    }
}
