//! Persistent grants (`feature-persistent`, `specs/blkif.md`): the data
//! pages a front end reuses stay mapped in dom0 from the first request that
//! names them until the ring is disconnected, so that a request in steady
//! state costs no `grant_op map`/`unmap`. As Xen's blkback does it.
//!
//! The cache is bounded per virtual disk ([`BLKIF_MAX_PERSISTENT`]) and
//! over all of them ([`TOTAL_MAX`]), so that a front end naming ever new
//! grants cannot use up dom0's mappings (`MAPTRACK_MAX`, shared with the
//! other back ends): a page past either bound is mapped for its request
//! only, as without the feature.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use pv_guest_sdk::abi::blkif::BLKIF_MAX_PERSISTENT;
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::grant::GrantRef;
use pv_guest_sdk::grant::{self, Mapping};

use crate::virtio::hal;

/// Most persistent mappings of all virtual disks together: a quarter of
/// dom0's mappings.
const TOTAL_MAX: usize = 256;

/// Persistent mappings held now, all virtual disks together.
static TOTAL: AtomicUsize = AtomicUsize::new(0);

/// The data pages of one front end kept mapped writable, by grant.
#[derive(Debug, Default)]
pub(super) struct Cache {
    /// Few entries (the front end's pool): a linear search is the cheapest.
    maps: Vec<(GrantRef, Mapping)>,
}

impl Cache {
    /// The writable mapping of `gref`, mapped now if it is not yet and the
    /// bounds allow; `None` if it cannot be kept (the caller maps it for
    /// this request only, which also reports a bad grant).
    pub(super) fn get(&mut self, front: DomainId, gref: GrantRef) -> Option<&Mapping> {
        if let Some(i) = self.maps.iter().position(|(g, _)| *g == gref) {
            return Some(&self.maps[i].1);
        }
        if self.maps.len() >= BLKIF_MAX_PERSISTENT || !reserve() {
            return None;
        }
        match grant::map(front, gref, false) {
            Ok(m) if m.is_writable() => {
                // The disk may read straight into it: unregistered in `drop`,
                // which the back end lets happen only once the disk gave
                // back every request of this front end.
                if let Some(machine) = m.machine() {
                    hal::allow_dma(m.ipa(), machine);
                }
                self.maps.push((gref, m));
                self.maps.last().map(|(_, m)| m)
            }
            // A failed map takes nothing; a mapping dropped here is unmapped.
            _ => {
                TOTAL.fetch_sub(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Pages kept mapped now.
    pub(super) fn len(&self) -> usize {
        self.maps.len()
    }
}

/// Takes one of the [`TOTAL_MAX`] mappings; `false` if none is left.
fn reserve() -> bool {
    TOTAL
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < TOTAL_MAX).then_some(n + 1)
        })
        .is_ok()
}

impl Drop for Cache {
    /// Unregisters every page for DMA, unmaps it (each [`Mapping`]'s own
    /// drop) and gives its share of [`TOTAL_MAX`] back.
    fn drop(&mut self) {
        for (_, m) in &self.maps {
            hal::forbid_dma(m.ipa());
        }
        TOTAL.fetch_sub(self.maps.len(), Ordering::Relaxed);
    }
}
