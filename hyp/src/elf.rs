//! A strict reader for the guest images the hypervisor loads: ELF64,
//! little-endian, AArch64, `ET_EXEC`. (Written by the lead ahead of the
//! host-core queue so the domain loader could land; extend rather than replace.)
//!
//! Images come from boot modules or from dom0's memory, so every offset and
//! size is checked and a malformed file is an [`ElfError`], never a panic.
//! Layout facts from the System V ABI (ELF-64 Object File Format, 1.5) and the
//! AArch64 ELF supplement.

use core::ops::Range;

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than its headers say.
    Truncated,
    /// Not ELF64 little-endian AArch64 `ET_EXEC`.
    NotAnAarch64Executable,
    /// A program header is malformed (sizes, overflow, alignment).
    BadSegment,
    /// No loadable segment.
    NoSegments,
}

const MAGIC: &[u8; 4] = b"\x7fELF";
const CLASS_64: u8 = 2;
const DATA_LE: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_AARCH64: u16 = 183;
const PT_LOAD: u32 = 1;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;

/// Offsets of `Elf64_Ehdr` fields.
mod ehdr {
    pub const CLASS: usize = 4;
    pub const DATA: usize = 5;
    pub const TYPE: usize = 16;
    pub const MACHINE: usize = 18;
    pub const ENTRY: usize = 24;
    pub const PHOFF: usize = 32;
    pub const PHENTSIZE: usize = 54;
    pub const PHNUM: usize = 56;
}

/// Offsets of `Elf64_Phdr` fields.
mod phdr {
    pub const TYPE: usize = 0;
    pub const FLAGS: usize = 4;
    pub const OFFSET: usize = 8;
    pub const PADDR: usize = 24;
    pub const FILESZ: usize = 32;
    pub const MEMSZ: usize = 40;
}

/// A loadable segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where it goes: the physical address field (the guest runs with its MMU
    /// off at entry, so this is an IPA).
    pub paddr: u64,
    /// The bytes of the file that it holds.
    pub file: Range<usize>,
    /// Its size in memory; bytes past `file.len()` are zero.
    pub memsz: u64,
    /// `p_flags` (`PF_X` 1, `PF_W` 2, `PF_R` 4).
    pub flags: u32,
}

