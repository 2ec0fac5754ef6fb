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
    /// Copies `len` bytes from `src` to `dst`; the ranges may overlap (the
    /// result is as if through a buffer).
    fn copy(&self, src: PhysAddr, dst: PhysAddr, len: u64);
    /// A pointer through which the hypervisor edits the translation table page
    /// at `pa` (a frame it allocated for tables and nothing else).
    fn table_ptr(&self, pa: PhysAddr) -> *mut [u64; 512];

    // Atomic access to words a guest shares with the hypervisor (event
    // pages, time pages): the guest changes them concurrently from its own
    // vCPUs, so a plain copy could lose its updates. `pa` is 8-byte aligned.

    /// Reads the 64-bit word at `pa` (acquire).
    fn load_u64(&self, pa: PhysAddr) -> u64;
    /// Writes the 64-bit word at `pa` (release: every earlier access of this
    /// CPU is observed before it).
    fn store_u64(&self, pa: PhysAddr, value: u64);
    /// Atomically ORs `bits` into the word at `pa`; returns the old value.
    fn fetch_or_u64(&self, pa: PhysAddr, bits: u64) -> u64;
    /// Atomically ANDs `bits` into the word at `pa`; returns the old value.
    fn fetch_and_u64(&self, pa: PhysAddr, bits: u64) -> u64;
}

/// A source of physical frames, in power-of-two runs of 4 KiB pages.
///
/// Implemented by the frame allocator (`frames`); tests use a counting fake.
pub trait FrameSource {
    /// Allocates `1 << order` contiguous pages aligned to their size.
    fn alloc_frames(&mut self, order: u32) -> Option<PhysAddr>;
    /// Returns a run that `alloc_frames(order)` gave out.
    fn free_frames(&mut self, pa: PhysAddr, order: u32);
    /// Pages not handed out.
    fn free_page_count(&self) -> u64;
    /// Pages managed in all.
    fn total_page_count(&self) -> u64;
}

#[cfg(test)]
pub mod testing {
    //! Host stand-ins for physical memory and the frame allocator.
    use super::*;
    use crate::addr::PAGE_SIZE;
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicU64, Ordering};
    use std::collections::BTreeSet;
    use std::vec;
    use std::vec::Vec;

    /// A block of host memory posing as physical memory at `base`, with a simple
    /// allocator that tracks every run it hands out so tests can assert that
    /// nothing leaks and nothing is freed twice.
    pub struct Arena {
        base: u64,
        // u64 words so that table pages are 8-byte aligned like real tables.
        words: UnsafeCell<Vec<u64>>,
        len: usize,
        next: u64,
        free: Vec<(u64, u32)>,
        live: BTreeSet<(u64, u32)>,
    }

    impl Arena {
        /// An arena of `pages` pages at physical address `base`.
        pub fn new(base: u64, pages: u64) -> Self {
            let len = (pages * PAGE_SIZE) as usize;
            Self {
                base,
                words: UnsafeCell::new(vec![0xa5a5_a5a5_a5a5_a5a5; len / 8]),
                len,
                next: base,
                free: Vec::new(),
                live: BTreeSet::new(),
            }
        }
        /// Runs handed out and not yet returned.
        pub fn live_runs(&self) -> usize {
            self.live.len()
        }
        /// A pointer to `len` bytes at `pa`, after checking they are in the arena.
        fn ptr(&self, pa: PhysAddr, len: u64) -> *mut u8 {
            let off = pa.0.checked_sub(self.base).expect("below arena") as usize;
            assert!(off + len as usize <= self.len, "past arena end");
            // SAFETY: `off` is inside the vector's buffer (checked above), which
            // is never resized after `new`.
            unsafe { (*self.words.get()).as_mut_ptr().cast::<u8>().add(off) }
        }
    }

    // The arena is used from one test thread at a time, like physical memory
    // from one CPU under the hypervisor lock.
    impl PhysMem for Arena {
        fn read(&self, pa: PhysAddr, buf: &mut [u8]) {
            let p = self.ptr(pa, buf.len() as u64);
            // SAFETY: `ptr` checked the range; `buf` is a distinct allocation.
            unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) }
        }
        fn write(&self, pa: PhysAddr, data: &[u8]) {
            let p = self.ptr(pa, data.len() as u64);
            // SAFETY: as in `read`.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) }
        }
        fn zero(&self, pa: PhysAddr, len: u64) {
            let p = self.ptr(pa, len);
            // SAFETY: `ptr` checked the range.
            unsafe { core::ptr::write_bytes(p, 0, len as usize) }
        }
        fn copy(&self, src: PhysAddr, dst: PhysAddr, len: u64) {
            let (s, d) = (self.ptr(src, len), self.ptr(dst, len));
            // SAFETY: `ptr` checked both ranges; `copy` allows overlap.
            unsafe { core::ptr::copy(s, d, len as usize) }
        }
        fn table_ptr(&self, pa: PhysAddr) -> *mut [u64; 512] {
            assert!(pa.is_aligned(PAGE_SIZE));
            self.ptr(pa, PAGE_SIZE).cast()
        }
        fn load_u64(&self, pa: PhysAddr) -> u64 {
            self.word(pa).load(Ordering::Acquire)
        }
        fn store_u64(&self, pa: PhysAddr, value: u64) {
            self.word(pa).store(value, Ordering::Release)
        }
        fn fetch_or_u64(&self, pa: PhysAddr, bits: u64) -> u64 {
            self.word(pa).fetch_or(bits, Ordering::AcqRel)
        }
        fn fetch_and_u64(&self, pa: PhysAddr, bits: u64) -> u64 {
            self.word(pa).fetch_and(bits, Ordering::AcqRel)
        }
    }

    impl Arena {
        /// The word at `pa` as an atomic.
        fn word(&self, pa: PhysAddr) -> &AtomicU64 {
            assert!(pa.is_aligned(8), "unaligned word {pa:?}");
            let p = self.ptr(pa, 8).cast::<u64>();
            // SAFETY: `ptr` checked the 8 bytes are inside the arena's buffer,
            // which lives as long as `self`; `p` is 8-byte aligned (checked
            // above, and the buffer is a `Vec<u64>`); all access to arena
            // memory during a test happens on the arena's thread.
            unsafe { AtomicU64::from_ptr(p) }
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
            if pa + size > self.base + self.len as u64 {
                return None;
            }
            self.next = pa + size;
            self.live.insert((pa, order));
            Some(PhysAddr(pa))
        }
        fn free_frames(&mut self, pa: PhysAddr, order: u32) {
            assert!(
                self.live.remove(&(pa.0, order)),
                "double or foreign free {pa:?}"
            );
            self.free.push((pa.0, order));
        }
        fn free_page_count(&self) -> u64 {
            self.total_page_count() - self.live.iter().map(|&(_, o)| 1u64 << o).sum::<u64>()
        }
        fn total_page_count(&self) -> u64 {
            self.len as u64 / PAGE_SIZE
        }
    }
}
