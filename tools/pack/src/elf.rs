//! Just enough of ELF64 (little-endian) to read the loadable segments.
//!
//! Parsed by hand rather than with a general ELF crate: we need the file header
//! and the program headers only, and every field read is bounds-checked so a
//! truncated or foreign file gives an error, never a panic.

use std::fmt;

/// `PT_LOAD`: a segment the loader copies into memory.
const PT_LOAD: u32 = 1;
/// `EM_AARCH64`.
const EM_AARCH64: u16 = 183;
/// Size of `Elf64_Ehdr`.
const EHDR_SIZE: usize = 64;
/// Size of `Elf64_Phdr`.
const PHDR_SIZE: usize = 56;

/// Why an ELF file could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The file does not start with `\x7fELF`.
    NotElf,
    /// Not ELFCLASS64 / little-endian.
    Unsupported(&'static str),
    /// A header or segment points outside the file.
    Truncated(&'static str),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotElf => write!(f, "not an ELF file"),
            Self::Unsupported(what) => write!(f, "unsupported ELF: {what}"),
            Self::Truncated(what) => write!(f, "truncated ELF: {what}"),
        }
    }
}

impl std::error::Error for ElfError {}

/// One `PT_LOAD` program header, with its file bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Virtual (link) address of the first byte.
    pub vaddr: u64,
    /// Size in memory; bytes past `data.len()` are zero (bss).
    pub memsz: u64,
    /// The bytes stored in the file (`p_filesz` of them).
    pub data: &'a [u8],
}

/// The parts of an ELF file `tern-pack` needs.
#[derive(Debug)]
pub struct Elf<'a> {
    /// `e_machine`; `EM_AARCH64` for the images we pack.
    pub machine: u16,
    /// `e_entry`.
    pub entry: u64,
    /// Loadable segments, in program-header order, empty ones dropped.
    pub segments: Vec<Segment<'a>>,
}

impl Elf<'_> {
    /// True if the file is for AArch64.
    pub fn is_aarch64(&self) -> bool {
        self.machine == EM_AARCH64
    }
}

fn slice<'a>(b: &'a [u8], off: u64, len: u64, what: &'static str) -> Result<&'a [u8], ElfError> {
    let start = usize::try_from(off).map_err(|_| ElfError::Truncated(what))?;
    let len = usize::try_from(len).map_err(|_| ElfError::Truncated(what))?;
    let end = start.checked_add(len).ok_or(ElfError::Truncated(what))?;
    b.get(start..end).ok_or(ElfError::Truncated(what))
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Parses the file header and the `PT_LOAD` program headers of `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Elf<'_>, ElfError> {
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let eh = slice(bytes, 0, EHDR_SIZE as u64, "file header")?;
    if eh[4] != 2 {
        return Err(ElfError::Unsupported("not ELFCLASS64"));
    }
    if eh[5] != 1 {
        return Err(ElfError::Unsupported("not little-endian"));
    }
    let machine = u16_at(eh, 18);
    let entry = u64_at(eh, 24);
    let phoff = u64_at(eh, 32);
    let phentsize = u16_at(eh, 54);
    let phnum = u16_at(eh, 56);
    if phnum != 0 && usize::from(phentsize) < PHDR_SIZE {
        return Err(ElfError::Unsupported("program header entry too small"));
    }
    let mut segments = Vec::new();
    for i in 0..u64::from(phnum) {
        let off = phoff
            .checked_add(i * u64::from(phentsize))
            .ok_or(ElfError::Truncated("program headers"))?;
        let ph = slice(bytes, off, PHDR_SIZE as u64, "program headers")?;
        if u32_at(ph, 0) != PT_LOAD {
            continue;
        }
        let p_offset = u64_at(ph, 8);
        let vaddr = u64_at(ph, 16);
        let filesz = u64_at(ph, 32);
        let memsz = u64_at(ph, 40);
        if filesz > memsz {
            return Err(ElfError::Unsupported("segment with p_filesz > p_memsz"));
        }
        if memsz == 0 {
            continue;
        }
        vaddr
            .checked_add(memsz)
            .ok_or(ElfError::Unsupported("segment wraps the address space"))?;
        let data = slice(bytes, p_offset, filesz, "segment data")?;
        segments.push(Segment { vaddr, memsz, data });
    }
    Ok(Elf {
        machine,
        entry,
        segments,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal AArch64 ELF64 with the given `(vaddr, memsz, data)` segments.
    pub(crate) fn build(segs: &[(u64, u64, &[u8])]) -> Vec<u8> {
        let phoff = EHDR_SIZE;
        let data_off = phoff + PHDR_SIZE * segs.len();
        let mut out = vec![0u8; data_off];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        out[24..32].copy_from_slice(&segs.first().map_or(0, |s| s.0).to_le_bytes());
        out[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
        out[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        out[56..58].copy_from_slice(&(segs.len() as u16).to_le_bytes());
        for (i, (vaddr, memsz, data)) in segs.iter().enumerate() {
            let file_off = out.len() as u64;
            out.extend_from_slice(data);
            let ph = &mut out[phoff + i * PHDR_SIZE..phoff + (i + 1) * PHDR_SIZE];
            ph[0..4].copy_from_slice(&PT_LOAD.to_le_bytes());
            ph[8..16].copy_from_slice(&file_off.to_le_bytes());
            ph[16..24].copy_from_slice(&vaddr.to_le_bytes());
            ph[24..32].copy_from_slice(&vaddr.to_le_bytes());
            ph[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
            ph[40..48].copy_from_slice(&memsz.to_le_bytes());
        }
        out
    }

    #[test]
    fn parses_segments() {
        let f = build(&[(0x1000, 4, b"abcd"), (0x2000, 0x100, b"xy")]);
        let elf = parse(&f).unwrap();
        assert!(elf.is_aarch64());
        assert_eq!(elf.entry, 0x1000);
        assert_eq!(elf.segments.len(), 2);
        assert_eq!(elf.segments[1].vaddr, 0x2000);
        assert_eq!(elf.segments[1].memsz, 0x100);
        assert_eq!(elf.segments[1].data, b"xy");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse(b"hello").unwrap_err(), ElfError::NotElf);
        let f = build(&[(0x1000, 4, b"abcd")]);
        assert!(matches!(parse(&f[..70]), Err(ElfError::Truncated(_))));
        // Segment data cut off.
        assert!(matches!(
            parse(&f[..f.len() - 1]),
            Err(ElfError::Truncated(_))
        ));
    }

    #[test]
    fn rejects_filesz_over_memsz() {
        let f = build(&[(0x1000, 2, b"abcd")]);
        assert!(matches!(parse(&f), Err(ElfError::Unsupported(_))));
    }
}
