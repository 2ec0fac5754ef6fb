//! Access to host-physical memory that the hypervisor owns.
//!
//! Generic code never dereferences a physical address itself: it goes through
//! [`PhysMem`]. On the board the hypervisor runs identity mapped, so the
//! implementation (`arch::aarch64::physmem`) is a plain copy; host tests use an
//! arena (`testing::Arena`). Keeping the copy behind a trait is what lets the
//! domain, loader and hypercall code be tested on x86-64.

use crate::addr::PhysAddr;

/// Byte access to physical memory the caller has already proven it owns (a frame
/// from the frame allocator, a boot module). Implementations never fail: an
/// address outside what they cover is a hypervisor bug, not a guest error, so
/// callers validate guest-supplied addresses before they get here.
pub trait PhysMem {
    /// Copies `buf.len()` bytes starting at `pa` into `buf`.
    fn read(&self, pa: PhysAddr, buf: &mut [u8]);
    /// Copies `data` to memory starting at `pa`.
    fn write(&self, pa: PhysAddr, data: &[u8]);
    /// Sets `len` bytes starting at `pa` to zero.
    fn zero(&self, pa: PhysAddr, len: u64);
}

/// A source of physical frames, in power-of-two runs of 4 KiB pages.
///
/// Implemented by the frame allocator (`frames`); tests use a counting fake.
pub trait FrameSource {
    /// Allocates `1 << order` contiguous pages aligned to their size.
    fn alloc_frames(&mut self, order: u32) -> Option<PhysAddr>;
    /// Returns a run that `alloc_frames(order)` gave out.
    fn free_frames(&mut self, pa: PhysAddr, order: u32);
}

#[cfg(test)]
pub mod testing {
    //! Host stand-ins for physical memory and the frame allocator.
    use super::*;
    use crate::addr::PAGE_SIZE;
    use core::cell::RefCell;
    use std::collections::BTreeSet;
    use std::vec;
    use std::vec::Vec;

    /// A block of host memory posing as physical memory at `base`, with a simple
    /// allocator that tracks every run it hands out so tests can assert that
    /// nothing leaks and nothing is freed twice.
    pub struct Arena {
        base: u64,
        bytes: RefCell<Vec<u8>>,
        next: u64,
        free: Vec<(u64, u32)>,
        live: BTreeSet<(u64, u32)>,
    }

    impl Arena {
        /// An arena of `pages` pages at physical address `base`.
        pub fn new(base: u64, pages: u64) -> Self {
            Self {
                base,
                bytes: RefCell::new(vec![0xa5; (pages * PAGE_SIZE) as usize]),
                next: base,
                free: Vec::new(),
                live: BTreeSet::new(),
            }
        }
        /// Runs handed out and not yet returned.
        pub fn live_runs(&self) -> usize {
            self.live.len()
        }
        fn range(&self, pa: PhysAddr, len: u64) -> core::ops::Range<usize> {
            let off = pa.0.checked_sub(self.base).expect("below arena") as usize;
            let end = off + len as usize;
            assert!(end <= self.bytes.borrow().len(), "past arena end");
            off..end
        }
    }

    impl PhysMem for Arena {
        fn read(&self, pa: PhysAddr, buf: &mut [u8]) {
            let r = self.range(pa, buf.len() as u64);
            buf.copy_from_slice(&self.bytes.borrow()[r]);
        }
        fn write(&self, pa: PhysAddr, data: &[u8]) {
            let r = self.range(pa, data.len() as u64);
            self.bytes.borrow_mut()[r].copy_from_slice(data);
        }
        fn zero(&self, pa: PhysAddr, len: u64) {
            let r = self.range(pa, len);
            self.bytes.borrow_mut()[r].fill(0);
        }
    }

    impl FrameSource for Arena {
        fn alloc_frames(&mut self, order: u32) -> Option<PhysAddr> {
            if let Some(i) = self.free.iter().position(|&(_, o)| o == order) {
                let (pa, o) = self.free.swap_remove(i);
                self.live.insert((pa, o));
                return Some(PhysAddr(pa));
            }
            let size = PAGE_SIZE << order;
            let pa = self.next.next_multiple_of(size);
            if pa + size > self.base + self.bytes.borrow().len() as u64 {
                return None;
            }
            self.next = pa + size;
            self.live.insert((pa, order));
            Some(PhysAddr(pa))
        }
        fn free_frames(&mut self, pa: PhysAddr, order: u32) {
            assert!(self.live.remove(&(pa.0, order)), "double or foreign free {pa:?}");
            self.free.push((pa.0, order));
        }
    }
}
