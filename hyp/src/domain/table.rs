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

/// Every live domain, by id.
#[derive(Debug)]
pub struct DomainTable {
    /// Sorted by id, ids unique. A sorted vector rather than a `BTreeMap`: at
    /// most [`MAX_DOMAINS`] entries, lookups (on every hypercall that names a
    /// domain) are a short binary search, and the image is spared a map
    /// instantiation and the inlined tree searches (about 7 KiB).
    domains: Vec<(u32, Box<Domain>)>,
    /// Direct-mapped index in front of the binary search: entry `id % 256`
    /// is the position + 1 in `domains` of a domain with such an id (0 for
    /// none), checked against the id. Rebuilt when domains come and go.
    hint: [u8; MAX_DOMAINS + 1],
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
            domains: Vec::new(),
            hint: [0; MAX_DOMAINS + 1],
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
    /// until the 32-bit space wraps.
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
        if self
            .domains
            .iter()
            .any(|(_, d)| d.name().as_bytes() == cfg.name)
        {
            return Err(Error::Exists);
        }
        let id = self.next_free_id().ok_or(Error::TooBig)?;
        let vmid = self.alloc_vmid().ok_or(Error::TooBig)?;
        match Domain::build(id, vmid, cfg, frames, mem) {
            Ok(d) => {
                // `next_free_id` checked that `id` is not in the table.
                let at = self.index(id.0).unwrap_or_else(|at| at);
                self.domains.insert(at, (id.0, Box::new(d)));
                self.rehint();
                self.next_id = id.0.wrapping_add(1);
                Ok(id)
            }
            Err(e) => {
                self.free_vmid(vmid);
                Err(e)
            }
        }
    }

    fn next_free_id(&self) -> Option<DomainId> {
        if self.domains.len() >= MAX_DOMAINS {
            return None;
        }
        let mut id = self.next_id;
        // dom0's id is never given to another domain, even after wrapping.
        while self.index(id).is_ok() || (id == 0 && self.next_id != 0) {
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
        let at = self.index(id.0).map_err(|_| Error::NoSuchDomain)?;
        let (_, mut d) = self.domains.remove(at);
        self.rehint();
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

    /// Where `id` is in `domains` (`Ok`), or where it would be inserted (`Err`).
    fn index(&self, id: u32) -> Result<usize, usize> {
        let hint = usize::from(self.hint[id as usize % self.hint.len()]);
        if let Some(i) = hint.checked_sub(1)
            && self.domains.get(i).is_some_and(|&(k, _)| k == id)
        {
            return Ok(i);
        }
        self.domains.binary_search_by_key(&id, |&(k, _)| k)
    }

    fn rehint(&mut self) {
        self.hint = [0; MAX_DOMAINS + 1];
        for (i, &(id, _)) in self.domains.iter().enumerate() {
            let slot = &mut self.hint[id as usize % (MAX_DOMAINS + 1)];
            if *slot == 0 {
                // At most MAX_DOMAINS entries: i + 1 fits.
                *slot = u8::try_from(i + 1).unwrap_or(0);
            }
        }
    }

    /// The domain with this id.
    pub fn get(&self, id: DomainId) -> Result<&Domain, Error> {
        match self.index(id.0) {
            Ok(i) => Ok(&self.domains[i].1),
            Err(_) => Err(Error::NoSuchDomain),
        }
    }

    /// The domain with this id, mutably.
    pub fn get_mut(&mut self, id: DomainId) -> Result<&mut Domain, Error> {
        match self.index(id.0) {
            Ok(i) => Ok(&mut self.domains[i].1),
            Err(_) => Err(Error::NoSuchDomain),
        }
    }

    /// [`Self::get_mut`] with the hint hit inline (no call, no `Result` built
    /// and taken apart), the rest out of line: for the few lookups of the
    /// event round trip and the vCPU switch (inlined everywhere, the hit
    /// would cost kilobytes of image).
    #[inline(always)]
    pub fn get_mut_hot(&mut self, id: DomainId) -> Result<&mut Domain, Error> {
        match self.hinted(id) {
            Some(i) => Ok(&mut self.domains[i].1),
            None => self.get_mut(id),
        }
    }

    /// Position of `id` if the hint holds it.
    #[inline(always)]
    fn hinted(&self, id: DomainId) -> Option<usize> {
        // A hint of 0 (none) wraps to a position no table has.
        let i = usize::from(self.hint[id.0 as usize % self.hint.len()]).wrapping_sub(1);
        match self.domains.get(i) {
            Some(&(k, _)) if k == id.0 => Some(i),
            _ => None,
        }
    }

    /// Domains with an id `>= from`, in id order.
    pub fn iter_from(&self, from: u32) -> impl Iterator<Item = &Domain> {
        let start = self.index(from).unwrap_or_else(|at| at);
        self.domains[start..].iter().map(|(_, d)| &**d)
    }

    /// Every domain, mutably, in id order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Domain> {
        self.domains.iter_mut().map(|(_, d)| &mut **d)
    }

    /// How many domains exist.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// Whether no domain exists.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
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
        for i in 0..300 {
            let id = t.create(&cfg(b"guest"), &mut frames, &mem).unwrap();
            assert_eq!(id.0, i + 1);
            assert_eq!(t.get(id).unwrap().ram.pages(), 256);
            t.destroy(id, &mut frames, &mem).unwrap();
            // What the arch layer does after every hypercall.
            t.recycle_vmids(|_| {});
        }
        assert_eq!(frames.live_runs(), base);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn hot_lookup_agrees_with_the_general_one() {
        let mem = Arena::new(0x8000_0000, 4096);
        let mut frames = Arena::new(0x8000_0000, 4096);
        let mut t = DomainTable::new();
        t.create(&cfg(b"dom0"), &mut frames, &mem).unwrap();
        let one = t.create(&cfg(b"one"), &mut frames, &mem).unwrap();
        // Ids past the hint table's size: 257 shares a hint slot with 1.
        let mut last = one;
        while last.0 < 257 {
            if last != one {
                t.destroy(last, &mut frames, &mem).unwrap();
                t.recycle_vmids(|_| {});
            }
            last = t.create(&cfg(b"guest"), &mut frames, &mem).unwrap();
        }
        assert_eq!(last.0, 257);
        for id in [0, 1, 2, 256, 257, 258, 513] {
            let want = t.get(DomainId(id)).map(|d| d.id);
            assert_eq!(t.get_mut_hot(DomainId(id)).map(|d| d.id), want, "{id}");
        }
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
