//! Grant tables (`grant_op`, specs/hypercalls.md): per-domain grant tables,
//! the mappings each domain holds of other domains' grants (its
//! "maptrack"), and the pages of destroyed domains that stay alive because
//! someone still maps them.
//!
//! Who owns what:
//! - A domain's grant table is in its own RAM ([`table`]); the hypervisor
//!   reads entries and keeps the `reading`/`writing` bits in step with its
//!   own count of uses of each entry (`pins`), with atomic operations.
//! - Each mapping lives in the **mapper's** maptrack ([`DomGrants::maps`])
//!   and in its stage 2, at the window slot the handle names.
//! - A granted frame belongs to the granter's RAM while the granter lives.
//!   When the granter is destroyed, the runs of its RAM that hold mapped
//!   frames become **orphans**: no domain owns them, and they go back to the
//!   allocator when their last mapping goes.
//!
//! Stage-2 changes on live domains need the arch layer:
//! - after a hypercall that mapped something, `dsb ishst` before the guest
//!   runs (the walker must see the new entry); [`Grants::barrier_needed`];
//! - after an unmap, the TLB entries of that VMID and IPA must go (`TLBI
//!   IPAS2E1IS` per page, then `DSB ISH`, `TLBI VMALLE1IS`, `DSB ISH`).
//!   Unmaps queue a [`TlbFlush`]; the arch layer drains the queue with
//!   [`Hypervisor::complete_grant_flushes`] before any vCPU of that VMID
//!   runs again and before it drops the hypervisor lock. Frames that an
//!   unmap freed (orphans whose last mapping went) are returned to the
//!   allocator only then, so no stale TLB entry can reach a reused frame.

mod ops;
mod table;

use alloc::vec::Vec;

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::grant::GrantRef;

use crate::addr::{GuestPhysAddr, PhysAddr};
use crate::domain::Vmid;
use crate::domain::ram::GuestRam;
use crate::domain::table::DomainTable;
use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};
use crate::slot_map::DomainMap;
use crate::vec_map::VecMap;

pub use ops::{CopyEnd, CopyOp};

/// Queued TLB maintenance the arch layer must perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbFlush {
    /// Whose stage-2 entries.
    pub vmid: Vmid,
    /// The first IPA and the number of pages, or `None` for every entry of
    /// the VMID (the queue overflowed and was coalesced).
    pub range: Option<(GuestPhysAddr, u64)>,
}

/// Queued flushes beyond which the queue is coalesced per VMID.
const MAX_QUEUED_FLUSHES: usize = 64;

/// How many live uses (mappings and copies in progress) an entry of a
/// granter's table has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pin {
    /// Every use: keeps `reading` set.
    readers: u32,
    /// Writable uses: keep `writing` set.
    writers: u32,
}

/// One mapping of a foreign grant, in the mapper's maptrack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mapping {
    granter: DomainId,
    gref: GrantRef,
    /// The frame mapped.
    pa: PhysAddr,
    writable: bool,
    /// The granter was destroyed: the frame belongs to an orphan run.
    orphan: bool,
}

/// One slot of a maptrack: its generation (bumped at every unmap, so stale
/// handles stay invalid) and the mapping, if any.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    generation: u32,
    map: Option<Mapping>,
}

/// A registered grant table: pages of the domain's own RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TableRegion {
    ipa: GuestPhysAddr,
    pages: u64,
}

/// A domain's grant state.
#[derive(Debug, Default)]
struct DomGrants {
    table: Option<TableRegion>,
    /// Uses of this domain's entries, by grant reference.
    pins: VecMap<u32, Pin>,
    /// Mappings this domain holds; index = slot.
    maps: Vec<Slot>,
    live_maps: u32,
}

/// A run of a destroyed domain's RAM kept because frames in it are mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Orphan {
    pa: PhysAddr,
    order: u32,
    maps: u32,
}

impl Orphan {
    fn contains(&self, pa: PhysAddr) -> bool {
        pa.0 >= self.pa.0 && pa.0 - self.pa.0 < crate::addr::PAGE_SIZE << self.order
    }
}

/// Every domain's grant state.
#[derive(Debug, Default)]
pub struct Grants {
    /// By domain, at the slot its id names (`slot_map.rs`): looked up on
    /// every grant operation.
    doms: DomainMap<DomGrants>,
    orphans: Vec<Orphan>,
    flushes: Vec<TlbFlush>,
    /// Runs to return to the allocator once the queued flushes are done.
    deferred: Vec<(PhysAddr, u32)>,
    barrier: bool,
}

impl Grants {
    /// No grant state yet.
    pub fn new() -> Self {
        Self {
            doms: DomainMap::new(),
            orphans: Vec::new(),
            flushes: Vec::new(),
            deferred: Vec::new(),
            barrier: false,
        }
    }

    fn dom(&mut self, id: DomainId) -> &mut DomGrants {
        self.doms.get_or_insert_with(id, DomGrants::default)
    }

    /// Whether TLB flushes are queued.
    pub fn has_tlb_flushes(&self) -> bool {
        !self.flushes.is_empty()
    }

    /// Whether [`Hypervisor::complete_grant_flushes`] has anything to do (a
    /// barrier, flushes or frees pending): mostly not, and then the trap
    /// path skips the call.
    pub fn work_pending(&self) -> bool {
        self.barrier || !self.flushes.is_empty() || !self.deferred.is_empty()
    }

    /// Whether a stage 2 gained entries since the last
    /// [`Hypervisor::complete_grant_flushes`]: the arch layer issues
    /// `dsb ishst` before a guest runs.
    pub fn barrier_needed(&self) -> bool {
        self.barrier
    }

