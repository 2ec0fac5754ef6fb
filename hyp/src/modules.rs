//! Boot modules: the initrd is a cpio "newc" archive (`dom0`, guest images,
//! `*.toml` domain configurations).
//!
//! The archive is walked here, header by header, rather than with the
//! `cpio_reader` crate: that crate sums every byte of every file on every walk
//! (its `070702` checksum support), which cost 17–31 million instructions of
//! the boot measured by `scripts/bench.sh`. Here a walk reads only headers, and
//! checksums are verified once, in [`Modules::new`], for `070702` entries only.
//! The tests cross-check this reader against `cpio_reader`.
//!
//! Public API:
//! - [`Modules::new`]`(archive: &[u8]) -> Result<Modules<'_>, ModuleError>`
//! - [`Modules::iter`]` -> impl Iterator<Item = Module<'_>>` (regular files only)
//! - [`Modules::find`]`(name) -> Option<Module<'_>>`, [`Modules::len`]
//! - [`Module`] `{ name, data }`
//!
//! `new` validates the whole archiv/// Size of a newc header: 6-byte magic and 13 eight-digit hex fields.
const NEWC_HEADER_LEN: usize = 110;
/// Digits of one numeric header field.
const NEWC_FIELD_LEN: usize = 8;
/// Offsets of the header fields used (after the 6-byte magic, in field order
/// ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
/// rdevminor, namesize, check).
const NEWC_MODE_OFFSET: usize = 14;
const NEWC_FILESIZE_OFFSET: usize = 54;
const NEWC_NAMESIZE_OFFSET: usize = 94;
const NEWC_CHECK_OFFSET: usize = 102;
/// newc aligns names and file data to 4 bytes.
const NEWC_ALIGN: usize = 4;
/// Magic of plain newc and of newc with checksums.
const NEWC_MAGIC: &[u8] = b"070701";
const NEWC_CRC_MAGIC: &[u8] = b"070702";
/// Name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";
/// Bits of `mode` that give the file type (POSIX `S_IFMT`), and the type of a
/// regular file (`S_IFREG`).
const FILE_TYPE_MASK: u32 = 0o170_000;
const REGULAR_FILE: u32 = 0o100_000;

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

/// One parsed header and where its data lies.
struct Entry<'a> {
    name: &'a str,
    mode: u32,
    data: &'a [u8],
    /// `Some(sum)` for `070702` entries: the header's checksum field.
    check: Option<u32>,
    /// Offset of the next header.
    next: usize,
}

fn align(n: usize) -> Option<usize> {
    n.checked_next_multiple_of(NEWC_ALIGN)
}

fn clean_name(mut name: &str) -> &str {
    // Not `trim_start_matches("./")`: a `&str` pattern pulls core's substring
    // searcher (and its panic formatting) into the image.
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    name.trim_start_matches('/')
}

fn hex_field(header: &[u8], at: usize) -> Option<u32> {
    let digits = header.get(at..at + NEWC_FIELD_LEN)?;
    // Eight hex digits always fit a u32. A plain fold is a fraction of the code
    // of `from_str_radix` (and, unlike it, takes no sign).
    digits
        .iter()
        .try_fold(0u32, |acc, &b| Some(acc << 4 | char::from(b).to_digit(16)?))
}

/// Parses the entry whose header starts at `offset`: headers only, no pass
/// over file data. `None` if it is malformed or runs past the end.
fn entry_at(archive: &[u8], offset: usize) -> Option<Entry<'_>> {
    let header = archive.get(offset..offset.checked_add(NEWC_HEADER_LEN)?)?;
    let crc = if header.starts_with(NEWC_MAGIC) {
        false
    } else if header.starts_with(NEWC_CRC_MAGIC) {
        true
    } else {
        return None;
    };
    let mode = hex_field(header, NEWC_MODE_OFFSET)?;
    let filesize = usize::try_from(hex_field(header, NEWC_FILESIZE_OFFSET)?).ok()?;
    let namesize = usize::try_from(hex_field(header, NEWC_NAMESIZE_OFFSET)?).ok()?;
    let check = hex_field(header, NEWC_CHECK_OFFSET)?;
    let name_start = offset + NEWC_HEADER_LEN;
    // `namesize` counts the terminating NUL, which must be there.
    let name_end = name_start.checked_add(namesize.checked_sub(1)?)?;
    if archive.get(name_end) != Some(&0) {
        return None;
    }
    let name = core::str::from_utf8(archive.get(name_start..name_end)?).ok()?;
    let data_start = align(name_end + 1)?;
    let data_end = data_start.checked_add(filesize)?;
    let data = archive.get(data_start..data_end)?;
    Some(Entry {
        name,
        mode,
        data,
        check: crc.then_some(check),
        next: align(data_end)?,
    })
}

/// Walks the entries before the trailer. Stops (without error: `new` has
/// validated the archive) at the trailer or at anything malformed.
fn entries(archive: &[u8]) -> impl Iterator<Item = Entry<'_>> {
    let mut offset = 0;
    core::iter::from_fn(move || {
        let e = entry_at(archive, offset)?;
        if e.name == TRAILER {
            return None;
        }
        offset = e.next;
        Some(e)
    })
}

impl<'a> Modules<'a> {
    /// Validates `archive` (see the module documentation).
    pub fn new(archive: &'a [u8]) -> Result<Self, ModuleError> {
        let mut offset = 0usize;
        loop {
            if offset >= archive.len() {
                return Err(ModuleError::MissingTrailer);
            }
            let corrupt = ModuleError::Corrupt { offset };
            let e = entry_at(archive, offset).ok_or(corrupt)?;
            if e.name == TRAILER {
                break;
            }
            // `070702`: the checksum is the 32-bit sum of the data bytes.
            if let Some(check) = e.check {
                let sum = e
                    .data
                    .iter()
                    .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
                if sum != check {
                    return Err(corrupt);
                }
            }
            offset = e.next;
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
        entries(self.archive)
            .filter(|e| e.mode & FILE_TYPE_MASK == REGULAR_FILE)
            .map(|e| Module {
                name: clean_name(e.name),
                data: e.data,
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

    /// The walker agrees with a well-kept independent reader on every archive
    /// the tests build.
    fn agrees_with_cpio_reader(bytes: &[u8]) {
        let ours: Vec<_> = Modules::new(bytes)
            .unwrap()
            .iter()
            .map(|m| (m.name, m.data))
            .collect();
        let theirs: Vec<_> = cpio_reader::iter_files(bytes)
            .filter(|e| e.mode().bits() & FILE_TYPE_MASK == REGULAR_FILE)
            .map(|e| (clean_name(e.name()), e.file()))
            .collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn matches_cpio_reader() {
        agrees_with_cpio_reader(&sample());
    }

    proptest! {
        #[test]
        fn matches_cpio_reader_on_random_file_sets(
            files in proptest::collection::vec((0u32..1000, proptest::collection::vec(any::<u8>(), 0..40)), 0..6)
        ) {
            let named: Vec<(std::string::String, Vec<u8>)> = files
                .iter()
                .enumerate()
                .map(|(i, (n, d))| (std::format!("m{i}-{n}"), d.clone()))
                .collect();
            let refs: Vec<(&str, &[u8], u32)> = named.iter().map(|(n, d)| (n.as_str(), d.as_slice(), REG)).collect();
            agrees_with_cpio_reader(&archive(&refs));
        }
    }
}
