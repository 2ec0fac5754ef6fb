//! A domain's RAM: the frames that back it and the guest-physical window they
//! appear at.
//!
//! RAM is allocated in 2 MiB runs where the allocator has them (so stage 2 can
//! use block mappings and the TLB holds fewer entries) and in single pages for the
//! rest. Every page is counted: [`GuestRam::pages`] is exactly what the domain
//! holds, and [`GuestRam::free`] returns every run it took.
//!
//! Guest-supplied addresses are checked here, once: every copy in or out of guest
//! memory goes through [`GuestRam::read`] / [`GuestRam::write`], which refuse any
//! range not wholly inside the domain's RAM.

use alloc::vec::Vec;

use tern_abi::Error;

use crate::addr::{GuestPhysAddr, PAGE_SHIFT, PAGE_SIZE, PhysAddr};
use crate::physmem::{FrameSource, PhysMem};

/// Order of a 2 MiB run of pages (a level-2 block).
pub const BLOCK_ORDER: u32 = 9;

/// A run of physically contiguous frames mapped at `base + ipa_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Offset of the run from the start of guest RAM.
    pub ipa_offset: u64,
    /// First frame.
    pub pa: PhysAddr,
    /// log2 of the number of pages.
    pub order: u32,
}

impl Chunk {
    /// Size in bytes.
    pub const fn size(&self) -> u64 {
        PAGE_SIZE << self.order
    }
}

/// The RAM of one domain.
#[derive(Debug)]
pub struct GuestRam {
    base: GuestPhysAddr,
    size: u64,
    chunks: Vec<Chunk>,
}

