//! The set of live domains: ids, VMIDs, names, creation and destruction.

use alloc::boxed::Box;
use alloc::vec::Vec;

use tern_abi::Error;
use tern_abi::domctl::DomainId;

use super::{Domain, DomainConfig, MAX_VCPUS, Vmid};
use crate::physmem::{FrameSource, PhysMem};

/// VMIDs are 8 bits (`VTCR_EL2.VS` = 0 works on every ARMv8.0 CPU), so at most
/// this many domains exist at once. VMID 0 is never given out so that a zeroed
/// `VTTBR_EL2` cannot alias a live domain.
pub const MAX_DOMAINS: usize = 255;

/// Slots of the table: the per-domain tables' (`slot_map`), whose direct
/// lookups rely on the ids given out here having distinct slots. More
/// slots than live domains, so that a free one always exists.
const SLOTS: usize = crate::slot_map::DOMAIN_SLOTS;
const _: () = assert!(MAX_DOMAINS < SLOTS);

/// Every live domain, by id.
#[derive(Debug)]
pub struct DomainTable {
    /// Domain `id` is at slot `id % 256`: ids are given out so that no two
    /// live domains share a slot (at most [`MAX_DOMAINS`] live, so a free
    /// slot always exists), and a lookup is one load and one compare of the
    /// id (on every hypercall that names a domain, three times per event
    /// round trip). Boxed: a domain's address does not change while it
    /// lives, which the arch layer's per-CPU vCPU pointer relies on.
    slots: [Option<Box<Domain>>; SLOTS],
    /// The live ids in increasing order, for listing in id order.
    ids: Vec<u32>,
    next_id: u32,
    vmids_used: [u64; 4],
    /// VMIDs of destroyed domains whose TLB entries the arch layer has not
    /// yet invalidated. They are not handed out again until it has.
    retired: Vec<Vmid>,
}

impl Default for DomainTable {
    fn default() -> Self {
        Self::new()
    }
}

