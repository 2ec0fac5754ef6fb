//! Moving request data between dom0's buffer and a front end's granted
//! pages, for the block back end's engine.

use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::grant::{self, CopyBatch, GrantPtr, Mapping};
use pv_guest_sdk::println;

use super::engine::Grants;
use super::request::Seg;

/// Moves data between dom0's buffer and one front end's pages. A read's
/// data goes out by mapping each page writable for the copy, with the
/// SDK's fast word copy: a map and an unmap cost less than half a
/// hypervisor grant copy of a 4 KiB page (scripts/bench.sh:
/// grant-map-unmap against grant-copy-4k), and the copy runs at dom0's
/// speed. A write's data comes in by grant copy: its pages may be granted
/// read-only, and a read-only mapping offers only the general (slower)
/// word-by-word read.
pub(super) struct Copier(pub(super) DomainId);

/// Bytes per word of a page.
const WORD: usize = core::mem::size_of::<u64>();

impl Copier {
    /// Maps segment `s`'s page writable, checking that the segment lies
    /// within it and is word aligned (whole sectors always are).
    fn map_writable(&self, s: &Seg) -> Option<Mapping> {
        let fits = s.offset.is_multiple_of(WORD)
            && s.len.is_multiple_of(WORD)
            && s.offset
                .checked_add(s.len)
                .is_some_and(|e| e <= grant::PAGE_BYTES);
        if !fits {
            return None;
        }
        grant::map(self.0, s.gref, false)
            .ok()
            .filter(Mapping::is_writable)
    }
}

/// Unmaps `m`, reporting a failure (the page stays mapped in dom0).
fn unmap(m: Mapping) {
    if let Err(e) = m.unmap() {
        println!("dom0: blkback: unmapping a data page: {e}");
    }
}

impl Grants for Copier {
    fn copy_in(&mut self, segs: &[Seg], buf: &mut [u8]) -> bool {
        let mut batch = CopyBatch::new();
        let mut rest = buf;
        for s in segs {
            let (here, tail) = core::mem::take(&mut rest).split_at_mut(s.len);
            rest = tail;
            let src = GrantPtr {
                domid: self.0,
                gref: s.gref,
                offset: s.offset,
            };
            if batch.from_grant(src, here).is_err() {
                return false;
            }
        }
        matches!(batch.run(), Ok(0))
    }
    fn copy_out(&mut self, segs: &[Seg], buf: &[u8]) -> bool {
        let mut rest = buf;
        for s in segs {
            let (here, tail) = rest.split_at(s.len);
            rest = tail;
            let Some(m) = self.map_writable(s) else {
                return false;
            };
            let Some(page) = m.shared() else {
                return false;
            };
            grant::store_words(&page.words()[s.offset / WORD..], here);
            unmap(m);
        }
        true
    }
}
