//! Moving request data between dom0's buffer and a front end's granted
//! pages, for the block back end's engine.

use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::grant::{self, CopyBatch, GrantPtr, Mapping};
use pv_guest_sdk::println;

use super::engine::Grants;
use super::persistent::Cache;
use super::request::Seg;

/// Moves data between dom0's buffer and one front end's pages. A read's
/// data goes out by mapping each page writable for the copy, with the
/// SDK's fast word copy: a map and an unmap cost less than half a
/// hypervisor grant copy of a 4 KiB page (scripts/bench.sh:
/// grant-map-unmap against grant-copy-4k), and the copy runs at dom0's
/// speed. A write's data comes in by grant copy: its pages may be granted
/// read-only, and a read-only mapping offers only the general (slower)
/// word-by-word read.
///
/// With persistent grants (`cache`) each page stays mapped writable from
/// its first request on: both directions copy through that mapping at
/// dom0's speed, with no hypercall. A page the cache cannot keep goes the
/// way above.
pub(super) struct Copier<'c> {
    pub(super) front: DomainId,
    pub(super) cache: Option<&'c mut Cache>,
}

/// Bytes per word of a page.
const WORD: usize = core::mem::size_of::<u64>();

/// Whether segment `s` lies within its page and is word aligned (whole
/// sectors always are).
fn fits(s: &Seg) -> bool {
    s.offset().is_multiple_of(WORD)
        && s.bytes().is_multiple_of(WORD)
        && s.offset()
            .checked_add(s.bytes())
            .is_some_and(|e| e <= grant::PAGE_BYTES)
}

impl Copier<'_> {
    /// A front end's copier, with its persistent mappings if it has any.
    pub(super) fn new(front: DomainId, cache: Option<&mut Cache>) -> Copier<'_> {
        Copier { front, cache }
    }

    /// Maps segment `s`'s page writable for this request only.
    fn map_writable(&self, s: &Seg) -> Option<Mapping> {
        grant::map(self.front, s.gref, false)
            .ok()
            .filter(Mapping::is_writable)
    }

    /// Where the disk may read segment `s` straight into: its address and
    /// length in the front end's page, if the cache keeps the page mapped
    /// writable and registered for DMA (it has a machine address).
    pub(super) fn dma_target(&mut self, s: &Seg) -> Option<(usize, usize)> {
        if !fits(s) {
            return None;
        }
        let front = self.front;
        let m = self.cache.as_mut()?.get(front, s.gref)?;
        m.machine()?;
        let at = usize::try_from(m.ipa()).ok()? + s.offset();
        Some((at, s.bytes()))
    }

    /// The words of segment `s` in its persistently mapped page, if the
    /// cache holds (or can take) the page.
    fn kept(&mut self, s: &Seg) -> Option<&[core::sync::atomic::AtomicU64]> {
        let front = self.front;
        let page = self.cache.as_mut()?.get(front, s.gref)?.shared()?;
        page.words()
            .get(s.offset() / WORD..(s.offset() + s.bytes()) / WORD)
    }
}

/// Unmaps `m`, reporting a failure (the page stays mapped in dom0).
fn unmap(m: Mapping) {
    if let Err(e) = m.unmap() {
        println!("dom0: blkback: unmapping a data page: {e}");
    }
}

impl Grants for Copier<'_> {
    fn copy_in(&mut self, segs: &[Seg], buf: &mut [u8]) -> bool {
        let mut batch = CopyBatch::new();
        let mut rest = buf;
        for s in segs {
            let (here, tail) = core::mem::take(&mut rest).split_at_mut(s.bytes());
            rest = tail;
            if fits(s)
                && let Some(words) = self.kept(s)
            {
                grant::load_words(words, here);
                continue;
            }
            let src = GrantPtr {
                domid: self.front,
                gref: s.gref,
                offset: s.offset(),
            };
            if batch.from_grant(src, here).is_err() {
                return false;
            }
        }
        batch.is_empty() || matches!(batch.run(), Ok(0))
    }
    fn copy_out(&mut self, segs: &[Seg], buf: &[u8]) -> bool {
        let mut rest = buf;
        for s in segs {
            let (here, tail) = rest.split_at(s.bytes());
            rest = tail;
            if !fits(s) {
                return false;
            }
            if let Some(words) = self.kept(s) {
                grant::store_words(words, here);
                continue;
            }
            let Some(m) = self.map_writable(s) else {
                return false;
            };
            let Some(page) = m.shared() else {
                return false;
            };
            grant::store_words(&page.words()[s.offset() / WORD..], here);
            unmap(m);
        }
        true
    }
}
