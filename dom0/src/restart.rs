//! `on_crash = "restart"`: when to start a crashed domain again.
//!
//! A guest that crashes soon after it starts would otherwise be restarted in
//! a tight loop, taking dom0's and the hypervisor's time from every other
//! domain. Each quick crash doubles the wait before the next start, from
//! [`FIRST_DELAY_NS`] up to [`MAX_DELAY_NS`]; a domain that ran for
//! [`STABLE_NS`] before crashing is restarted at once and its count starts
//! over.

use alloc::string::String;
use alloc::vec::Vec;

/// The wait after the first quick crash.
pub const FIRST_DELAY_NS: u64 = 250_000_000;
/// The longest wait.
pub const MAX_DELAY_NS: u64 = 30_000_000_000;
/// A run at least this long counts as a success.
pub const STABLE_NS: u64 = 10_000_000_000;

/// A restart that waits for its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The configuration (boot module) to create the domain from.
    pub config: String,
    /// When to create it (monotonic ns).
    pub at_ns: u64,
}

/// Crash history per configuration, and the restarts not yet due.
#[derive(Debug, Default)]
pub struct Restarts {
    /// `(config, consecutive quick crashes)`.
    quick: Vec<(String, u32)>,
    pending: Vec<Pending>,
}

impl Restarts {
    /// No history, nothing pending.
    pub const fn new() -> Self {
        Self {
            quick: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Notes that the domain made from `config`, started at `started_ns`,
    /// crashed at `now_ns`; schedules its restart and returns the wait.
    pub fn crashed(&mut self, config: &str, started_ns: u64, now_ns: u64) -> u64 {
        let quick = now_ns.saturating_sub(started_ns) < STABLE_NS;
        let i = match self.quick.iter().position(|(c, _)| c == config) {
            Some(i) => i,
            None => {
                self.quick.push((config.into(), 0));
                self.quick.len() - 1
            }
        };
        let n = &mut self.quick[i].1;
        *n = if quick { n.saturating_add(1) } else { 0 };
        let delay = match *n {
            0 => 0,
            k => FIRST_DELAY_NS
                .saturating_mul(1 << (k - 1).min(31))
                .min(MAX_DELAY_NS),
        };
        self.pending.retain(|p| p.config != config);
        self.pending.push(Pending {
            config: config.into(),
            at_ns: now_ns + delay,
        });
        delay
    }

    /// The restarts due at `now_ns`, taken off the queue.
    pub fn due(&mut self, now_ns: u64) -> Vec<Pending> {
        let (due, wait) = core::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.at_ns <= now_ns);
        self.pending = wait;
        due
    }

    /// When the next restart is due, if one waits.
    pub fn next_due(&self) -> Option<u64> {
        self.pending.iter().map(|p| p.at_ns).min()
    }

    /// Forgets a configuration's pending restart (its domain was created or
    /// destroyed by hand meanwhile).
    pub fn cancel(&mut self, config: &str) {
        self.pending.retain(|p| p.config != config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn quick_crashes_back_off_and_a_stable_run_resets() {
        let mut r = Restarts::default();
        let mut now = 100 * S;
        let mut delays = Vec::new();
        for _ in 0..10 {
            let d = r.crashed("bad.toml", now - S / 10, now);
            delays.push(d);
            assert_eq!(r.next_due(), Some(now + d));
            assert!(r.due(now + d - 1).is_empty(), "not before its time");
            assert_eq!(r.due(now + d).len(), 1);
            now += d + S / 10;
        }
        assert_eq!(delays[..4], [S / 4, S / 2, S, 2 * S]);
        assert_eq!(*delays.last().unwrap(), MAX_DELAY_NS, "capped");
        // Ran long enough: at once, and the count starts over.
        assert_eq!(r.crashed("bad.toml", now - STABLE_NS, now), 0);
        assert_eq!(r.crashed("bad.toml", now, now + 1), FIRST_DELAY_NS);
    }

    #[test]
    fn configurations_are_independent_and_cancellable() {
        let mut r = Restarts::default();
        r.crashed("a", 0, S);
        r.crashed("a", S, 2 * S);
        assert_eq!(
            r.crashed("b", 0, 2 * S),
            FIRST_DELAY_NS,
            "b has its own count"
        );
        assert_eq!(r.next_due(), Some(2 * S + FIRST_DELAY_NS));
        r.cancel("b");
        assert_eq!(
            r.next_due(),
            Some(2 * S + S / 2),
            "one entry per configuration"
        );
        let due = r.due(u64::MAX);
        assert_eq!(
            due,
            [Pending {
                config: "a".into(),
                at_ns: 2 * S + S / 2
            }]
        );
        assert_eq!(r.next_due(), None);
    }
}