impl DomainTable {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            slots: [const { None }; SLOTS],
            ids: Vec::new(),
            next_id: 0,
            vmids_used: [0; 4],
            retired: Vec::new(),
        }
    }

    fn alloc_vmid(&mut self) -> Option<Vmid> {
        (1..=MAX_DOMAINS as u16)
            .find(|&v| {
                let (w, b) = (usize::from(v / 64), v % 64);
                if self.vmids_used[w] & (1 << b) == 0 {
                    self.vmids_used[w] |= 1 << b;
                    true
                } else {
                    false
                }
            })
            .map(Vmid)
    }

    fn free_vmid(&mut self, v: Vmid) {
        self.vmids_used[usize::from(v.0 / 64)] &= !(1 << (v.0 % 64));
    }

    /// Creates a paused domain with zeroed RAM and no image. dom0 (the first
    /// domain created) gets id 0; ids after that increase and are not reused
    /// until the 32-bit space wraps, and skip any id whose slot a live
    /// domain holds (with few domains alive, the next id is the last + 1).
    pub fn create(
        &mut self,
        cfg: &DomainConfig<'_>,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<DomainId, Error> {
        if cfg.vcpus == 0 || cfg.pages == 0 {
            return Err(Error::InvalidArgument);
        }
        if cfg.vcpus > MAX_VCPUS {
            return Err(Error::TooBig);
        }
        let max_pages = tern_abi::layout::GUEST_RAM_MAX_SIZE / tern_abi::PAGE_SIZE;
        let min_pages = tern_abi::layout::GUEST_RAM_MIN_SIZE / tern_abi::PAGE_SIZE;
        if cfg.pages > max_pages {
            return Err(Error::TooBig);
        }
        if cfg.pages < min_pages || !tern_abi::strings::is_valid_name(cfg.name) {
            return Err(Error::InvalidArgument);
        }
        if self.iter_from(0).any(|d| d.name().as_bytes() == cfg.name) {
            return Err(Error::Exists);
        }
        let id = self.next_free_id().ok_or(Error::TooBig)?;
        let vmid = self.alloc_vmid().ok_or(Error::TooBig)?;
        match Domain::build(id, vmid, cfg, frames, mem) {
            Ok(d) => {
                // `next_free_id` found the slot free.
                self.slots[slot(id.0)] = Some(Box::new(d));
                let at = self.ids.binary_search(&id.0).unwrap_or_else(|at| at);
                self.ids.insert(at, id.0);
                self.next_id = id.0.wrapping_add(1);
                Ok(id)
            }
            Err(e) => {
                self.free_vmid(vmid);
                Err(e)
            }
        }
    }

    /// The next id after the last one given whose slot is free. dom0's id
    /// is never given to another domain, even after wrapping.
    fn next_free_id(&self) -> Option<DomainId> {
        if self.ids.len() >= MAX_DOMAINS {
            return None;
        }
        let mut id = self.next_id;
        while self.slots[slot(id)].is_some() || (id == 0 && self.next_id != 0) {
            id = id.wrapping_add(1);
        }
        Some(DomainId(id))
    }

    /// Destroys a domain and returns every page it held. The caller has made
    /// sure no physical CPU is running one of its vCPUs.
    pub fn destroy(
        &mut self,
        id: DomainId,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<(), Error> {
        // The slot may hold another domain, whose id is 256 apart: only
        // `id`'s own entry goes.
        let s = &mut self.slots[slot(id.0)];
        let Some(mut d) = s.take_if(|d| d.id == id) else {
            return Err(Error::NoSuchDomain);
        };
        if let Ok(at) = self.ids.binary_search(&id.0) {
            self.ids.remove(at);
        }
        d.release(frames, mem);
        self.retired.push(d.vmid());
        Ok(())
    }

    /// Whether destroyed domains left VMIDs whose TLB entries need invalidating.
    pub fn has_retired_vmids(&self) -> bool {
        !self.retired.is_empty()
    }

    /// Invalidates each retired VMID with `flush` (which must remove every TLB
    /// and walk-cache entry tagged with it) and makes it available again.
    pub fn recycle_vmids(&mut self, mut flush: impl FnMut(Vmid)) {
        while let Some(v) = self.retired.pop() {
            flush(v);
            self.free_vmid(v);
        }
    }

    /// The domain with this id.
    pub fn get(&self, id: DomainId) -> Result<&Domain, Error> {
        match &self.slots[slot(id.0)] {
            Some(d) if d.id == id => Ok(d),
            _ => Err(Error::NoSuchDomain),
        }
    }

    /// The domain with this id, mutably.
    pub fn get_mut(&mut self, id: DomainId) -> Result<&mut Domain, Error> {
        match &mut self.slots[slot(id.0)] {
            Some(d) if d.id == id => Ok(d),
            _ => Err(Error::NoSuchDomain),
        }
    }

    /// Domains with an id `>= from`, in id order.
    pub fn iter_from(&self, from: u32) -> impl Iterator<Item = &Domain> {
        let start = self.ids.partition_point(|&id| id < from);
        self.ids[start..]
            .iter()
            .filter_map(|&id| self.slots[slot(id)].as_deref())
    }

    /// Every domain, mutably (in slot order).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Domain> {
        self.slots.iter_mut().filter_map(|d| d.as_deref_mut())
    }

    /// How many domains exist.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no domain exists.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The slot of id `id`: its low byte.