impl GuestRam {
    /// Allocates and zeroes `pages` pages of RAM to appear at `base` (which must
    /// be 2 MiB aligned so that block runs line up with block mappings).
    ///
    /// On failure everything taken so far is given back and `NoMemory` returned.
    pub fn allocate(
        base: GuestPhysAddr,
        pages: u64,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<Self, Error> {
        debug_assert!(base.is_aligned(PAGE_SIZE << BLOCK_ORDER));
        let mut ram = Self {
            base,
            size: 0,
            chunks: Vec::new(),
        };
        let mut left = pages;
        while left > 0 {
            let want = if left >= 1 << BLOCK_ORDER {
                BLOCK_ORDER
            } else {
                0
            };
            let got = frames.alloc_frames(want).map(|pa| (pa, want)).or_else(|| {
                // Fragmented: fall back to single pages for this run.
                (want != 0)
                    .then(|| frames.alloc_frames(0).map(|pa| (pa, 0)))
                    .flatten()
            });
            let Some((pa, order)) = got else {
                ram.free(frames);
                return Err(Error::NoMemory);
            };
            mem.zero(pa, PAGE_SIZE << order);
            ram.chunks.push(Chunk {
                ipa_offset: ram.size,
                pa,
                order,
            });
            ram.size += PAGE_SIZE << order;
            left -= 1 << order;
        }
        Ok(ram)
    }

    /// Allocates and zeroes `pages` pages as ONE physically contiguous run at
    /// `base` (dom0's RAM: devices it drives do DMA by physical address).
    /// `pages` must be a power of two (the frame allocator hands out
    /// power-of-two blocks and the accounting must stay exact).
    ///
    /// Errors: `InvalidArgument` (not a power of two), `NoMemory`.
    pub fn allocate_contiguous(
        base: GuestPhysAddr,
        pages: u64,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<Self, Error> {
        if !pages.is_power_of_two() {
            return Err(Error::InvalidArgument);
        }
        let order = pages.trailing_zeros();
        let pa = frames.alloc_frames(order).ok_or(Error::NoMemory)?;
        mem.zero(pa, PAGE_SIZE << order);
        Ok(Self {
            base,
            size: PAGE_SIZE << order,
            chunks: alloc::vec![Chunk {
                ipa_offset: 0,
                pa,
                order,
            }],
        })
    }

    /// Returns every frame to `frames`. The RAM is empty afterwards.
    pub fn free(&mut self, frames: &mut dyn FrameSource) {
        for c in self.chunks.drain(..) {
            frames.free_frames(c.pa, c.order);
        }
        self.size = 0;
    }

    /// First guest-physical address.
    pub const fn base(&self) -> GuestPhysAddr {
        self.base
    }

    /// Size in bytes.
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// Pages held.
    pub const fn pages(&self) -> u64 {
        self.size >> PAGE_SHIFT
    }

    /// The runs, in guest-physical order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Whether `[ipa, ipa + len)` lies wholly inside this RAM.
    pub fn contains(&self, ipa: GuestPhysAddr, len: u64) -> bool {
        let Some(off) = ipa.0.checked_sub(self.base.0) else {
            return false;
        };
        off.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// The frame behind a guest-physical address inside RAM.
    pub fn translate(&self, ipa: GuestPhysAddr) -> Option<PhysAddr> {
        let off = ipa.0.checked_sub(self.base.0)?;
        if off >= self.size {
            return None;
        }
        let i = self.chunks.partition_point(|c| c.ipa_offset <= off) - 1;
        let c = &self.chunks[i];
        Some(PhysAddr(c.pa.0 + (off - c.ipa_offset)))
    }

    /// Calls `f(pa, range_in_buffer)` for each physically contiguous piece of
    /// `[ipa, ipa + len)`, after checking the whole range is RAM.
    fn for_each_piece(
        &self,
        ipa: GuestPhysAddr,
        len: u64,
        mut f: impl FnMut(PhysAddr, core::ops::Range<usize>),
    ) -> Result<(), Error> {
        if !self.contains(ipa, len) {
            return Err(Error::BadAddress);
        }
        let mut off = ipa.0 - self.base.0;
        let mut done = 0u64;
        let mut i = self.chunks.partition_point(|c| c.ipa_offset <= off) - 1;
        while done < len {
            let c = &self.chunks[i];
            let in_chunk = off - c.ipa_offset;
            let n = (c.size() - in_chunk).min(len - done);
            f(
                PhysAddr(c.pa.0 + in_chunk),
                done as usize..(done + n) as usize,
            );
            done += n;
            off += n;
            i += 1;
        }
        Ok(())
    }

    /// Copies guest memory at `ipa` into `buf`. `BadAddress` if any byte lies
    /// outside RAM (nothing is read then).
    pub fn read(&self, mem: &dyn PhysMem, ipa: GuestPhysAddr, buf: &mut [u8]) -> Result<(), Error> {
        self.for_each_piece(ipa, buf.len() as u64, |pa, r| mem.read(pa, &mut buf[r]))
    }

    /// Copies `data` into guest memory at `ipa`. `BadAddress` if any byte lies
    /// outside RAM (nothing is written then).
    pub fn write(&self, mem: &dyn PhysMem, ipa: GuestPhysAddr, data: &[u8]) -> Result<(), Error> {
        self.for_each_piece(ipa, data.len() as u64, |pa, r| mem.write(pa, &data[r]))
    }

    /// Zeroes `len` bytes of guest memory at `ipa`.
    pub fn zero(&self, mem: &dyn PhysMem, ipa: GuestPhysAddr, len: u64) -> Result<(), Error> {
        self.for_each_piece(ipa, len, |pa, r| mem.zero(pa, r.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physmem::testing::Arena;

    const BASE: GuestPhysAddr = GuestPhysAddr(0x4000_0000);

    #[test]
    fn allocates_blocks_then_pages_and_frees_all() {
        let mem = Arena::new(0x8000_0000, 2048);
        let mut frames = Arena::new(0x8000_0000, 2048);
        let mut ram = GuestRam::allocate(BASE, 512 + 3, &mut frames, &mem).unwrap();
        assert_eq!(ram.pages(), 515);
        assert_eq!(ram.chunks()[0].order, BLOCK_ORDER);
        assert_eq!(ram.chunks().len(), 4);
        ram.free(&mut frames);
        assert_eq!(frames.live_runs(), 0);
        assert_eq!(ram.pages(), 0);
    }

    #[test]
    fn contiguous_is_one_run_of_a_power_of_two() {
        let mem = Arena::new(0x8000_0000, 2048);
        let mut frames = Arena::new(0x8000_0000, 2048);
        let bad = GuestRam::allocate_contiguous(BASE, 513, &mut frames, &mem);
        assert_eq!(bad.unwrap_err(), Error::InvalidArgument);
        let mut ram = GuestRam::allocate_contiguous(BASE, 1024, &mut frames, &mem).unwrap();
        assert_eq!((ram.pages(), ram.chunks().len()), (1024, 1));
        let pa = ram.chunks()[0].pa;
        assert_eq!(
            ram.translate(GuestPhysAddr(BASE.0 + 0x12345)),
            Some(PhysAddr(pa.0 + 0x12345))
        );
        let more = GuestRam::allocate_contiguous(BASE, 2048, &mut frames, &mem);
        assert_eq!(more.unwrap_err(), Error::NoMemory);
        ram.free(&mut frames);
        assert_eq!(frames.live_runs(), 0);
    }

    #[test]
    fn out_of_memory_gives_everything_back() {
        let mem = Arena::new(0x8000_0000, 600);
        let mut frames = Arena::new(0x8000_0000, 600);
        assert_eq!(
            GuestRam::allocate(BASE, 1024, &mut frames, &mem).unwrap_err(),
            Error::NoMemory
        );
        assert_eq!(frames.live_runs(), 0);
    }

    #[test]
    fn copies_across_chunks_and_refuses_outside() {
        let mem = Arena::new(0x8000_0000, 16);
        let mut frames = Arena::new(0x8000_0000, 16);
        let ram = GuestRam::allocate(BASE, 3, &mut frames, &mem).unwrap();
        // Zeroed on allocation.
        let mut b = [0xffu8; 8];
        ram.read(&mem, BASE, &mut b).unwrap();
        assert_eq!(b, [0; 8]);
        // A write that straddles two single-page chunks reads back whole.
        let data: std::vec::Vec<u8> = (0..100u8).collect();
        let at = GuestPhysAddr(BASE.0 + PAGE_SIZE - 50);
        ram.write(&mem, at, &data).unwrap();
        let mut back = [0u8; 100];
        ram.read(&mem, at, &mut back).unwrap();
        assert_eq!(&back[..], &data[..]);
        // One byte past the end, below the start, and wrapping are refused.
        let end = GuestPhysAddr(BASE.0 + 3 * PAGE_SIZE);
        assert_eq!(
            ram.write(&mem, GuestPhysAddr(end.0 - 1), &[1, 2]),
            Err(Error::BadAddress)
        );
        assert_eq!(
            ram.read(&mem, GuestPhysAddr(BASE.0 - 1), &mut b[..1]),
            Err(Error::BadAddress)
        );
        assert_eq!(
            ram.zero(&mem, GuestPhysAddr(u64::MAX), 2),
            Err(Error::BadAddress)
        );
        assert!(ram.contains(GuestPhysAddr(end.0), 0) && !ram.contains(end, 1));
        assert_eq!(
            ram.translate(GuestPhysAddr(BASE.0 + 5)),
            Some(PhysAddr(ram.chunks()[0].pa.0 + 5))
        );
        assert_eq!(ram.translate(end), None);
    }
}
