//! Tracking the domains dom0 started until they exit, and what becomes of
//! them then ([`fate`]): destroyed, created again (a reboot, or a crash
//! under `on_crash = "restart"`, after the back-off of [`Restarts`]), or
//! kept for inspection (`on_crash = "preserve"`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use tern_abi::domctl::{DomainId, DomainInfo, DomainState};
use tern_abi::sched::ShutdownReason;

use crate::config::{DomainConfig, OnCrash};
use crate::restart::Restarts;

/// How a domain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called `sched_op shutdown` with this reason.
    Shutdown(ShutdownReason),
    /// It called shutdown with a reason this dom0 does not know.
    UnknownReason(u32),
    /// The hypervisor stopped it after a fault.
    Crashed,
    /// It disappeared (destroyed by someone else).
    Gone,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shutdown(r) => f.write_str(r.name()),
            Self::UnknownReason(r) => write!(f, "shutdown reason {r}"),
            Self::Crashed => f.write_str("crashed"),
            Self::Gone => f.write_str("gone"),
        }
    }
}

impl Exit {
    /// Whether it crashed: stopped by the hypervisor, or shut down with
    /// reason `crash` (a guest that caught its own fault).
    pub fn is_crash(self) -> bool {
        matches!(self, Self::Crashed | Self::Shutdown(ShutdownReason::Crash))
    }
}

/// What dom0 does with a domain that ended (xl's `on_poweroff`,
/// `on_reboot` and `on_crash`, the first two fixed to destroy and restart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Destroy it.
    Destroy,
    /// Nothing: it is gone already.
    Forget,
    /// Destroy it and create it again from its configuration at once (it
    /// asked to reboot).
    Recreate,
    /// Destroy it and create it again once the back-off allows
    /// (`on_crash = "restart"`).
    Restart,
    /// Leave it as it is, for inspection (`on_crash = "preserve"`).
    Preserve,
}

/// What becomes of a domain that ended with `exit`.
pub fn fate(exit: Exit, on_crash: OnCrash) -> Fate {
    match exit {
        Exit::Gone => Fate::Forget,
        Exit::Shutdown(ShutdownReason::Reboot) => Fate::Recreate,
        e if e.is_crash() => match on_crash {
            OnCrash::Destroy => Fate::Destroy,
            OnCrash::Restart => Fate::Restart,
            OnCrash::Preserve => Fate::Preserve,
        },
        _ => Fate::Destroy,
    }
}

/// How a domain ended, or `None` while it is still alive.
pub fn exit_of(info: &DomainInfo) -> Option<Exit> {
    match DomainState::from_raw(info.state) {
        Some(DomainState::Shutdown) => Some(
            ShutdownReason::from_raw(info.shutdown_reason)
                .map_or(Exit::UnknownReason(info.shutdown_reason), Exit::Shutdown),
        ),
        Some(DomainState::Crashed) => Some(Exit::Crashed),
        Some(DomainState::Dying) => Some(Exit::Gone),
        _ => None,
    }
}

/// A domain dom0 started and is waiting for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// Its id.
    pub id: DomainId,
    /// Its name, for the report.
    pub name: String,
    /// The configuration (boot module) it was made from, to make it again.
    pub config: String,
    /// What to do when it crashes.
    pub on_crash: OnCrash,
    /// When dom0 created it (ns on dom0's clock), for the back-off.
    pub started_ns: u64,
}

impl Watched {
    /// Domain `id`, just made from `cfg` (boot module `config`) at
    /// `started_ns`.
    pub fn new(id: DomainId, cfg: &DomainConfig, config: &str, started_ns: u64) -> Self {
        Self {
            id,
            name: cfg.name.clone(),
            config: config.into(),
            on_crash: cfg.on_crash,
            started_ns,
        }
    }
}

/// The domains dom0 waits for, and those it will create again after a
/// crash once their back-off has passed.
#[derive(Debug, Default)]
pub struct Watchlist {
    domains: Vec<Watched>,
    restarts: Restarts,
    /// The crashed domains whose restart waits in `restarts`, one per
    /// configuration.
    waiting: Vec<Watched>,
}

