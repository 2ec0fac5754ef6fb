//! Tracking the domains dom0 started until they exit.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use tern_abi::domctl::{DomainId, DomainInfo, DomainState};
use tern_abi::sched::ShutdownReason;

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
}

/// The domains dom0 waits for.
#[derive(Debug, Default)]
pub struct Watchlist {
    domains: Vec<Watched>,
}

impl Watchlist {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            domains: Vec::new(),
        }
    }

    /// Starts watching `id`.
    pub fn add(&mut self, id: DomainId, name: String) {
        self.domains.push(Watched { id, name });
    }

    /// Stops watching `id` (destroyed on purpose); whether it was watched.
    pub fn remove(&mut self, id: DomainId) -> bool {
        let before = self.domains.len();
        self.domains.retain(|w| w.id != id);
        self.domains.len() != before
    }

    /// The watched domains, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Watched> {
        self.domains.iter()
    }

    /// Whether nothing is left to wait for.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
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
        w.add(DomainId(1), "a".into());
        w.add(DomainId(2), "b".into());
        w.add(DomainId(3), "c".into());
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
        w.add(DomainId(4), "d".into());
        assert!(!w.remove(DomainId(5)));
        assert!(w.remove(DomainId(4)));
        assert!(w.is_empty());
    }
}