fn slot(id: u32) -> usize {
    (id % SLOTS as u32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physmem::testing::Arena;
    use tern_abi::domctl::DomainFlags;

    fn cfg(name: &[u8]) -> DomainConfig<'_> {
        DomainConfig {
            name,
            pages: 256,
            vcpus: 1,
            cmdline: b"",
            flags: DomainFlags::from_bits_retain(0),
        }
    }

    #[test]
    fn create_destroy_cycles_leak_nothing() {
        let mem = Arena::new(0x8000_0000, 4096);
        let mut frames = Arena::new(0x8000_0000, 4096);
        let mut t = DomainTable::new();
        let d0 = t.create(&cfg(b"dom0"), &mut frames, &mem).unwrap();
        assert_eq!(d0, DomainId::DOM0);
        let base = frames.live_runs();
        let mut last = 0;
        for _ in 0..300 {
            let id = t.create(&cfg(b"guest"), &mut frames, &mem).unwrap();
            // Increasing, and never in dom0's slot: 256 is skipped.
            assert!(
                id.0 > last && !id.0.is_multiple_of(256),
                "{id:?} after {last}"
            );
            last = id.0;
            assert_eq!(t.get(id).unwrap().ram.pages(), 256);
            t.destroy(id, &mut frames, &mem).unwrap();
            // What the arch layer does after every hypercall.
            t.recycle_vmids(|_| {});
        }
        assert_eq!(last, 301);
        assert_eq!(frames.live_runs(), base);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ids_skip_the_slots_of_live_domains() {
        let mem = Arena::new(0x8000_0000, 4096);
        let mut frames = Arena::new(0x8000_0000, 4096);
        let mut t = DomainTable::new();
        t.create(&cfg(b"dom0"), &mut frames, &mem).unwrap();
        let one = t.create(&cfg(b"one"), &mut frames, &mem).unwrap();
        let mut last = one;
        while last.0 < 256 {
            if last != one {
                t.destroy(last, &mut frames, &mem).unwrap();
                t.recycle_vmids(|_| {});
            }
            last = t.create(&cfg(b"guest"), &mut frames, &mem).unwrap();
        }
        // 256 and 257 share slots with dom0 and `one`, both alive.
        assert_eq!(last.0, 258);
        for id in [0, 1, 258] {
            assert_eq!(t.get(DomainId(id)).map(|d| d.id), Ok(DomainId(id)));
            assert_eq!(t.get_mut(DomainId(id)).map(|d| d.id), Ok(DomainId(id)));
        }
        for id in [2, 256, 257, 513, 514] {
            assert_eq!(t.get(DomainId(id)).map(|d| d.id), Err(Error::NoSuchDomain));
            assert_eq!(
                t.get_mut(DomainId(id)).map(|d| d.id),
                Err(Error::NoSuchDomain)
            );
        }
        let listed: std::vec::Vec<u32> = t.iter_from(1).map(|d| d.id.0).collect();
        assert_eq!(listed, [1, 258]);
        assert_eq!(
            t.destroy(DomainId(257), &mut frames, &mem),
            Err(Error::NoSuchDomain),
            "257 is not 1"
        );
    }

    #[test]
    fn refuses_bad_configs() {
        let mem = Arena::new(0x8000_0000, 1024);
        let mut frames = Arena::new(0x8000_0000, 1024);
        let mut t = DomainTable::new();
        t.create(&cfg(b"a"), &mut frames, &mem).unwrap();
        assert_eq!(t.create(&cfg(b"a"), &mut frames, &mem), Err(Error::Exists));
        assert_eq!(
            t.create(&cfg(b""), &mut frames, &mem),
            Err(Error::InvalidArgument)
        );
        let mut c = cfg(b"b");
        c.vcpus = MAX_VCPUS + 1;
        assert_eq!(t.create(&c, &mut frames, &mem), Err(Error::TooBig));
        c.vcpus = 1;
        c.pages = 2048;
        assert_eq!(t.create(&c, &mut frames, &mem), Err(Error::NoMemory));
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.destroy(DomainId(9), &mut frames, &mem),
            Err(Error::NoSuchDomain)
        );
    }

    #[test]
    fn vmids_are_unique_and_reused() {
        let mem = Arena::new(0x8000_0000, 4096);
        let mut frames = Arena::new(0x8000_0000, 4096);
        let mut t = DomainTable::new();
        let a = t.create(&cfg(b"a"), &mut frames, &mem).unwrap();
        let b = t.create(&cfg(b"b"), &mut frames, &mem).unwrap();
        let (va, vb) = (t.get(a).unwrap().vmid(), t.get(b).unwrap().vmid());
        assert_ne!(va, vb);
        assert_ne!(va.0, 0);
        t.destroy(a, &mut frames, &mem).unwrap();
        let c = t.create(&cfg(b"c"), &mut frames, &mem).unwrap();
        assert_ne!(
            t.get(c).unwrap().vmid(),
            va,
            "not reused before its TLB flush"
        );
        let mut flushed = std::vec::Vec::new();
        t.recycle_vmids(|v| flushed.push(v));
        assert_eq!(flushed, [va]);
        let d = t.create(&cfg(b"d"), &mut frames, &mem).unwrap();
        assert_eq!(t.get(d).unwrap().vmid(), va);
    }
}
