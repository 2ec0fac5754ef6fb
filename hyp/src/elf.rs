//! A strict reader for guest images: ELF64, little-endian, AArch64, `ET_EXEC`
//! (System V gABI "ELF-64 Object File Format"; AArch64 ELF ABI for `EM_AARCH64`).
//!
//! Public API:
//! - [`Elf::parse`]`(bytes: &[u8]) -> Result<Elf<'_>, ElfError>`
//! - [`Elf::entry`]` -> GuestPhysAddr`, [`Elf::segments`]` -> impl Iterator<Item = Segment<'_>>`
//! - [`Segment`] `{ vaddr, paddr, data, mem_size, flags }`, [`SegmentFlags`]
//!
//! Images come from dom0 and may be hostile: `parse` checks every offset, size and
//! address with overflow-checked arithmetic before anything is handed out, so the
//! segments it yields can be copied without further checks. Rejected as well:
//! more than [`MAX_LOAD_SEGMENTS`] `PT_LOAD` segments, loadable segments whose
//! physical ranges overlap, and an entry point outside every executable segment.
//! Guests run with the MMU off at entry, so loaders place segments at `paddr`.
#![forbid(unsafe_code)]

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use crate::addr::GuestPhysAddr;

/// Most `PT_LOAD` segments accepted (the SDK produces 2 or 3).
pub const MAX_LOAD_SEGMENTS: usize = 16;

const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const EI_VERSION: usize = 6;
const ET_EXEC: u16 = 2;
const EM_AARCH64: u16 = 183;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// ELF64 file header (gABI "ELF Header").
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct Ehdr {
    ident: [u8; 16],
    e_type: U16,
    machine: U16,
    version: U32,
    entry: U64,
    phoff: U64,
    shoff: U64,
    flags: U32,
    ehsize: U16,
    phentsize: U16,
    phnum: U16,
    shentsize: U16,
    shnum: U16,
    shstrndx: U16,
}

/// ELF64 program header (gABI "Program Header").
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct Phdr {
    p_type: U32,
    flags: U32,
    offset: U64,
    vaddr: U64,
    paddr: U64,
    filesz: U64,
    memsz: U64,
    align: U64,
}

const EHDR_SIZE: usize = core::mem::size_of::<Ehdr>();
const PHDR_SIZE: usize = core::mem::size_of::<Phdr>();
const _: () = assert!(EHDR_SIZE == 64 && PHDR_SIZE == 56);

/// Why an image was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than the ELF header.
    TooShort,
    /// No `\x7fELF` magic.
    BadMagic,
    /// Not ELF64 / little-endian / version 1.
    UnsupportedFormat,
    /// Not `ET_EXEC`.
    NotExecutable,
    /// Not `EM_AARCH64`.
    WrongMachine,
    /// `e_ehsize` or `e_phentsize` is not the ELF64 size.
    BadHeaderSize,
    /// The program header table lies outside the file.
    ProgramHeadersOutOfBounds,
    /// Segment `index`'s file bytes lie outside the file.
    SegmentOutOfBounds {
        /// Program header index.
        index: usize,
    },
    /// Segment `index` has `p_filesz > p_memsz`.
    FileSizeExceedsMemSize {
        /// Program header index.
        index: usize,
    },
    /// Segment `index`'s address range wraps around.
    AddressOverflow {
        /// Program header index.
        index: usize,
    },
    /// Segment `index` has a bad `p_align` or breaks `p_vaddr ≡ p_offset (mod p_align)`.
    Misaligned {
        /// Program header index.
        index: usize,
    },
    /// Two loadable segments overlap in physical memory.
    Overlap,
    /// More than [`MAX_LOAD_SEGMENTS`] loadable segments.
    TooManySegments,
    /// No loadable segment.
    NoLoadSegments,
    /// The entry point is not inside an executable loadable segment.
    EntryNotExecutable,
}

