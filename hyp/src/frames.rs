//! The physical frame allocator: every 4 KiB page the hypervisor hands out (page
//! tables, domain memory, heap growth) comes from here and is counted exactly.
//!
//! Public API:
//! - [`FrameAllocator::new`], [`FrameAllocator::add_region`]
//! - [`FrameAllocator::alloc_page`] / [`FrameAllocator::alloc_pages`]`(order)`:
//!   `2^order` contiguous pages aligned to their size.
//! - [`FrameAllocator::dealloc_page`] / [`FrameAllocator::dealloc_pages`]`(pa, order)
//!   -> Result<(), FrameError>`
//! - [`FrameAllocator::free_pages`], [`FrameAllocator::total_pages`],
//!   [`FrameAllocator::allocated_pages`]: exact counts.
//! - Heap seeding: [`carve_heap`] (before this allocator exists: its bookkeeping
//!   lives on the heap) and [`FrameAllocator::alloc_heap_growth`] (later), with the
//!   [`GlobalHeap`] type the boot code installs as `#[global_allocator]`.
//!
//! Checking: every outstanding allocation is recorded (start page -> order) in a
//! sorted map (`VecMap`: a `BTreeMap` instantiation costs kilobytes of image,
//! and allocations come and go at domain creation and destruction, not on hot
//! paths), so freeing a page twice, freeing a foreign or never-allocated
//! address, or freeing with a different order than allocated is reported as a
//! [`FrameError`] and changes nothing. Cost: one map entry per outstanding
//! allocation (16 bytes, and an insert or remove moves the entries after it),
//! which is why domain memory should be taken in large orders.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PhysAddr, PhysRange};
use crate::memmap::FreeRegions;
use crate::vec_map::VecMap;

/// Orders of the buddy system: blocks of up to `2^(BUDDY_ORDER - 1)` pages.
pub const BUDDY_ORDER: usize = 32;
/// Largest `order` accepted by [`FrameAllocator::alloc_pages`].
pub const MAX_ORDER: u32 = BUDDY_ORDER as u32 - 1;
/// Orders of the global heap's buddy allocator (blocks up to 2^31 bytes).
pub const HEAP_ORDER: usize = 32;

/// The heap type the boot code registers as `#[global_allocator]`.
pub type GlobalHeap = buddy_system_allocator::LockedHeap<HEAP_ORDER>;

/// Why a free or a region addition was refused (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not page aligned.
    Unaligned,
    /// Outside every region this allocator manages.
    Foreign,
    /// Managed, but no allocation starts here: a double free or an interior address.
    NotAllocated,
    /// An allocation starts here, but of another order.
    WrongOrder {
        /// The order it was allocated with.
        allocated: u32,
    },
    /// `order` above [`MAX_ORDER`].
    OrderTooLarge,
    /// A region overlaps one already managed.
    Overlap,
}

/// Buddy allocator over 4 KiB frames with exact accounting.
pub struct FrameAllocator {
    buddy: buddy_system_allocator::FrameAllocator<BUDDY_ORDER>,
    regions: Vec<PhysRange>,
    outstanding: VecMap<u64, u32>,
    total_pages: u64,
    free_pages: u64,
}

impl core::fmt::Debug for FrameAllocator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("regions", &self.regions)
            .field("total_pages", &self.total_pages)
            .field("free_pages", &self.free_pages)
            .finish_non_exhaustive()
    }
}

impl Default for FrameAllocator {
    fn default() -> Self {
        Self::new()
    }
}

const fn pfn(pa: PhysAddr) -> usize {
    (pa.0 >> PAGE_SHIFT) as usize
}

impl FrameAllocator {
    /// An allocator managing nothing yet.
    pub const fn new() -> Self {
        Self {
            buddy: buddy_system_allocator::FrameAllocator::new(),
            regions: Vec::new(),
            outstanding: VecMap::new(),
            total_pages: 0,
            free_pages: 0,
        }
    }

    /// Hands the pages of `region` to the allocator (empty regions are ignored).
    pub fn add_region(&mut self, region: PhysRange) -> Result<(), FrameError> {
        if !region.start.is_aligned(PAGE_SIZE) || !region.end.is_aligned(PAGE_SIZE) {
            return Err(FrameError::Unaligned);
        }
        if region.is_empty() {
            return Ok(());
        }
        if self.regions.iter().any(|r| r.overlaps(&region)) {
            return Err(FrameError::Overlap);
        }
        self.buddy.add_frame(pfn(region.start), pfn(region.end));
        self.regions.push(region);
        let pages = region.size() / PAGE_SIZE;
        self.total_pages += pages;
        self.free_pages += pages;
        Ok(())
    }

    /// Adds every region of a memory map.
    pub fn add_regions(&mut self, regions: &FreeRegions) -> Result<(), FrameError> {
        regions.iter().try_for_each(|r| self.add_region(*r))
    }

    /// One page.
    pub fn alloc_page(&mut self) -> Option<PhysAddr> {
        self.alloc_pages(0)
    }

