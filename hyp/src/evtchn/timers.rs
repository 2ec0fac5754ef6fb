//! Per-vCPU deadlines: the one-shot guest timer (`time_op set_timer`) and the
//! timeout of `sched_op poll`, ordered so the arch layer can program the one
//! physical timer for the earliest.
//!
//! Deadlines are kept in physical-counter ticks (a guest's virtual deadline
//! plus its domain's counter offset), so deadlines of different domains
//! compare directly.

use alloc::collections::{BTreeMap, BTreeSet};

use tern_abi::domctl::DomainId;

/// Which deadline of a vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// `time_op set_timer`: raises `Virq::Timer`.
    Guest,
    /// The deadline of `sched_op poll`: wakes the poller.
    Poll,
}

/// The owner of a deadline.
pub type TimerKey = (DomainId, usize, TimerKind);

/// Every armed deadline.
#[derive(Debug, Default)]
pub struct Timers {
    /// By time, then owner: the order in which they fire.
    queue: BTreeSet<(u64, TimerKey)>,
    /// By owner: each owner has at most one deadline of each kind.
    armed: BTreeMap<TimerKey, u64>,
}

impl Timers {
    /// Arms `key` for physical-counter value `at`, replacing its previous
    /// deadline.
    pub fn set(&mut self, key: TimerKey, at: u64) {
        self.cancel(key);
        self.armed.insert(key, at);
        self.queue.insert((at, key));
    }

    /// Disarms `key` (nothing if it is not armed).
    pub fn cancel(&mut self, key: TimerKey) {
        if let Some(at) = self.armed.remove(&key) {
            self.queue.remove(&(at, key));
        }
    }

    /// Disarms every deadline of `dom`.
    pub fn cancel_domain(&mut self, dom: DomainId) {
        let keys: alloc::vec::Vec<TimerKey> =
            self.armed.keys().filter(|k| k.0 == dom).copied().collect();
        for k in keys {
            self.cancel(k);
        }
    }

    /// The deadline of `key`, if armed.
    pub fn get(&self, key: TimerKey) -> Option<u64> {
        self.armed.get(&key).copied()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<u64> {
        self.queue.first().map(|&(at, _)| at)
    }

    /// Removes and returns the earliest deadline if it is at or before `now`.
    pub fn pop_expired(&mut self, now: u64) -> Option<(u64, TimerKey)> {
        let &(at, key) = self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.pop_first();
        self.armed.remove(&key);
        Some((at, key))
    }
}