    /// Live mappings `id` holds.
    pub fn mappings_of(&self, id: DomainId) -> u32 {
        self.doms.get(&id).map_or(0, |d| d.live_maps)
    }

    /// Pages of destroyed domains still held because they are mapped.
    pub fn orphan_pages(&self) -> u64 {
        self.orphans.iter().map(|o| 1u64 << o.order).sum()
    }

    fn queue_flush(&mut self, vmid: Vmid, ipa: GuestPhysAddr) {
        if self.flushes.len() >= MAX_QUEUED_FLUSHES {
            // Coalesce: one whole-VMID flush per VMID queued.
            // A linear dedup, not sort + dedup: the queue is short and the
            // standard sort costs about 2 KiB of image.
            let mut whole: Vec<TlbFlush> = Vec::new();
            for v in self.flushes.iter().map(|f| f.vmid).chain([vmid]) {
                if !whole.iter().any(|f| f.vmid == v) {
                    whole.push(TlbFlush {
                        vmid: v,
                        range: None,
                    });
                }
            }
            self.flushes = whole;
            return;
        }
        if self
            .flushes
            .iter()
            .any(|f| f.vmid == vmid && f.range.is_none())
        {
            return;
        }
        self.flushes.push(TlbFlush {
            vmid,
            range: Some((ipa, 1)),
        });
    }

    /// Drops one mapping of an orphan frame; a run whose last mapping went
    /// is freed now (`immediately`: its mapper is being destroyed, so no
    /// vCPU can reach it and its VMID is flushed before reuse) or after the
    /// queued flushes.
    fn drop_orphan_map(&mut self, pa: PhysAddr, immediately: bool, frames: &mut dyn FrameSource) {
        let Some(i) = self.orphans.iter().position(|o| o.contains(pa)) else {
            debug_assert!(false, "orphan mapping of an unknown run");
            return;
        };
        self.orphans[i].maps -= 1;
        if self.orphans[i].maps == 0 {
            let o = self.orphans.swap_remove(i);
            if immediately {
                frames.free_frames(o.pa, o.order);
            } else {
                self.deferred.push((o.pa, o.order));
            }
        }
    }

    /// Called by `Hypervisor::destroy_domain` before `id`'s RAM and stage 2
    /// are released (its vCPUs are off every CPU): drops the mappings `id`
    /// holds, then turns the runs of its RAM that others still map into
    /// orphans, taking them out of its RAM so the domain's release does not
    /// free them.
    pub fn destroy_domain(
        &mut self,
        id: DomainId,
        domains: &mut DomainTable,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) {
        // 1. Its own mappings. Its stage 2 goes with the domain and its VMID
        //    is flushed before reuse, so only the bookkeeping is undone.
        let maps: Vec<Mapping> = self
            .doms
            .get_mut(&id)
            .map(|d| d.maps.drain(..).filter_map(|s| s.map).collect())
            .unwrap_or_default();
        for m in maps {
            if m.orphan {
                self.drop_orphan_map(m.pa, true, frames);
            } else if m.granter != id {
                self.unpin(domains, mem, m.granter, m.gref, m.writable);
            }
        }
        // 2. Its frames that others map.
        let mut pinned: Vec<PhysAddr> = Vec::new();
        self.doms.for_each_mut(|&mapper, dg| {
            if mapper == id {
                return;
            }
            for m in dg.maps.iter_mut().filter_map(|s| s.map.as_mut()) {
                if m.granter == id && !m.orphan {
                    m.orphan = true;
                    pinned.push(m.pa);
                }
            }
        });
        self.doms.remove(&id);
        if pinned.is_empty() {
            return;
        }
        let Ok(d) = domains.get_mut(id) else {
            return;
        };
        let empty = GuestRam::allocate(d.ram.base(), 0, frames, mem)
            .expect("an empty RAM allocates nothing");
        let ram = core::mem::replace(&mut d.ram, empty);
        for c in ram.chunks() {
            let end = c.pa.0 + c.size();
            let maps = pinned.iter().filter(|p| p.0 >= c.pa.0 && p.0 < end).count() as u32;
            if maps == 0 {
                frames.free_frames(c.pa, c.order);
            } else {
                self.orphans.push(Orphan {
                    pa: c.pa,
                    order: c.order,
                    maps,
                });
            }
        }
        // `ram`'s runs were all freed or made orphans above; `GuestRam` has
        // no destructor, so dropping it only drops its list.
        drop(ram);
    }
}

impl<M: PhysMem, F: FrameSource> Hypervisor<'_, M, F> {
    /// Hands every queued grant TLB flush to `flush` (which must perform it:
    /// `TLBI IPAS2E1IS` for each page of `range` with that VMID, or every
    /// entry of the VMID for `None`, then the stage-1 invalidation and
    /// barriers), then returns to the allocator the frames that were waiting
    /// for those flushes. Also clears [`Grants::barrier_needed`]: call it
    /// after the `dsb ishst` too.
    pub fn complete_grant_flushes(&mut self, mut flush: impl FnMut(TlbFlush)) {
        for f in self.grants.flushes.drain(..) {
            flush(f);
        }
        self.grants.barrier = false;
        for (pa, order) in self.grants.deferred.drain(..) {
            self.frames.free_frames(pa, order);
        }
    }
}

/// Ensures `id` exists and returns its error otherwise.
fn live(domains: &DomainTable, id: DomainId) -> Result<(), Error> {
    domains.get(id).map(|_| ())
}
