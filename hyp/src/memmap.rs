//! Physical memory map arithmetic: which pages of RAM are free to hand out.
//!
//! Public API:
//! - [`FixedList<T, N>`]: a fixed-capacity list (no heap: the memory map is computed
//!   before the heap exists).
//! - [`free_regions`]`(memory: &[PhysRange], exclude: &[PhysRange]) -> Result<FreeRegions, MemmapError>`
//! - [`FreeRegions`] = `FixedList<PhysRange, MAX_FREE_REGIONS>`.
//!
//! Rounding rule: RAM banks are shrunk inward to whole pages (a partial page is not
//! usable RAM), exclusions are grown outward (a partial page that holds something
//! reserved is not free). The result is sorted, page aligned, non-empty and
//! non-overlapping; adjacent or overlapping banks are merged first.
#![forbid(unsafe_code)]

use core::ops::Deref;

use crate::addr::{PAGE_SIZE, PhysAddr, PhysRange};

/// A list of at most `N` elements stored inline (no heap).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedList<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> FixedList<T, N> {
    /// An empty list.
    pub fn new() -> Self {
        Self {
            items: [T::default(); N],
            len: 0,
        }
    }
    /// Appends `item`; gives it back if the list is full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = item;
                self.len += 1;
                Ok(())
            }
            None => Err(item),
        }
    }
    /// Removes and returns the element at `index`, shifting the rest down.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        let item = self.items[index];
        self.items.copy_within(index + 1..self.len, index);
        self.len -= 1;
        Some(item)
    }
    /// Removes every element.
    pub fn clear(&mut self) {
        self.len = 0;
    }
    /// The elements as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }
    /// Whether no more elements fit.
    pub fn is_full(&self) -> bool {
        self.len == N
    }
    /// The capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<T: Copy + Default, const N: usize> Default for FixedList<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Default, const N: usize> Deref for FixedList<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items[..self.len]
    }
}

impl<T: Copy + Default + core::fmt::Debug, const N: usize> core::fmt::Debug for FixedList<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// How many free regions [`free_regions`] can return: every exclusion splits at most
/// one region in two, so banks plus exclusions bound the count for the platform limits.
pub const MAX_FREE_REGIONS: usize = 64;

/// The free RAM, sorted and page aligned.
pub type FreeRegions = FixedList<PhysRange, MAX_FREE_REGIONS>;

/// Why the memory map could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemmapError {
    /// More than [`MAX_FREE_REGIONS`] disjoint free regions would result.
    TooManyRegions,
}

/// Shrinks `r` to the whole pages inside it (may become empty).
fn page_inward(r: &PhysRange) -> PhysRange {
    PhysRange {
        start: r.start.align_up(PAGE_SIZE),
        end: r.end.align_down(PAGE_SIZE),
    }
}

/// Grows `r` to the whole pages it touches.
fn page_outward(r: &PhysRange) -> PhysRange {
    PhysRange {
        start: r.start.align_down(PAGE_SIZE),
        end: r.end.align_up(PAGE_SIZE),
    }
}

/// The pages of `memory` that no range of `exclude` touches.
///
/// Empty inputs are ignored. The result is sorted by address, every range is
/// non-empty and page aligned, and no two ranges overlap or touch.
pub fn free_regions(
    memory: &[PhysRange],
    exclude: &[PhysRange],
) -> Result<FreeRegions, MemmapError> {
    let mut free = FreeRegions::new();
    for bank in memory.iter().map(page_inward).filter(|r| !r.is_empty()) {
        insert_merged(&mut free, bank)?;
    }
    for cut in exclude.iter().map(page_outward).filter(|r| !r.is_empty()) {
        subtract(&mut free, &cut)?;
    }
    Ok(free)
}

/// Adds `new` to the sorted, disjoint `list`, merging with every range it overlaps
/// or touches.
fn insert_merged(list: &mut FreeRegions, mut new: PhysRange) -> Result<(), MemmapError> {
    let mut i = 0;
    while i < list.len() {
        let r = list[i];
        if r.start <= new.end && new.start <= r.end {
            new.start = new.start.min(r.start);
            new.end = new.end.max(r.end);
            list.remove(i);
        } else {
            i += 1;
        }
    }
    list.push(new).map_err(|_| MemmapError::TooManyRegions)?;
    // The rest is sorted and disjoint from `new`: one insertion step sorts the
    // list (a general sort would add about 3 KiB of code to the image).
    let items = list.as_mut_slice();
    for i in (1..items.len()).rev() {
        if items[i - 1].start <= items[i].start {
            break;
        }
        items.swap(i - 1, i);
    }
    Ok(())
}

/// Removes `cut` from every range of `list`, keeping it sorted.
fn subtract(list: &mut FreeRegions, cut: &PhysRange) -> Result<(), MemmapError> {
    let mut out = FreeRegions::new();
    for r in list.iter() {
        if !r.overlaps(cut) {
            out.push(*r).map_err(|_| MemmapError::TooManyRegions)?;
            continue;
        }
        let left = PhysRange {
            start: r.start,
            end: cut.start,
        };
        let right = PhysRange {
            start: cut.end,
            end: r.end,
        };
        for piece in [left, right] {
            if !piece.is_empty() {
                out.push(piece).map_err(|_| MemmapError::TooManyRegions)?;
            }
        }
    }
    *list = out;
    Ok(())
}

