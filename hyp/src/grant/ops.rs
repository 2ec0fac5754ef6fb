//! The mapper's side: `map`, `unmap` and `copy`.

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::grant::{self, GrantRef, MAPTRACK_MAX};

use super::{Grants, Mapping, Slot};
use crate::addr::{GuestPhysAddr, PAGE_SIZE, PhysAddr};
use crate::domain::table::DomainTable;
use crate::physmem::{FrameSource, PhysMem};

/// One end of a copy, decoded from a `CopyPtr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyEnd {
    /// An IPA in the caller's RAM.
    Own(GuestPhysAddr),
    /// Byte `offset` of grant `gref` of domain `granter`.
    Grant {
        /// The granting domain.
        granter: DomainId,
        /// Its grant reference.
        gref: GrantRef,
        /// Byte offset in the granted page.
        offset: u64,
    },
}

/// One copy: `len` bytes from `src` to `dst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyOp {
    /// Where the bytes come from.
    pub src: CopyEnd,
    /// Where they go.
    pub dst: CopyEnd,
    /// How many (at most a page; neither range may cross one).
    pub len: u64,
}

/// Whether `len` bytes at `offset` stay within one page.
fn in_one_page(offset: u64, len: u64) -> bool {
    (offset % PAGE_SIZE) + len <= PAGE_SIZE
}

impl Grants {
    /// `map`: maps grant `gref` of `granter` into `caller`'s mapping window.
    /// Returns the handle and the IPA.
    #[allow(clippy::too_many_arguments)] // the hypervisor's parts, lent one by one
    pub fn map(
        &mut self,
        domains: &mut DomainTable,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
        caller: DomainId,
        granter: DomainId,
        gref: GrantRef,
        writable: bool,
    ) -> Result<(u64, GuestPhysAddr, PhysAddr), Error> {
        let d = self.dom(caller);
        let slot = match d.maps.iter().position(|s| s.map.is_none()) {
            Some(i) => i,
            None if (d.maps.len() as u64) < MAPTRACK_MAX => {
                d.maps.push(Slot::default());
                d.maps.len() - 1
            }
            None => return Err(Error::TooBig),
        };
        let pa = self.pin(domains, mem, caller, granter, gref, writable)?;
        let ipa = GuestPhysAddr(grant::map_ipa(slot as u32));
        let mapped = domains
            .get_mut(caller)
            .and_then(|d| d.stage2.map_page(ipa, pa, writable, frames, mem));
        if let Err(e) = mapped {
            self.unpin(domains, mem, granter, gref, writable);
            // In practice only `NoMemory` (a table page): the slot's IPA is
            // free by construction.
            return Err(e);
        }
        self.barrier = true;
        let d = self.dom(caller);
        let s = &mut d.maps[slot];
        s.map = Some(Mapping {
            granter,
            gref,
            pa,
            writable,
            orphan: false,
        });
        d.live_maps += 1;
        Ok((grant::handle(slot as u32, s.generation), ipa, pa))
    }

    /// `unmap`: removes `caller`'s mapping `handle`.
    pub fn unmap(
        &mut self,
        domains: &mut DomainTable,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
        caller: DomainId,
        handle: u64,
    ) -> Result<(), Error> {
        let (slot, generation) = grant::split_handle(handle);
        let d = self.doms.get_mut(&caller).ok_or(Error::NotFound)?;
        let s = d.maps.get_mut(slot as usize).ok_or(Error::NotFound)?;
        if s.generation != generation {
            return Err(Error::NotFound);
        }
        let m = s.map.take().ok_or(Error::NotFound)?;
        s.generation = s.generation.wrapping_add(1);
        d.live_maps -= 1;
        let ipa = GuestPhysAddr(grant::map_ipa(slot));
        let dom = domains.get_mut(caller)?;
        let vmid = dom.vmid();
        // Unmapping one page splits no block and so needs no table page:
        // it cannot fail for a page `map` put there.
        let unmapped = dom.stage2.unmap_page(ipa, frames, mem);
        debug_assert!(unmapped.is_ok());
        self.queue_flush(vmid, ipa);
        if m.orphan {
            self.drop_orphan_map(m.pa, false, frames);
        } else {
            self.unpin(domains, mem, m.granter, m.gref, m.writable);
        }
        Ok(())
    }

    /// Resolves one end of a copy for `caller`, using a grant (to be
    /// ended with [`Grants::release_end`] on the entry returned). Returns
    /// the host-physical address of the first byte.
    fn resolve_end(
        &mut self,
        domains: &DomainTable,
        mem: &dyn PhysMem,
        caller: DomainId,
        end: CopyEnd,
        len: u64,
        write: bool,
    ) -> Result<(PhysAddr, Option<PhysAddr>), Error> {
        match end {
            CopyEnd::Own(ipa) => {
                let ram = &domains.get(caller)?.ram;
                if !in_one_page(ipa.0, len) || !ram.contains(ipa, len) {
                    return Err(Error::BadAddress);
                }
                Ok((ram.translate(ipa).ok_or(Error::BadAddress)?, None))
            }
            CopyEnd::Grant {
                granter,
                gref,
                offset,
            } => {
                if offset >= PAGE_SIZE || !in_one_page(offset, len) {
                    return Err(Error::BadAddress);
                }
                let (pa, entry) = self.use_entry(domains, mem, caller, granter, gref, write)?;
                Ok((PhysAddr(pa.0 + offset), Some(entry)))
            }
        }
    }

    fn release_end(&self, mem: &dyn PhysMem, end: CopyEnd, entry: Option<PhysAddr>, write: bool) {
        if let (CopyEnd::Grant { granter, gref, .. }, Some(entry)) = (end, entry) {
            self.end_use(mem, granter, gref, entry, write);
        }
    }

    /// One operation of `copy`, for `caller`.
    pub fn copy(
        &mut self,
        domains: &DomainTable,
        mem: &dyn PhysMem,
        caller: DomainId,
        op: &CopyOp,
    ) -> Result<(), Error> {
        if op.len > PAGE_SIZE {
            return Err(Error::BadAddress);
        }
        let (src, src_entry) = self.resolve_end(domains, mem, caller, op.src, op.len, false)?;
        let (dst, dst_entry) = match self.resolve_end(domains, mem, caller, op.dst, op.len, true) {
            Ok(end) => end,
            Err(e) => {
                self.release_end(mem, op.src, src_entry, false);
                return Err(e);
            }
        };
        // The ranges may overlap: `copy` behaves as if through a buffer.
        mem.copy(src, dst, op.len);
        self.release_end(mem, op.dst, dst_entry, true);
        self.release_end(mem, op.src, src_entry, false);
        Ok(())
    }
}