impl Watchlist {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            domains: Vec::new(),
            restarts: Restarts::new(),
            waiting: Vec::new(),
        }
    }

    /// Starts watching a domain.
    pub fn add(&mut self, w: Watched) {
        self.domains.push(w);
    }

    /// Stops watching `id` (destroyed on purpose); its entry if it was
    /// watched.
    pub fn remove(&mut self, id: DomainId) -> Option<Watched> {
        let i = self.domains.iter().position(|w| w.id == id)?;
        Some(self.domains.remove(i))
    }

    /// The watched domains, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Watched> {
        self.domains.iter()
    }

    /// Whether nothing is left to wait for: no domain, no restart.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.waiting.is_empty()
    }

    /// `w` crashed at `now_ns` under `on_crash = "restart"`: schedules its
    /// restart and returns the wait in ns.
    pub fn crashed(&mut self, w: Watched, now_ns: u64) -> u64 {
        let delay = self.restarts.crashed(&w.config, w.started_ns, now_ns);
        self.waiting.retain(|x| x.config != w.config);
        self.waiting.push(w);
        delay
    }

    /// The crashed domains whose restart is due at `now_ns`, taken off the
    /// queue (each to be created again from its configuration).
    pub fn due(&mut self, now_ns: u64) -> Vec<Watched> {
        let mut due = Vec::new();
        for p in self.restarts.due(now_ns) {
            if let Some(i) = self.waiting.iter().position(|w| w.config == p.config) {
                due.push(self.waiting.remove(i));
            }
        }
        due
    }

    /// When the next restart is due (ns on dom0's clock), if one waits.
    pub fn next_due(&self) -> Option<u64> {
        self.restarts.next_due()
    }

    /// Cancels the pending restart of the domain called `name` (destroyed
    /// by hand while it waited); whether there was one.
    pub fn cancel_restart(&mut self, name: &str) -> bool {
        let Some(i) = self.waiting.iter().position(|w| w.name == name) else {
            return false;
        };
        let w = self.waiting.remove(i);
        self.restarts.cancel(&w.config);
        true
    }

    /// Cancels the pending restart made from `config` (created by hand
    /// meanwhile).
    pub fn cancel_config(&mut self, config: &str) {
        self.waiting.retain(|w| w.config != config);
        self.restarts.cancel(config);
    }

    /// Asks `info` about every watched domain and removes those that ended,
    /// returning them with how they ended. `info` returns `None` for a domain
    /// that no longer exists.
    pub fn poll(
        &mut self,
        mut info: impl FnMut(DomainId) -> Option<DomainInfo>,
    ) -> Vec<(Watched, Exit)> {
        let mut ended = Vec::new();
        self.domains.retain(|w| {
            let exit = match info(w.id) {
                Some(i) => exit_of(&i),
                None => Some(Exit::Gone),
            };
            match exit {
                Some(e) => {
                    ended.push((w.clone(), e));
                    false
                }
                None => true,
            }
        });
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use zerocopy::FromZeros;

    fn w(id: u32, name: &str) -> Watched {
        Watched {
            id: DomainId(id),
            name: name.into(),
            config: alloc::format!("{name}.toml"),
            on_crash: OnCrash::Destroy,
            started_ns: 0,
        }
    }

    fn info(state: DomainState, reason: u32) -> DomainInfo {
        let mut i = DomainInfo::new_zeroed();
        i.state = state.raw();
        i.shutdown_reason = reason;
        i
    }

    #[test]
    fn exits() {
        assert_eq!(exit_of(&info(DomainState::Running, 0)), None);
        assert_eq!(exit_of(&info(DomainState::Paused, 0)), None);
        assert_eq!(exit_of(&info(DomainState::Blocked, 0)), None);
        assert_eq!(
            exit_of(&info(DomainState::Shutdown, ShutdownReason::Crash.raw())),
            Some(Exit::Shutdown(ShutdownReason::Crash))
        );
        assert_eq!(
            exit_of(&info(DomainState::Shutdown, 77)),
            Some(Exit::UnknownReason(77))
        );
        assert_eq!(exit_of(&info(DomainState::Crashed, 0)), Some(Exit::Crashed));
        assert_eq!(
            Exit::Shutdown(ShutdownReason::Poweroff).to_string(),
            "poweroff"
        );
        assert_eq!(Exit::Crashed.to_string(), "crashed");
    }

    #[test]
    fn watchlist_reports_each_exit_once() {
        let mut w = Watchlist::new();
        w.add(self::w(1, "a"));
        w.add(self::w(2, "b"));
        w.add(self::w(3, "c"));
        let ended = w.poll(|id| match id.0 {
            1 => Some(info(DomainState::Running, 0)),
            2 => Some(info(DomainState::Shutdown, 0)),
            _ => None,
        });
        assert_eq!(ended.len(), 2);
        assert_eq!(ended[0].0.name, "b");
        assert_eq!(ended[0].1, Exit::Shutdown(ShutdownReason::Poweroff));
        assert_eq!(ended[1].1, Exit::Gone);
        assert!(!w.is_empty());
        assert_eq!(w.iter().map(|w| w.id).collect::<Vec<_>>(), [DomainId(1)]);
        let ended = w.poll(|_| Some(info(DomainState::Crashed, 0)));
        assert_eq!(ended.len(), 1);
        assert!(w.is_empty());
        w.add(self::w(4, "d"));
        assert!(w.remove(DomainId(5)).is_none());
        assert_eq!(w.remove(DomainId(4)).map(|w| w.name), Some("d".into()));
        assert!(w.is_empty());
    }

    #[test]
    fn fates() {
        use ShutdownReason::*;
        for on in [OnCrash::Destroy, OnCrash::Restart, OnCrash::Preserve] {
            assert_eq!(fate(Exit::Shutdown(Poweroff), on), Fate::Destroy);
            assert_eq!(fate(Exit::UnknownReason(9), on), Fate::Destroy);
            assert_eq!(fate(Exit::Shutdown(Reboot), on), Fate::Recreate);
            assert_eq!(fate(Exit::Gone, on), Fate::Forget);
        }
        for crash in [Exit::Crashed, Exit::Shutdown(Crash)] {
            assert_eq!(fate(crash, OnCrash::Destroy), Fate::Destroy);
            assert_eq!(fate(crash, OnCrash::Restart), Fate::Restart);
            assert_eq!(fate(crash, OnCrash::Preserve), Fate::Preserve);
        }
    }

    #[test]
    fn restarts_wait_their_turn_and_can_be_cancelled() {
        const MS: u64 = 1_000_000;
        let mut l = Watchlist::new();
        let a = w(1, "a");
        l.add(a.clone());
        let ended = l.poll(|_| Some(info(DomainState::Crashed, 0)));
        assert_eq!(ended.len(), 1);
        assert_eq!(l.crashed(a.clone(), 100 * MS), 250 * MS);
        assert!(!l.is_empty(), "a restart is pending");
        assert_eq!(l.next_due(), Some(350 * MS));
        assert!(l.due(349 * MS).is_empty());
        assert_eq!(l.due(350 * MS), core::slice::from_ref(&a));
        assert!(l.is_empty());
        // Made again, crashed again at once: a longer wait.
        let a2 = Watched {
            id: DomainId(2),
            started_ns: 350 * MS,
            ..a.clone()
        };
        assert_eq!(l.crashed(a2, 360 * MS), 500 * MS);
        assert!(!l.cancel_restart("b"));
        assert!(l.cancel_restart("a"));
        assert!(l.is_empty());
        assert_eq!(l.next_due(), None);
        l.crashed(a, 400 * MS);
        l.cancel_config("a.toml");
        assert!(l.is_empty() && l.next_due().is_none());
    }
}
