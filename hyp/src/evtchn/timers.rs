//! Per-vCPU deadlines: the one-shot guest timer (`time_op set_timer`) and the
//! timeout of `sched_op poll`, ordered so the arch layer can program the one
//! physical timer for the earliest.
//!
//! Deadlines are kept in physical-counter ticks (a guest's virtual deadline
//! plus its domain's counter offset), so deadlines of different domains
//! compare directly.

use alloc::vec::Vec;

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
    /// By time, then owner, latest first: the earliest deadline is the last
    /// element, so firing it is a `pop`. Each owner has at most one entry.
    /// A sorted vector rather than a `BTreeSet`: a handful of deadlines are
    /// armed at a time (at most two per vCPU), so a binary search and a
    /// short move beat tree nodes, and the image is spared a tree
    /// instantiation. Lookups by owner scan it: at these sizes that costs
    /// less than keeping a second, owner-ordered map in step (whose updates
    /// were most of the cost of firing a timer). Owners are kept packed
    /// ([`pack`]): one compare per owner, on the timer interrupt's path.
    queue: Vec<(u64, u64)>,
}

/// Bits of a packed [`TimerKey`] below the domain id: the vCPU above the
/// kind bit.
const DOM_SHIFT: u32 = 32;

/// `key` as one word ordered as the tuple is (domain, then vCPU, then kind).
/// vCPU indices are far below 2^31 (a domain has at most a few hundred).
pub(super) fn pack((dom, vcpu, kind): TimerKey) -> u64 {
    debug_assert!(vcpu < 1 << (DOM_SHIFT - 1));
    (u64::from(dom.0) << DOM_SHIFT) | ((vcpu as u64) << 1) | kind as u64
}

/// The [`TimerKey`] that [`pack`] made `k`.
pub(super) fn unpack(k: u64) -> TimerKey {
    let kind = if k & 1 == 0 {
        TimerKind::Guest
    } else {
        TimerKind::Poll
    };
    (
        DomainId((k >> DOM_SHIFT) as u32),
        ((k & ((1 << DOM_SHIFT) - 1)) >> 1) as usize,
        kind,
    )
}

impl Timers {
    /// Arms `key` for physical-counter value `at`, replacing its previous
    /// deadline.
    pub fn set(&mut self, key: TimerKey, at: u64) {
        self.cancel(key);
        let entry = (at, pack(key));
        // `key` is no longer queued, so `entry` is not either.
        let i = self.queue.partition_point(|e| *e > entry);
        self.queue.insert(i, entry);
    }

    /// Disarms `key` (nothing if it is not armed).
    pub fn cancel(&mut self, key: TimerKey) {
        let key = pack(key);
        if let Some(i) = self.queue.iter().position(|e| e.1 == key) {
            self.queue.remove(i);
        }
    }

    /// Disarms every deadline of `dom`.
    pub fn cancel_domain(&mut self, dom: DomainId) {
        self.queue.retain(|&(_, k)| unpack(k).0 != dom);
    }

    /// The deadline of `key`, if armed.
    pub fn get(&self, key: TimerKey) -> Option<u64> {
        let key = pack(key);
        self.queue.iter().find(|e| e.1 == key).map(|e| e.0)
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<u64> {
        self.queue.last().map(|&(at, _)| at)
    }

    /// Pops the deadline of `key` (packed, [`pack`]) if it is the only one
    /// due at `now` (the usual timer interrupt: the running vCPU's own timer
    /// ended), answering the
    /// earliest deadline left ([`Timers::next`] after the pop, `u64::MAX`
    /// when none is), which this has read anyway. Returns `None`, changing
    /// nothing, otherwise. Inline: the timer interrupt's fast path is a leaf.
    #[inline(always)]
    pub fn pop_only_due(&mut self, now: u64, key: u64) -> Option<u64> {
        let n = self.queue.len();
        let &(at, k) = self.queue.last()?;
        // The queue is sorted latest first: the one before the last is the
        // next deadline.
        let next = n
            .checked_sub(2)
            .and_then(|i| self.queue.get(i))
            .map_or(u64::MAX, |e| e.0);
        if at > now || k != key || next <= now {
            // Laid out of line: the timer interrupt's path falls through.
            core::hint::cold_path();
            return None;
        }
        self.queue.pop();
        Some(next)
    }

    /// Removes and returns the earliest deadline if it is at or before `now`.
    pub fn pop_expired(&mut self, now: u64) -> Option<(u64, TimerKey)> {
        let &(at, key) = self.queue.last()?;
        let key = unpack(key);
        if at > now {
            return None;
        }
        self.queue.pop();
        Some((at, key))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use tern_abi::domctl::DomainId;

    use super::{TimerKey, TimerKind, Timers};

    #[derive(Clone, Debug)]
    enum Op {
        Set(TimerKey, u64),
        Cancel(TimerKey),
        CancelDomain(DomainId),
        Pop(u64),
        PopOnly(u64, TimerKey),
    }

    fn key() -> impl Strategy<Value = TimerKey> {
        (0u32..3, 0usize..2, any::<bool>()).prop_map(|(d, v, poll)| {
            let kind = if poll {
                TimerKind::Poll
            } else {
                TimerKind::Guest
            };
            (DomainId(d), v, kind)
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct deadlines, so that ties between owners are common.
        prop_oneof![
            4 => (key(), 0u64..8).prop_map(|(k, at)| Op::Set(k, at)),
            2 => key().prop_map(Op::Cancel),
            1 => (0u32..3).prop_map(|d| Op::CancelDomain(DomainId(d))),
            2 => (0u64..8).prop_map(Op::Pop),
            2 => (0u64..8, key()).prop_map(|(now, k)| Op::PopOnly(now, k)),
        ]
    }

    proptest! {
        /// The timers agree with a plain map of owner → deadline: the same
        /// deadlines armed, and they fire earliest first, ties by owner.
        #[test]
        fn timers_match_a_reference_map(ops in proptest::collection::vec(op(), 0..64)) {
            let mut t = Timers::default();
            let mut model: BTreeMap<TimerKey, u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Set(k, at) => {
                        t.set(k, at);
                        model.insert(k, at);
                    }
                    Op::Cancel(k) => {
                        t.cancel(k);
                        model.remove(&k);
                    }
                    Op::CancelDomain(d) => {
                        t.cancel_domain(d);
                        model.retain(|k, _| k.0 != d);
                    }
                    Op::Pop(now) => {
                        let want = model
                            .iter()
                            .map(|(&k, &at)| (at, k))
                            .min()
                            .filter(|&(at, _)| at <= now);
                        if let Some((_, k)) = want {
                            model.remove(&k);
                        }
                        prop_assert_eq!(t.pop_expired(now), want);
                    }
                    Op::PopOnly(now, k) => {
                        let due: Vec<TimerKey> = model
                            .iter()
                            .filter(|&(_, &at)| at <= now)
                            .map(|(&k, _)| k)
                            .collect();
                        let want = due == [k];
                        if want {
                            model.remove(&k);
                        }
                        let popped = t.pop_only_due(now, super::pack(k));
                        prop_assert_eq!(popped.is_some(), want);
                        if let Some(next) = popped {
                            prop_assert_eq!(next, t.next().unwrap_or(u64::MAX));
                        }
                    }
                }
                prop_assert_eq!(t.next(), model.values().copied().min());
                for (&k, &at) in &model {
                    prop_assert_eq!(t.get(k), Some(at));
                }
                prop_assert_eq!(t.queue.len(), model.len());
            }
        }
    }
}