/// A checked image.
#[derive(Clone, Debug)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    entry: u64,
    phoff: usize,
    phnum: usize,
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, ElfError> {
    let s = b.get(off..off + 2).ok_or(ElfError::Truncated)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, ElfError> {
    let s = b.get(off..off + 4).ok_or(ElfError::Truncated)?;
    Ok(u32::from_le_bytes(s.try_into().map_err(|_| ElfError::Truncated)?))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64, ElfError> {
    let s = b.get(off..off + 8).ok_or(ElfError::Truncated)?;
    Ok(u64::from_le_bytes(s.try_into().map_err(|_| ElfError::Truncated)?))
}

impl<'a> Elf<'a> {
    /// Checks the headers and every program header.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        if bytes.len() < EHDR_SIZE {
            return Err(ElfError::Truncated);
        }
        if &bytes[..4] != MAGIC
            || bytes[ehdr::CLASS] != CLASS_64
            || bytes[ehdr::DATA] != DATA_LE
            || u16_at(bytes, ehdr::TYPE)? != ET_EXEC
            || u16_at(bytes, ehdr::MACHINE)? != EM_AARCH64
        {
            return Err(ElfError::NotAnAarch64Executable);
        }
        let phoff = usize::try_from(u64_at(bytes, ehdr::PHOFF)?).map_err(|_| ElfError::Truncated)?;
        let phnum = usize::from(u16_at(bytes, ehdr::PHNUM)?);
        if usize::from(u16_at(bytes, ehdr::PHENTSIZE)?) != PHDR_SIZE {
            return Err(ElfError::BadSegment);
        }
        let end = phnum
            .checked_mul(PHDR_SIZE)
            .and_then(|n| n.checked_add(phoff))
            .ok_or(ElfError::Truncated)?;
        if end > bytes.len() {
            return Err(ElfError::Truncated);
        }
        let elf = Self {
            bytes,
            entry: u64_at(bytes, ehdr::ENTRY)?,
            phoff,
            phnum,
        };
        let mut any = false;
        for s in elf.segments() {
            s?;
            any = true;
        }
        if !any {
            return Err(ElfError::NoSegments);
        }
        Ok(elf)
    }

    /// The entry point.
    pub const fn entry(&self) -> u64 {
        self.entry
    }

    /// The whole file.
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The `PT_LOAD` segments, each checked.
    pub fn segments(&self) -> impl Iterator<Item = Result<Segment, ElfError>> + '_ {
        (0..self.phnum).filter_map(move |i| {
            let at = self.phoff + i * PHDR_SIZE;
            match u32_at(self.bytes, at + phdr::TYPE) {
                Ok(PT_LOAD) => Some(self.segment(at)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        })
    }

    fn segment(&self, at: usize) -> Result<Segment, ElfError> {
        let b = self.bytes;
        let offset = usize::try_from(u64_at(b, at + phdr::OFFSET)?).map_err(|_| ElfError::BadSegment)?;
        let filesz = usize::try_from(u64_at(b, at + phdr::FILESZ)?).map_err(|_| ElfError::BadSegment)?;
        let memsz = u64_at(b, at + phdr::MEMSZ)?;
        let paddr = u64_at(b, at + phdr::PADDR)?;
        let end = offset.checked_add(filesz).ok_or(ElfError::BadSegment)?;
        if end > b.len() || filesz as u64 > memsz || paddr.checked_add(memsz).is_none() {
            return Err(ElfError::BadSegment);
        }
        Ok(Segment {
            paddr,
            file: offset..end,
            memsz,
            flags: u32_at(b, at + phdr::FLAGS)?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// A minimal image: one PT_LOAD of `code` at `paddr` with `bss` extra bytes.
    pub fn image(paddr: u64, code: &[u8], bss: u64) -> Vec<u8> {
        let mut f = std::vec![0u8; EHDR_SIZE + PHDR_SIZE];
        f[..4].copy_from_slice(MAGIC);
        f[ehdr::CLASS] = CLASS_64;
        f[ehdr::DATA] = DATA_LE;
        f[ehdr::TYPE..ehdr::TYPE + 2].copy_from_slice(&ET_EXEC.to_le_bytes());
        f[ehdr::MACHINE..ehdr::MACHINE + 2].copy_from_slice(&EM_AARCH64.to_le_bytes());
        f[ehdr::ENTRY..ehdr::ENTRY + 8].copy_from_slice(&paddr.to_le_bytes());
        f[ehdr::PHOFF..ehdr::PHOFF + 8].copy_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
        f[ehdr::PHENTSIZE..ehdr::PHENTSIZE + 2].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        f[ehdr::PHNUM..ehdr::PHNUM + 2].copy_from_slice(&1u16.to_le_bytes());
        let p = EHDR_SIZE;
        let off = f.len() as u64;
        f[p + phdr::TYPE..p + phdr::TYPE + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        f[p + phdr::FLAGS..p + phdr::FLAGS + 4].copy_from_slice(&5u32.to_le_bytes());
        f[p + phdr::OFFSET..p + phdr::OFFSET + 8].copy_from_slice(&off.to_le_bytes());
        f[p + phdr::PADDR..p + phdr::PADDR + 8].copy_from_slice(&paddr.to_le_bytes());
        f[p + phdr::FILESZ..p + phdr::FILESZ + 8].copy_from_slice(&(code.len() as u64).to_le_bytes());
        f[p + phdr::MEMSZ..p + phdr::MEMSZ + 8].copy_from_slice(&(code.len() as u64 + bss).to_le_bytes());
        f.extend_from_slice(code);
        f
    }

    #[test]
    fn parses_a_minimal_image() {
        let f = image(0x4008_0000, &[1, 2, 3, 4], 12);
        let e = Elf::parse(&f).unwrap();
        assert_eq!(e.entry(), 0x4008_0000);
        let s: Vec<_> = e.segments().map(Result::unwrap).collect();
        assert_eq!(s.len(), 1);
        assert_eq!(&f[s[0].file.clone()], &[1, 2, 3, 4]);
        assert_eq!(s[0].memsz, 16);
    }

    #[test]
    fn refuses_lies() {
        let good = image(0x4008_0000, &[0; 8], 0);
        assert_eq!(Elf::parse(&good[..10]).unwrap_err(), ElfError::Truncated);
        let mut bad = good.clone();
        bad[ehdr::MACHINE] = 62;
        assert_eq!(Elf::parse(&bad).unwrap_err(), ElfError::NotAnAarch64Executable);
        let mut bad = good.clone();
        let fs = EHDR_SIZE + phdr::FILESZ;
        bad[fs..fs + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Elf::parse(&bad).unwrap_err(), ElfError::BadSegment);
        let mut bad = good.clone();
        let pa = EHDR_SIZE + phdr::PADDR;
        bad[pa..pa + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Elf::parse(&bad).unwrap_err(), ElfError::BadSegment);
        let mut bad = good;
        bad[ehdr::PHNUM] = 0xff;
        assert_eq!(Elf::parse(&bad).unwrap_err(), ElfError::Truncated);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), flip in 0usize..200, v in any::<u8>()) {
            let _ = Elf::parse(&bytes);
            let mut f = image(0x4008_0000, &[7; 32], 64);
            if flip < f.len() { f[flip] = v; }
            if let Ok(e) = Elf::parse(&f) {
                for s in e.segments() { let _ = s; }
            }
        }
    }
}
