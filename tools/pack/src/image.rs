//! ELF to raw Image: what a boot loader that knows nothing of ELF (QEMU's
//! `-kernel` with a Linux arm64 Image, the Pi firmware) loads byte for byte.

use crate::elf::Elf;
use std::fmt;

/// Largest image we are willing to write. A bigger result almost always means
/// two segments linked far apart (e.g. a stray section at a high address), and
/// zero-filling the gap would silently produce a huge file.
pub const MAX_IMAGE: u64 = 256 << 20;

/// Why an image could not be made.
#[derive(Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The ELF has no loadable segment.
    Empty,
    /// Two `PT_LOAD` segments overlap in memory.
    Overlap {
        /// Address of the later segment.
        vaddr: u64,
    },
    /// The flattened image would exceed [`MAX_IMAGE`].
    TooLarge(u64),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no loadable segments"),
            Self::Overlap { vaddr } => write!(f, "segment at {vaddr:#x} overlaps the previous one"),
            Self::TooLarge(n) => write!(f, "image would be {n} bytes (limit {MAX_IMAGE})"),
        }
    }
}

impl std::error::Error for ImageError {}

/// A flattened image and where it was linked.
#[derive(Debug)]
pub struct Image {
    /// Link address of byte 0 (lowest segment address).
    pub base: u64,
    /// The bytes, from `base` to the end of the last segment's file data.
    pub bytes: Vec<u8>,
}

/// Lays the `PT_LOAD` segments out at their addresses relative to the lowest.
///
/// Gaps between segments and the bss of every segment but the last are
/// zero-filled, because data that follows them must sit at its link offset.
/// The trailing bss of the highest segment is not written: the Image header's
/// `image_size` (set by the hyp linker script) tells the loader how much memory
/// to reserve, and the hyp zeroes its bss itself.
pub fn flatten(elf: &Elf<'_>) -> Result<Image, ImageError> {
    let mut segs: Vec<_> = elf.segments.iter().collect();
    segs.sort_by_key(|s| s.vaddr);
    let base = segs.first().ok_or(ImageError::Empty)?.vaddr;
    let mut prev_end = base;
    let mut file_end = 0u64;
    for s in &segs {
        if s.vaddr < prev_end {
            return Err(ImageError::Overlap { vaddr: s.vaddr });
        }
        // Checked in elf::parse: vaddr + memsz does not wrap.
        prev_end = s.vaddr + s.memsz;
        file_end = s.vaddr - base + s.data.len() as u64;
    }
    if file_end > MAX_IMAGE {
        return Err(ImageError::TooLarge(file_end));
    }
    let mut bytes = vec![0u8; file_end as usize];
    for s in &segs {
        let off = (s.vaddr - base) as usize;
        bytes[off..off + s.data.len()].copy_from_slice(s.data);
    }
    Ok(Image { base, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{parse, tests::build};

    #[test]
    fn zero_fills_gaps_and_inner_bss() {
        let f = build(&[
            (0x40_0000, 3, b"abc"),
            // Inner bss: memsz 8, filesz 2; must be zero-filled.
            (0x40_0010, 8, b"de"),
            (0x40_0020, 0x1000, b"f"),
        ]);
        let img = flatten(&parse(&f).unwrap()).unwrap();
        assert_eq!(img.base, 0x40_0000);
        let mut want = vec![0u8; 0x21];
        want[..3].copy_from_slice(b"abc");
        want[0x10..0x12].copy_from_slice(b"de");
        want[0x20] = b'f';
        assert_eq!(img.bytes, want);
    }

    #[test]
    fn order_of_program_headers_does_not_matter() {
        let f = build(&[(0x2000, 1, b"b"), (0x1000, 1, b"a")]);
        let img = flatten(&parse(&f).unwrap()).unwrap();
        assert_eq!(img.base, 0x1000);
        assert_eq!(img.bytes.len(), 0x1001);
        assert_eq!((img.bytes[0], img.bytes[0x1000]), (b'a', b'b'));
    }

    #[test]
    fn trailing_bss_only_segment_adds_nothing() {
        let f = build(&[(0x1000, 4, b"abcd"), (0x1004, 0x8000, b"")]);
        let img = flatten(&parse(&f).unwrap()).unwrap();
        assert_eq!(img.bytes, b"abcd");
    }

    #[test]
    fn rejects_overlap_empty_and_huge() {
        let f = build(&[(0x1000, 0x10, b"ab"), (0x1008, 1, b"c")]);
        assert_eq!(
            flatten(&parse(&f).unwrap()).unwrap_err(),
            ImageError::Overlap { vaddr: 0x1008 }
        );
        assert_eq!(
            flatten(&parse(&build(&[])).unwrap()).unwrap_err(),
            ImageError::Empty
        );
        let f = build(&[(0, 1, b"a"), (1 << 40, 1, b"b")]);
        assert!(matches!(
            flatten(&parse(&f).unwrap()),
            Err(ImageError::TooLarge(_))
        ));
    }
}