/// Total bytes in `regions`.
pub fn total_size(regions: &[PhysRange]) -> u64 {
    regions.iter().map(PhysRange::size).sum()
}

/// Whether `addr` lies in one of `regions`.
pub fn contains(regions: &[PhysRange], addr: PhysAddr) -> bool {
    regions.iter().any(|r| r.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(start: u64, end: u64) -> PhysRange {
        PhysRange {
            start: PhysAddr(start),
            end: PhysAddr(end),
        }
    }

    #[test]
    fn fixed_list_basics() {
        let mut l = FixedList::<u32, 3>::new();
        assert!(l.is_empty());
        assert_eq!(l.push(1), Ok(()));
        assert_eq!(l.push(2), Ok(()));
        assert_eq!(l.push(3), Ok(()));
        assert!(l.is_full());
        assert_eq!(l.push(4), Err(4));
        assert_eq!(l.remove(0), Some(1));
        assert_eq!(&*l, &[2, 3]);
        assert_eq!(l.remove(5), None);
        l.clear();
        assert_eq!(l.len(), 0);
        assert_eq!(l.capacity(), 3);
    }

    #[test]
    fn no_exclusions_aligns_inward() {
        let f = free_regions(&[r(0x4000_0010, 0x4800_0ff0)], &[]).unwrap();
        assert_eq!(&*f, &[r(0x4000_1000, 0x4800_0000)]);
    }

    #[test]
    fn exclusion_in_middle_splits_and_aligns_outward() {
        let f = free_regions(
            &[r(0x4000_0000, 0x4800_0000)],
            &[r(0x4008_0100, 0x4010_0001)],
        )
        .unwrap();
        assert_eq!(
            &*f,
            &[r(0x4000_0000, 0x4008_0000), r(0x4010_1000, 0x4800_0000)]
        );
    }

    #[test]
    fn exclusions_at_edges_and_outside() {
        let f = free_regions(
            &[r(0, 0x10000)],
            &[
                r(0, 0x1000),
                r(0xf000, 0x20000),
                r(0x100000, 0x200000),
                r(0x5000, 0x5000),
            ],
        )
        .unwrap();
        assert_eq!(&*f, &[r(0x1000, 0xf000)]);
    }

    #[test]
    fn banks_sorted_and_merged() {
        let f = free_regions(
            &[
                r(0x9000, 0xa000),
                r(0x1000, 0x3000),
                r(0x2000, 0x5000),
                r(0x5000, 0x6000),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(&*f, &[r(0x1000, 0x6000), r(0x9000, 0xa000)]);
        assert_eq!(total_size(&f), 0x6000);
        assert!(contains(&f, PhysAddr(0x9fff)));
        assert!(!contains(&f, PhysAddr(0x6000)));
    }

    #[test]
    fn sub_page_bank_vanishes() {
        let f = free_regions(&[r(0x1001, 0x1fff), r(0x3000, 0x3000)], &[]).unwrap();
        assert!(f.is_empty());
    }

    #[test]
    fn too_many_pieces_is_an_error() {
        let cuts: [PhysRange; MAX_FREE_REGIONS] =
            core::array::from_fn(|i| r(0x2000 * i as u64 + 0x1000, 0x2000 * i as u64 + 0x2000));
        assert_eq!(
            free_regions(&[r(0, 0x1000_0000)], &cuts),
            Err(MemmapError::TooManyRegions)
        );
    }

    fn arb_range() -> impl Strategy<Value = PhysRange> {
        (0u64..0x40_0000, 0u64..0x10_0000).prop_map(|(s, l)| r(s, s + l))
    }

    proptest! {
        #[test]
        fn free_regions_properties(
            memory in proptest::collection::vec(arb_range(), 0..6),
            exclude in proptest::collection::vec(arb_range(), 0..10),
        ) {
            let f = free_regions(&memory, &exclude).unwrap();
            for w in f.windows(2) {
                prop_assert!(w[0].end < w[1].start, "sorted, disjoint, not touching");
            }
            for fr in f.iter() {
                prop_assert!(!fr.is_empty());
                prop_assert!(fr.start.is_aligned(PAGE_SIZE) && fr.end.is_aligned(PAGE_SIZE));
                prop_assert!(exclude.iter().all(|e| !fr.overlaps(e)), "overlaps an exclusion");
            }
            // Page by page: free exactly when wholly inside a bank and touching no exclusion.
            for page in (0..0x50_0000u64).step_by(PAGE_SIZE as usize) {
                let p = r(page, page + PAGE_SIZE);
                let in_memory = memory.iter().any(|m| m.start.0 <= p.start.0 && p.end.0 <= m.end.0);
                let excluded = exclude.iter().any(|e| e.overlaps(&p));
                prop_assert_eq!(contains(&f, p.start), in_memory && !excluded, "page {:#x}", page);
            }
        }
    }
}