    /// `2^order` contiguous pages aligned to `2^order * 4 KiB`.
    pub fn alloc_pages(&mut self, order: u32) -> Option<PhysAddr> {
        if order > MAX_ORDER {
            return None;
        }
        let frame = self.buddy.alloc(1 << order)?;
        let pa = PhysAddr((frame as u64) << PAGE_SHIFT);
        debug_assert!(pa.is_aligned(PAGE_SIZE << order));
        self.outstanding.insert(pa.0, order);
        self.free_pages -= 1 << order;
        Some(pa)
    }

    /// Frees one page from [`FrameAllocator::alloc_page`].
    pub fn dealloc_page(&mut self, pa: PhysAddr) -> Result<(), FrameError> {
        self.dealloc_pages(pa, 0)
    }

    /// Frees a block from [`FrameAllocator::alloc_pages`] with the same `order`.
    pub fn dealloc_pages(&mut self, pa: PhysAddr, order: u32) -> Result<(), FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::OrderTooLarge);
        }
        if !pa.is_aligned(PAGE_SIZE) {
            return Err(FrameError::Unaligned);
        }
        match self.outstanding.get(&pa.0) {
            Some(&o) if o == order => {}
            Some(&o) => return Err(FrameError::WrongOrder { allocated: o }),
            None if self.regions.iter().any(|r| r.contains(pa)) => {
                return Err(FrameError::NotAllocated);
            }
            None => return Err(FrameError::Foreign),
        }
        self.outstanding.remove(&pa.0);
        self.buddy.dealloc(pfn(pa), 1 << order);
        self.free_pages += 1 << order;
        Ok(())
    }

    /// Takes `2^order` pages for the global heap, for good: the caller adds them
    /// with `GlobalHeap::lock().add_to_heap` (the only `unsafe` step, which relies on
    /// the identity map) and they never come back.
    pub fn alloc_heap_growth(&mut self, order: u32) -> Option<PhysRange> {
        let pa = self.alloc_pages(order)?;
        Some(PhysRange::from_base_size(pa.0, PAGE_SIZE << order))
    }

    /// Pages free right now (exact).
    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Pages ever added.
    pub fn total_pages(&self) -> u64 {
        self.total_pages
    }

    /// Pages handed out and not yet freed.
    pub fn allocated_pages(&self) -> u64 {
        self.total_pages - self.free_pages
    }

    /// Whether `pa` is the start of an outstanding allocation.
    pub fn is_allocated(&self, pa: PhysAddr) -> bool {
        self.outstanding.contains_key(&pa.0)
    }
}

/// The domain code's view of this allocator.
impl crate::physmem::FrameSource for FrameAllocator {
    fn alloc_frames(&mut self, order: u32) -> Option<PhysAddr> {
        self.alloc_pages(order)
    }

    fn free_frames(&mut self, pa: PhysAddr, order: u32) {
        // The trait cannot report errors: a bad free is a hypervisor bug. It is
        // refused (nothing changes), logged, and fatal in debug builds.
        if let Err(e) = self.dealloc_pages(pa, order) {
            log::error!("frames: refused free of {pa} order {order}: {e:?}");
            debug_assert!(false, "bad frame free: {pa} order {order}: {e:?}");
        }
    }

    fn free_page_count(&self) -> u64 {
        self.free_pages()
    }

    fn total_page_count(&self) -> u64 {
        self.total_pages()
    }
}