/// Permissions of a segment (`p_flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SegmentFlags {
    /// `PF_R`.
    pub read: bool,
    /// `PF_W`.
    pub write: bool,
    /// `PF_X`.
    pub execute: bool,
}

/// One validated `PT_LOAD` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Link-time virtual address (informational: guests start with the MMU off).
    pub vaddr: u64,
    /// Where the segment is loaded in guest-physical memory.
    pub paddr: GuestPhysAddr,
    /// Bytes to copy from the file (`p_filesz` of them).
    pub data: &'a [u8],
    /// Bytes occupied in memory (`p_memsz` ≥ `data.len()`; the rest is zeroed).
    pub mem_size: u64,
    /// Permissions.
    pub flags: SegmentFlags,
}

impl Segment<'_> {
    fn paddr_end(&self) -> u64 {
        // Checked in `parse`.
        self.paddr.0 + self.mem_size
    }
}

/// A validated image.
#[derive(Clone, Copy, Debug)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    entry: u64,
    entry_paddr: u64,
    phoff: usize,
    phnum: usize,
}

impl<'a> Elf<'a> {
    /// Validates `bytes` as a loadable AArch64 executable.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let (h, _) = Ehdr::ref_from_prefix(bytes).map_err(|_| ElfError::TooShort)?;
        if h.ident[..4] != ELF_MAGIC {
            return Err(ElfError::BadMagic);
        }
        if h.ident[EI_CLASS] != ELFCLASS64
            || h.ident[EI_DATA] != ELFDATA2LSB
            || h.ident[EI_VERSION] != EV_CURRENT
            || h.version.get() != u32::from(EV_CURRENT)
        {
            return Err(ElfError::UnsupportedFormat);
        }
        if h.e_type.get() != ET_EXEC {
            return Err(ElfError::NotExecutable);
        }
        if h.machine.get() != EM_AARCH64 {
            return Err(ElfError::WrongMachine);
        }
        if usize::from(h.ehsize.get()) != EHDR_SIZE || usize::from(h.phentsize.get()) != PHDR_SIZE {
            return Err(ElfError::BadHeaderSize);
        }
        let phnum = usize::from(h.phnum.get());
        let phoff =
            usize::try_from(h.phoff.get()).map_err(|_| ElfError::ProgramHeadersOutOfBounds)?;
        let table_end = phnum
            .checked_mul(PHDR_SIZE)
            .and_then(|len| phoff.checked_add(len))
            .ok_or(ElfError::ProgramHeadersOutOfBounds)?;
        if table_end > bytes.len() {
            return Err(ElfError::ProgramHeadersOutOfBounds);
        }
        let mut elf = Self {
            bytes,
            entry: h.entry.get(),
            entry_paddr: 0,
            phoff,
            phnum,
        };
        elf.entry_paddr = elf.validate_segments()?;
        Ok(elf)
    }

    /// The entry point as a guest-physical address: `e_entry` moved by its
    /// segment's `p_paddr - p_vaddr` (guests start with the MMU off).
    pub fn entry(&self) -> GuestPhysAddr {
        GuestPhysAddr(self.entry_paddr)
    }

    /// `e_entry` as linked.
    pub fn entry_vaddr(&self) -> u64 {
        self.entry
    }

    /// The loadable segments, in program header order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + 'a {
        let this = *self;
        (0..self.phnum).filter_map(move |i| this.segment(i).ok().flatten())
    }

    fn phdr(&self, index: usize) -> Option<&'a Phdr> {
        let start = self.phoff + index * PHDR_SIZE;
        Phdr::ref_from_prefix(self.bytes.get(start..)?)
            .ok()
            .map(|(p, _)| p)
    }

    /// Program header `index` as a segment: `Ok(None)` if it is not `PT_LOAD`.
    // Out of line: it has two callers and is too big to copy into each.
    #[inline(never)]
    fn segment(&self, index: usize) -> Result<Option<Segment<'a>>, ElfError> {
        let p = self
            .phdr(index)
            .ok_or(ElfError::ProgramHeadersOutOfBounds)?;
        if p.p_type.get() != PT_LOAD {
            return Ok(None);
        }
        let (filesz, memsz) = (p.filesz.get(), p.memsz.get());
        let data = usize::try_from(p.offset.get())
            .ok()
            .zip(usize::try_from(filesz).ok())
            .and_then(|(off, len)| self.bytes.get(off..off.checked_add(len)?))
            .ok_or(ElfError::SegmentOutOfBounds { index })?;
        if filesz > memsz {
            return Err(ElfError::FileSizeExceedsMemSize { index });
        }
        if p.vaddr.get().checked_add(memsz).is_none() || p.paddr.get().checked_add(memsz).is_none()
        {
            return Err(ElfError::AddressOverflow { index });
        }
        let align = p.align.get();
        if align > 1
            && (!align.is_power_of_two() || p.vaddr.get() % align != p.offset.get() % align)
        {
            return Err(ElfError::Misaligned { index });
        }
        let f = p.flags.get();
        Ok(Some(Segment {
            vaddr: p.vaddr.get(),
            paddr: GuestPhysAddr(p.paddr.get()),
            data,
            mem_size: memsz,
            flags: SegmentFlags {
                read: f & PF_R != 0,
                write: f & PF_W != 0,
                execute: f & PF_X != 0,
            },
        }))
    }

    /// Checks the loadable segments; returns the entry point's physical address.
    fn validate_segments(&self) -> Result<u64, ElfError> {
        let mut loads: [Option<Segment<'a>>; MAX_LOAD_SEGMENTS] = [None; MAX_LOAD_SEGMENTS];
        let mut n = 0;
        for i in 0..self.phnum {
            if let Some(s) = self.segment(i)? {
                *loads.get_mut(n).ok_or(ElfError::TooManySegments)? = Some(s);
                n += 1;
            }
        }
        let loads: &[Option<Segment<'a>>] = &loads[..n];
        if loads.is_empty() {
            return Err(ElfError::NoLoadSegments);
        }
        for (i, a) in loads.iter().flatten().enumerate() {
            for b in loads.iter().flatten().skip(i + 1) {
                if a.paddr.0 < b.paddr_end() && b.paddr.0 < a.paddr_end() {
                    return Err(ElfError::Overlap);
                }
            }
        }
        loads
            .iter()
            .flatten()
            .find(|s| s.flags.execute && s.vaddr <= self.entry && self.entry - s.vaddr < s.mem_size)
            // In range: entry - vaddr < mem_size and paddr + mem_size does not overflow.
            .map(|s| s.paddr.0 + (self.entry - s.vaddr))
            .ok_or(ElfError::EntryNotExecutable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;
    use zerocopy::IntoBytes;

    const RX: u32 = PF_R | PF_X;
    const RW: u32 = PF_R | PF_W;

    /// (type, flags, offset, vaddr, paddr, filesz, memsz, align)
    type Ph = (u32, u32, u64, u64, u64, u64, u64, u64);

    fn put(v: &mut Vec<u8>, at: usize, b: &[u8]) {
        if v.len() < at + b.len() {
            v.resize(at + b.len(), 0);
        }
        v[at..at + b.len()].copy_from_slice(b);
    }

    /// Writes an ELF64 header and program headers field by field (gABI layout).
    fn image(entry: u64, phdrs: &[Ph], total: usize) -> Vec<u8> {
        let mut v = vec![0u8; total];
        let mut ident = [0u8; 16];
        ident[..4].copy_from_slice(&ELF_MAGIC);
        ident[EI_CLASS] = ELFCLASS64;
        ident[EI_DATA] = ELFDATA2LSB;
        ident[EI_VERSION] = EV_CURRENT;
        put(&mut v, 0, &ident);
        put(&mut v, 16, &ET_EXEC.to_le_bytes());
        put(&mut v, 18, &EM_AARCH64.to_le_bytes());
        put(&mut v, 20, &1u32.to_le_bytes());
        put(&mut v, 24, &entry.to_le_bytes());
        put(&mut v, 32, &(EHDR_SIZE as u64).to_le_bytes());
        put(&mut v, 52, &(EHDR_SIZE as u16).to_le_bytes());
        put(&mut v, 54, &(PHDR_SIZE as u16).to_le_bytes());
        put(&mut v, 56, &(phdrs.len() as u16).to_le_bytes());
        for (i, &(t, f, off, va, pa, fs, ms, al)) in phdrs.iter().enumerate() {
            let at = EHDR_SIZE + i * PHDR_SIZE;
            let mut b = Vec::new();
            b.extend_from_slice(t.as_bytes());
            b.extend_from_slice(f.as_bytes());
            for x in [off, va, pa, fs, ms, al] {
                b.extend_from_slice(x.as_bytes());
            }
            put(&mut v, at, &b);
        }
        v
    }

    fn good() -> Vec<u8> {
        let mut v = image(
            0x4008_0010,
            &[
                (
                    PT_LOAD,
                    RX,
                    0x1000,
                    0x4008_0000,
                    0x4008_0000,
                    0x100,
                    0x100,
                    0x1000,
                ),
                (6 /* PT_PHDR */, PF_R, 64, 0, 0, 112, 112, 8),
                (
                    PT_LOAD,
                    RW,
                    0x2000,
                    0x4009_0000,
                    0x4009_0000,
                    0x10,
                    0x5000,
                    0x1000,
                ),
            ],
            0x2010,
        );
        v[0x1000..0x1100].fill(0xaa);
        v[0x2000..0x2010].fill(0xbb);
        v
    }

    #[test]
    fn parses_a_good_image() {
        let bytes = good();
        let e = Elf::parse(&bytes).unwrap();
        assert_eq!(e.entry(), GuestPhysAddr(0x4008_0010));
        assert_eq!(e.entry_vaddr(), 0x4008_0010);
        let s: Vec<_> = e.segments().collect();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].paddr, GuestPhysAddr(0x4008_0000));
        assert_eq!(s[0].data, &[0xaa; 0x100][..]);
        assert_eq!(
            s[0].flags,
            SegmentFlags {
                read: true,
                write: false,
                execute: true
            }
        );
        assert_eq!(s[1].data, &[0xbb; 0x10][..]);
        assert_eq!(s[1].mem_size, 0x5000);
        assert!(s[1].flags.write && !s[1].flags.execute);
    }

    #[test]
    fn entry_is_moved_to_the_load_address() {
        let v = image(
            0xffff_0000_0000_0008,
            &[(
                PT_LOAD,
                RX,
                0,
                0xffff_0000_0000_0000,
                0x4000_0000,
                0x40,
                0x1000,
                0,
            )],
            0x40,
        );
        assert_eq!(Elf::parse(&v).unwrap().entry(), GuestPhysAddr(0x4000_0008));
    }

    #[test]
    fn header_errors() {
        let g = good();
        assert_eq!(Elf::parse(&g[..63]).err(), Some(ElfError::TooShort));
        let patch = |at: usize, b: &[u8]| {
            let mut v = g.clone();
            v[at..at + b.len()].copy_from_slice(b);
            Elf::parse(&v).err()
        };
        assert_eq!(patch(0, b"\x7fELG"), Some(ElfError::BadMagic));
        assert_eq!(patch(EI_CLASS, &[1]), Some(ElfError::UnsupportedFormat));
        assert_eq!(patch(EI_DATA, &[2]), Some(ElfError::UnsupportedFormat));
        assert_eq!(
            patch(20, &2u32.to_le_bytes()),
            Some(ElfError::UnsupportedFormat)
        );
        assert_eq!(
            patch(16, &3u16.to_le_bytes()),
            Some(ElfError::NotExecutable)
        );
        assert_eq!(
            patch(18, &62u16.to_le_bytes()),
            Some(ElfError::WrongMachine)
        );
        assert_eq!(
            patch(54, &32u16.to_le_bytes()),
            Some(ElfError::BadHeaderSize)
        );
        assert_eq!(
            patch(32, &u64::MAX.to_le_bytes()),
            Some(ElfError::ProgramHeadersOutOfBounds)
        );
        assert_eq!(
            patch(56, &0xffffu16.to_le_bytes()),
            Some(ElfError::ProgramHeadersOutOfBounds)
        );
        assert_eq!(
            patch(56, &0u16.to_le_bytes()),
            Some(ElfError::NoLoadSegments)
        );
        assert_eq!(
            patch(24, &0x4009_0000u64.to_le_bytes()),
            Some(ElfError::EntryNotExecutable)
        );
    }

    #[test]
    fn segment_errors() {
        let one = |ph: Ph, entry: u64| Elf::parse(&image(entry, &[ph], 0x2000)).err();
        let e = 0x1000;
        assert_eq!(
            one((PT_LOAD, RX, 0x1f00, e, e, 0x200, 0x200, 0), e),
            Some(ElfError::SegmentOutOfBounds { index: 0 })
        );
        assert_eq!(
            one((PT_LOAD, RX, u64::MAX, e, e, 2, 2, 0), e),
            Some(ElfError::SegmentOutOfBounds { index: 0 })
        );
        assert_eq!(
            one((PT_LOAD, RX, 0, e, e, 0x100, 0x10, 0), e),
            Some(ElfError::FileSizeExceedsMemSize { index: 0 })
        );
        assert_eq!(
            one((PT_LOAD, RX, 0, u64::MAX - 4, e, 0, 0x10, 0), e),
            Some(ElfError::AddressOverflow { index: 0 })
        );
        assert_eq!(
            one((PT_LOAD, RX, 0, e, u64::MAX - 4, 0, 0x10, 0), e),
            Some(ElfError::AddressOverflow { index: 0 })
        );
        assert_eq!(
            one((PT_LOAD, RX, 0x10, e, e, 0, 0x10, 0x1000), e),
            Some(ElfError::Misaligned { index: 0 })
        );
        assert_eq!(
            one((PT_LOAD, RX, 0, e, e, 0, 0x10, 0x1001), e),
            Some(ElfError::Misaligned { index: 0 })
        );
        assert_eq!(
            one((PT_LOAD, RW, 0, e, e, 0, 0x10, 0), e),
            Some(ElfError::EntryNotExecutable)
        );
        assert_eq!(
            one((PT_LOAD, RX, 0, e, e, 0, 0x10, 0), e + 0x10),
            Some(ElfError::EntryNotExecutable)
        );
        let overlap = image(
            e,
            &[
                (PT_LOAD, RX, 0, e, e, 0, 0x100, 0),
                (PT_LOAD, RW, 0, 0x9000, e + 0xff, 0, 1, 0),
            ],
            0x100,
        );
        assert_eq!(Elf::parse(&overlap).err(), Some(ElfError::Overlap));
        let many: Vec<Ph> = (0..17)
            .map(|i| (PT_LOAD, RX, 0, e + i * 0x100, e + i * 0x100, 0, 0x10, 0))
            .collect();
        assert_eq!(
            Elf::parse(&image(e, &many, 0x1000)).err(),
            Some(ElfError::TooManySegments)
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(e) = Elf::parse(&bytes) {
                let _ = e.segments().count();
            }
        }

        #[test]
        fn mutated_images_never_panic(edits in proptest::collection::vec((0usize..0x200, any::<u8>()), 1..8)) {
            let mut v = good();
            for (at, b) in edits {
                v[at] = b;
            }
            if let Ok(e) = Elf::parse(&v) {
                for s in e.segments() {
                    prop_assert!(s.data.len() as u64 <= s.mem_size);
                    prop_assert!(s.paddr.0.checked_add(s.mem_size).is_some());
                }
            }
        }
    }
}
