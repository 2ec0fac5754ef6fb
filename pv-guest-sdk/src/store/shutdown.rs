//! dom0's requests that this domain shut down or reboot, as xl makes them:
//! a value in `control/shutdown` below the domain's home.

use alloc::collections::VecDeque;

use super::{Error, Store, StoreError};
use crate::time::Deadline;

/// The node, below a domain's home, where dom0 asks it to shut down (xl's
/// `control/shutdown`): dom0's `shutdown` verb writes `poweroff`, `reboot`
/// writes `reboot`. The guest clears it once it has seen the request.
pub const SHUTDOWN_NODE: &str = "control/shutdown";

/// The watch token of [`Store::wait_shutdown_request`].
const SHUTDOWN_TOKEN: &str = "tern-shutdown";

/// The shutdown a value of [`SHUTDOWN_NODE`] asks for: `poweroff` (or
/// xl's `halt`) and `reboot`; `None` for an empty or unknown value.
pub fn parse_shutdown_request(value: &[u8]) -> Option<crate::ShutdownReason> {
    use crate::ShutdownReason;
    match value.trim_ascii() {
        b"poweroff" | b"halt" => Some(ShutdownReason::Poweroff),
        b"reboot" => Some(ShutdownReason::Reboot),
        _ => None,
    }
}

impl Store {
    /// The shutdown dom0 asked for, if it asked ([`SHUTDOWN_NODE`]).
    pub fn shutdown_request(&mut self) -> Result<Option<crate::ShutdownReason>, Error> {
        match self.read(SHUTDOWN_NODE) {
            Ok(v) => Ok(parse_shutdown_request(&v)),
            Err(Error::Store(StoreError::NoEnt)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits (on a watch of [`SHUTDOWN_NODE`]) until dom0 asks this domain
    /// to shut down, or `deadline` passes (`Ok(None)`; `None`: forever).
    /// The request is acknowledged (the node cleared, as xl's guests do)
    /// before the reason is returned; the caller then shuts down with it
    /// (`pv_guest_sdk::shutdown`). Events of other watches stay queued for
    /// [`Store::next_event`].
    pub fn wait_shutdown_request(
        &mut self,
        deadline: Option<Deadline>,
    ) -> Result<Option<crate::ShutdownReason>, Error> {
        match self.watch(SHUTDOWN_NODE, SHUTDOWN_TOKEN) {
            Ok(()) | Err(Error::Store(StoreError::Exist)) => {}
            Err(e) => return Err(e),
        }
        let mut others = VecDeque::new();
        let r = loop {
            match self.shutdown_request() {
                Ok(Some(reason)) => break self.write(SHUTDOWN_NODE, b"").map(|()| Some(reason)),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            match self.next_event(deadline) {
                Ok(Some(ev)) if ev.token == SHUTDOWN_TOKEN => {}
                Ok(Some(ev)) => others.push_back(ev),
                Ok(None) => break Ok(None),
                Err(e) => break Err(e),
            }
        };
        let _ = self.unwatch(SHUTDOWN_NODE, SHUTDOWN_TOKEN);
        let _ = self.with(|c| {
            c.events.retain(|e| e.token != SHUTDOWN_TOKEN);
            others.append(&mut c.events);
            c.events = others;
            Ok(())
        });
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_requests() {
        use crate::ShutdownReason;
        assert_eq!(
            parse_shutdown_request(b"poweroff"),
            Some(ShutdownReason::Poweroff)
        );
        assert_eq!(
            parse_shutdown_request(b"halt"),
            Some(ShutdownReason::Poweroff)
        );
        assert_eq!(
            parse_shutdown_request(b"reboot\n"),
            Some(ShutdownReason::Reboot)
        );
        assert_eq!(parse_shutdown_request(b""), None);
        assert_eq!(parse_shutdown_request(b"suspend"), None);
        assert_eq!(parse_shutdown_request(b"crash"), None);
    }
}