/// Removes `bytes` (rounded up to pages) from the top of the largest region of
/// `free` and returns them, for the initial heap. Run before creating the
/// [`FrameAllocator`], whose free lists are heap allocated.
pub fn carve_heap(free: &mut FreeRegions, bytes: u64) -> Option<PhysRange> {
    let pages = bytes.div_ceil(PAGE_SIZE);
    let size = pages.checked_mul(PAGE_SIZE)?;
    let (i, r) = free.iter().enumerate().max_by_key(|(_, r)| r.size())?;
    if r.size() < size || size == 0 {
        return None;
    }
    let heap = PhysRange {
        start: PhysAddr(r.end.0 - size),
        end: r.end,
    };
    free.as_mut_slice()[i].end = heap.start;
    if free[i].is_empty() {
        free.remove(i);
    }
    Some(heap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K4: u64 = PAGE_SIZE;

    fn range(start: u64, end: u64) -> PhysRange {
        PhysRange {
            start: PhysAddr(start),
            end: PhysAddr(end),
        }
    }

    fn qemu_like() -> FrameAllocator {
        let mut f = FrameAllocator::new();
        // Two regions around a hole, odd sizes and alignments.
        f.add_region(range(0x4000_0000, 0x4008_0000)).unwrap();
        f.add_region(range(0x4020_3000, 0x4800_0000)).unwrap();
        f
    }

    #[test]
    fn counts_are_exact() {
        let mut f = qemu_like();
        let total = (0x80_000 + 0x7dfd000) / K4;
        assert_eq!(f.total_pages(), total);
        assert_eq!(f.free_pages(), total);
        let a = f.alloc_page().unwrap();
        let b = f.alloc_pages(4).unwrap();
        assert!(b.is_aligned(16 * K4));
        assert_eq!(f.free_pages(), total - 17);
        assert_eq!(f.allocated_pages(), 17);
        f.dealloc_page(a).unwrap();
        f.dealloc_pages(b, 4).unwrap();
        assert_eq!(f.free_pages(), total);
    }

    #[test]
    fn misuse_is_detected_and_harmless() {
        let mut f = qemu_like();
        let free = f.free_pages();
        let b = f.alloc_pages(2).unwrap();
        assert_eq!(
            f.dealloc_pages(b, 1),
            Err(FrameError::WrongOrder { allocated: 2 })
        );
        assert_eq!(
            f.dealloc_page(PhysAddr(b.0 + K4)),
            Err(FrameError::NotAllocated)
        );
        assert_eq!(
            f.dealloc_page(PhysAddr(b.0 + 1)),
            Err(FrameError::Unaligned)
        );
        assert_eq!(f.dealloc_page(PhysAddr(0x1000)), Err(FrameError::Foreign));
        assert_eq!(f.dealloc_pages(b, 40), Err(FrameError::OrderTooLarge));
        f.dealloc_pages(b, 2).unwrap();
        assert_eq!(
            f.dealloc_pages(b, 2),
            Err(FrameError::NotAllocated),
            "double free"
        );
        assert_eq!(f.free_pages(), free);
        assert_eq!(
            f.add_region(range(0x4000_1000, 0x4000_2000)),
            Err(FrameError::Overlap)
        );
        assert_eq!(
            f.add_region(range(0x1000, 0x1800)),
            Err(FrameError::Unaligned)
        );
        assert_eq!(f.alloc_pages(MAX_ORDER + 1), None);
    }

    #[test]
    fn exhaustion_and_refill() {
        let mut f = FrameAllocator::new();
        f.add_region(range(0x10_0000, 0x10_0000 + 8 * K4)).unwrap();
        let pages: Vec<_> = (0..8).map(|_| f.alloc_page().unwrap()).collect();
        assert_eq!(f.alloc_page(), None);
        assert_eq!(f.free_pages(), 0);
        let mut sorted = pages.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 8);
        for p in pages {
            f.dealloc_page(p).unwrap();
        }
        // Buddies merged back: the whole 8-page block is available again.
        assert_eq!(f.alloc_pages(3), Some(PhysAddr(0x10_0000)));
    }

    #[test]
    fn heap_carving() {
        let mut free = FreeRegions::new();
        free.push(range(0x4000_0000, 0x4010_0000)).unwrap();
        free.push(range(0x5000_0000, 0x5080_0000)).unwrap();
        let heap = carve_heap(&mut free, 0x10_0001).unwrap();
        assert_eq!(heap, range(0x5080_0000 - 0x10_1000, 0x5080_0000));
        assert_eq!(free[1], range(0x5000_0000, 0x5080_0000 - 0x10_1000));
        assert_eq!(carve_heap(&mut free, 1 << 40), None);
        let all = carve_heap(&mut free, 0x6ff000).unwrap();
        assert_eq!(all.size(), 0x6ff000);
        assert_eq!(free.len(), 1, "emptied region removed");
        let mut f = FrameAllocator::new();
        f.add_regions(&free).unwrap();
        let g = f.alloc_heap_growth(4).unwrap();
        assert_eq!(g.size(), 16 * K4);
        assert_eq!(f.free_pages(), 0x100 - 16);
    }

    #[test]
    fn frame_source_round_trip() {
        use crate::physmem::FrameSource;
        let mut f = qemu_like();
        let start = f.free_pages();
        // 200 create/destroy-like cycles of mixed orders come back exactly.
        for _ in 0..200 {
            let runs: Vec<_> = [0, 3, 1, 0, 5]
                .iter()
                .map(|&o| (f.alloc_frames(o).unwrap(), o))
                .collect();
            for (pa, o) in runs.into_iter().rev() {
                f.free_frames(pa, o);
            }
        }
        assert_eq!(f.free_pages(), start);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_alloc_free_returns_to_start(orders in proptest::collection::vec(0u32..6, 1..200), seed in any::<u64>()) {
            let mut f = qemu_like();
            let start = f.free_pages();
            let mut live: Vec<(PhysAddr, u32)> = Vec::new();
            let mut x = seed;
            for o in orders {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if x >> 62 == 0 && !live.is_empty() {
                    let (p, o) = live.swap_remove((x as usize >> 8) % live.len());
                    f.dealloc_pages(p, o).unwrap();
                } else if let Some(p) = f.alloc_pages(o) {
                    prop_assert!(p.is_aligned(K4 << o));
                    let r = PhysRange::from_base_size(p.0, K4 << o);
                    prop_assert!(live.iter().all(|&(q, qo)| !PhysRange::from_base_size(q.0, K4 << qo).overlaps(&r)));
                    prop_assert!(f.regions.iter().any(|m| m.contains(r.start) && r.end <= m.end));
                    live.push((p, o));
                }
                let used: u64 = live.iter().map(|&(_, o)| 1u64 << o).sum();
                prop_assert_eq!(f.free_pages(), start - used);
            }
            for (p, o) in live {
                f.dealloc_pages(p, o).unwrap();
            }
            prop_assert_eq!(f.free_pages(), start);
        }
    }
}
