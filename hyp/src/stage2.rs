//! A domain's stage-2 translation: guest-physical to host-physical.
//!
//! Built with the generic table builder ([`crate::pagetable`], stage-2
//! descriptor format, 40-bit IPA from level 1 with two concatenated roots).
//! Every table page comes from the frame allocator and is returned by
//! [`Stage2::destroy`], so a domain's overhead is counted like its RAM.

use tern_abi::Error;

use crate::addr::{PAGE_SIZE, PhysAddr};
use crate::domain::ram::GuestRam;
use crate::pagetable::{Attributes, ENTRIES_PER_TABLE, MapError, Stage2Table, TableMemory};
use crate::physmem::{FrameSource, PhysMem};

/// Table pages drawn from a [`FrameSource`] and reached through [`PhysMem`].
struct FrameTables<'a> {
    frames: &'a mut dyn FrameSource,
    mem: &'a dyn PhysMem,
}

fn order_of(count: usize) -> u32 {
    count.trailing_zeros()
}

impl TableMemory for FrameTables<'_> {
    fn alloc_tables(&mut self, count: usize) -> Option<PhysAddr> {
        debug_assert!(count.is_power_of_two());
        self.frames.alloc_frames(order_of(count))
    }
    fn free_tables(&mut self, pa: PhysAddr, count: usize) {
        self.frames.free_frames(pa, order_of(count));
    }
    fn table(&mut self, pa: PhysAddr) -> &mut [u64; ENTRIES_PER_TABLE] {
        // SAFETY: `pa` is a table page this stage-2 allocated from the frame
        // allocator and owns alone; `&mut self` makes this the only live
        // reference to it.
        unsafe { &mut *self.mem.table_ptr(pa) }
    }
    fn table_ref(&self, pa: PhysAddr) -> &[u64; ENTRIES_PER_TABLE] {
        // SAFETY: as in `table`; shared access for the duration of `&self`.
        unsafe { &*self.mem.table_ptr(pa) }
    }
}

/// A domain's stage-2 tables.
#[derive(Debug)]
pub struct Stage2 {
    table: Option<Stage2Table>,
}

fn map_error(e: MapError) -> Error {
    match e {
        MapError::OutOfMemory => Error::NoMemory,
        _ => Error::InvalidArgument,
    }
}

