//! Which back ends dom0's loop polls after a wake ([`crate::wait_for_work`]):
//! each for its own event, any store change (their handshakes follow the
//! peers' `state`) or, at most [`SWEEP_MS`] apart, on any wake (netback's
//! NAT expiry and dom0's own network stack run on time). A block request
//! then costs no pass over the network and console back ends. The back
//! ends mark their front ends' events (`events::send_later`): the next
//! wait sends them, the last with its block (`sched_op send_wait`).

use core::sync::atomic::{AtomicU64, Ordering};

use dom0::blkback::service as blkback;
use dom0::consback::service as consback;
use dom0::netback::service as netback;
use dom0::store::service as store;
use pv_guest_sdk::abi::time::ns_to_ticks;
use pv_guest_sdk::time;

/// The longest dom0 goes between polls of every back end while woken for
/// other work.
const SWEEP_MS: u64 = 10;
/// The virtual counter at the last poll of every back end.
static LAST_SWEEP: AtomicU64 = AtomicU64::new(0);
/// The store generation every back end was last polled at.
static STORE_SEEN: AtomicU64 = AtomicU64::new(u64::MAX);

/// Which back ends' events came.
#[derive(Default)]
pub struct Kicks {
    blk: bool,
    net: bool,
    cons: bool,
}

impl Kicks {
    /// Every back end polled.
    pub fn all() -> Self {
        Self {
            blk: true,
            net: true,
            cons: true,
        }
    }

    /// Takes the back ends' events (for the wait's condition); whether any
    /// came, now or before.
    pub fn take(&mut self) -> bool {
        self.blk |= blkback::take_kick();
        self.net |= netback::take_kick();
        self.cons |= consback::take_kick();
        self.blk | self.net | self.cons
    }

    /// Polls the back ends whose events came, or all of them after a store
    /// change or [`SWEEP_MS`].
    pub fn poll(mut self) {
        let now = time::counter();
        let sweep = now.saturating_sub(LAST_SWEEP.load(Ordering::Relaxed)) >= sweep_ticks();
        let mut seen = STORE_SEEN.load(Ordering::Relaxed);
        let moved = store::changed_since(&mut seen);
        STORE_SEEN.store(seen, Ordering::Relaxed);
        if sweep || moved {
            LAST_SWEEP.store(now, Ordering::Relaxed);
            self = Self::all();
        }
        if self.blk {
            blkback::poll();
        }
        if self.net {
            netback::poll();
        }
        if self.cons {
            consback::poll();
        }
    }
}

/// [`SWEEP_MS`] in counter ticks, worked out once (a 128-bit division).
fn sweep_ticks() -> u64 {
    static TICKS: AtomicU64 = AtomicU64::new(0);
    match TICKS.load(Ordering::Relaxed) {
        0 => {
            let t = ns_to_ticks(SWEEP_MS * 1_000_000, time::frequency()).max(1);
            TICKS.store(t, Ordering::Relaxed);
            t
        }
        t => t,
    }
}