impl Stage2 {
    /// Tables that map all of `ram` read-write-execute, normal write-back memory.
    pub fn for_ram(
        ram: &GuestRam,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<Self, Error> {
        let mut tm = FrameTables { frames, mem };
        let mut table = Stage2Table::new(&mut tm).map_err(map_error)?;
        for c in ram.chunks() {
            let ipa = crate::addr::GuestPhysAddr(ram.base().0 + c.ipa_offset);
            if let Err(e) = table.map(&mut tm, ipa, c.pa, c.size(), Attributes::RAM_RWX) {
                table.destroy(&mut tm);
                return Err(map_error(e));
            }
        }
        Ok(Self { table: Some(table) })
    }

    /// The root table, for `VTTBR_EL2.BADDR`.
    pub fn root(&self) -> PhysAddr {
        self.table
            .as_ref()
            .map(Stage2Table::root)
            .unwrap_or_default()
    }

    /// Table pages in use (the domain's translation overhead).
    pub fn table_pages(&self) -> u64 {
        self.table.as_ref().map_or(0, |t| t.table_count() as u64)
    }

    /// Where `ipa` leads, by walking the tables as the hardware would.
    pub fn translate(
        &self,
        ipa: crate::addr::GuestPhysAddr,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Option<PhysAddr> {
        let tm = FrameTables { frames, mem };
        self.table.as_ref()?.translate(&tm, ipa).map(|(pa, _)| pa)
    }

    /// Maps the page `pa` at `ipa` in a live stage 2 (grant mappings): normal
    /// write-back memory, never executable, writable only if `writable`.
    /// `AlreadyMapped` and range errors are `InvalidArgument`, a missing
    /// table page `NoMemory`. The new entry replaces an invalid one, so no
    /// TLB entry can be stale; the arch layer issues `dsb ishst` before the
    /// guest runs again so the walker sees it.
    pub fn map_page(
        &mut self,
        ipa: crate::addr::GuestPhysAddr,
        pa: PhysAddr,
        writable: bool,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<(), Error> {
        let table = self.table.as_mut().ok_or(Error::InvalidState)?;
        let attrs = if writable {
            Attributes::RAM_RW
        } else {
            Attributes::RAM_RW.read_only()
        };
        table
            .map(&mut FrameTables { frames, mem }, ipa, pa, PAGE_SIZE, attrs)
            .map_err(map_error)
    }

    /// Maps a device's registers at their own address (IPA == PA) as
    /// Device-nGnRE, read-write, never executable: how dom0 reaches the
    /// devices it is given. The registers lie in the device window below
    /// guest RAM or, on boards with devices above 1 GiB (the BCM2711's at
    /// `0xFC00_0000`), between the end of the domain's RAM (`ram_end`, an
    /// IPA) and the mapping window (`specs/memory-map.md`). Before the domain
    /// first runs, so no TLB maintenance is needed.
    pub fn map_device(
        &mut self,
        regs: crate::addr::PhysRange,
        ram_end: u64,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<(), Error> {
        use tern_abi::layout::{DEVICE_WINDOW_SIZE, MAP_WINDOW_BASE};
        let table = self.table.as_mut().ok_or(Error::InvalidState)?;
        let start = regs.start.align_down(PAGE_SIZE);
        let size = regs.end.align_up(PAGE_SIZE).0 - start.0;
        let in_window = regs.end.0 <= DEVICE_WINDOW_SIZE;
        let above_ram = start.0 >= ram_end && regs.end.0 <= MAP_WINDOW_BASE;
        if !in_window && !above_ram {
            return Err(Error::InvalidArgument);
        }
        let ipa = crate::addr::GuestPhysAddr(start.0);
        table
            .map(
                &mut FrameTables { frames, mem },
                ipa,
                start,
                size,
                Attributes::DEVICE_RW,
            )
            .map_err(map_error)
    }

    /// Removes the page mapped at `ipa` (nothing if none). Table pages left
    /// empty are freed. The caller must have the VMID's TLB entries for
    /// `ipa` invalidated before the frame behind it is used for anything
    /// else.
    pub fn unmap_page(
        &mut self,
        ipa: crate::addr::GuestPhysAddr,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<(), Error> {
        let table = self.table.as_mut().ok_or(Error::InvalidState)?;
        table
            .unmap(&mut FrameTables { frames, mem }, ipa, PAGE_SIZE)
            .map_err(map_error)
    }

    /// Frees every table page. The caller invalidates the VMID's TLB entries
    /// before the VMID is given to another domain.
    pub fn destroy(&mut self, frames: &mut dyn FrameSource, mem: &dyn PhysMem) {
        if let Some(t) = self.table.take() {
            t.destroy(&mut FrameTables { frames, mem });
        }
    }
}

/// Bytes of one stage-2 root (two concatenated level-1 tables).
pub const ROOT_BYTES: u64 = 2 * PAGE_SIZE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::GuestPhysAddr;
    use crate::physmem::testing::Arena;

    #[test]
    fn maps_ram_with_blocks_and_frees_every_table() {
        let mem = Arena::new(0x8000_0000, 4096);
        let mut frames = Arena::new(0x8000_0000, 4096);
        let base = GuestPhysAddr(0x4000_0000);
        let mut ram = GuestRam::allocate(base, 1024 + 2, &mut frames, &mem).unwrap();
        let mut s2 = Stage2::for_ram(&ram, &mut frames, &mem).unwrap();
        // Root (2 tables) + one level-2 table; the two 2 MiB runs are blocks,
        // the two single pages need one level-3 table.
        assert_eq!(s2.table_pages(), 4);
        assert!(s2.root().is_aligned(ROOT_BYTES));
        for ipa in [
            0x4000_0000u64,
            0x401f_fff8,
            0x4020_0000,
            0x4040_0000,
            0x4040_1ff8,
        ] {
            assert_eq!(
                s2.translate(GuestPhysAddr(ipa), &mut frames, &mem),
                ram.translate(GuestPhysAddr(ipa)),
                "{ipa:#x}"
            );
        }
        for ipa in [0x3fff_f000u64, 0x4040_2000, 0x10_0000_0000, 0x0900_0000] {
            assert_eq!(
                s2.translate(GuestPhysAddr(ipa), &mut frames, &mem),
                None,
                "{ipa:#x}"
            );
        }
        s2.destroy(&mut frames, &mem);
        ram.free(&mut frames);
        assert_eq!(frames.live_runs(), 0);
    }

    #[test]
    fn devices_map_in_the_window_or_between_ram_and_the_map_window() {
        use crate::addr::{PhysAddr, PhysRange};
        let mem = Arena::new(0x8000_0000, 4096);
        let mut frames = Arena::new(0x8000_0000, 4096);
        let base = GuestPhysAddr(0x4000_0000);
        let mut ram = GuestRam::allocate(base, 1024, &mut frames, &mem).unwrap();
        let mut s2 = Stage2::for_ram(&ram, &mut frames, &mem).unwrap();
        let ram_end = 0x4000_0000 + 1024 * PAGE_SIZE;
        let regs = |start: u64, size: u64| PhysRange {
            start: PhysAddr(start),
            end: PhysAddr(start + size),
        };
        // QEMU virt's PL031, and the Pi 4's EMMC2 above 1 GiB: identity.
        for (start, size) in [(0x0901_0000u64, 0x1000), (0xfe34_0000, 0x100)] {
            s2.map_device(regs(start, size), ram_end, &mut frames, &mem)
                .unwrap();
            assert_eq!(
                s2.translate(GuestPhysAddr(start + 8), &mut frames, &mem),
                Some(PhysAddr(start + 8)),
                "{start:#x}"
            );
        }
        // Over the domain's RAM, across the window's end, or in the mapping
        // window: refused.
        for (start, size) in [
            (ram_end - PAGE_SIZE, 0x100),
            (0x3fff_f000, 0x2000),
            (tern_abi::layout::MAP_WINDOW_BASE, 0x1000),
        ] {
            assert_eq!(
                s2.map_device(regs(start, size), ram_end, &mut frames, &mem),
                Err(Error::InvalidArgument),
                "{start:#x}"
            );
        }
        s2.destroy(&mut frames, &mem);
        ram.free(&mut frames);
        assert_eq!(frames.live_runs(), 0);
    }
}
