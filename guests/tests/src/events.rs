//! What the event-channel test guests share: finding the peer domain and
//! deciding whether the hypervisor delivers upcalls.
//!
//! `evtchn-ping` and `evtchn-pong` find each other by domain id. dom0 creates
//! the domains of a bundle in archive order with consecutive ids, so their
//! configurations name the peer relatively: `peer=+1` (the domain created
//! next) or `peer=-1` (the one created before); `peer=<n>` names domain n
//! outright. pong reserves its first port for ping, so that port is always 1
//! ([`PONG_PORT`]).

use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::evtchn::Port;
use pv_guest_sdk::{StartInfo, println};

/// The port pong reserves for ping: the first one it allocates.
pub const PONG_PORT: Port = Port(1);

/// The peer domain from `peer=` (`+k`, `-k` or an absolute id).
pub fn peer(si: &StartInfo) -> Option<DomainId> {
    parse_peer(si.cmdline().get("peer")?, si.domain_id())
}

/// `peer=` relative to `me`.
pub fn parse_peer(v: &str, me: DomainId) -> Option<DomainId> {
    let id = if let Some(k) = v.strip_prefix('+') {
        me.0.checked_add(pv_guest_sdk::cmdline::parse_u64(k)?.try_into().ok()?)?
    } else if let Some(k) = v.strip_prefix('-') {
        me.0.checked_sub(pv_guest_sdk::cmdline::parse_u64(k)?.try_into().ok()?)?
    } else {
        pv_guest_sdk::cmdline::parse_u64(v)?.try_into().ok()?
    };
    Some(DomainId(id))
}

/// Whether the test can run: the hypervisor delivers upcalls, or the
/// command line says `poll` (wait by yielding and scanning the event page,
/// which works without the upcall interrupt). Otherwise prints
/// `<name>: SKIP ...` and returns false.
pub fn can_run(si: &StartInfo, name: &str) -> bool {
    if pv_guest_sdk::events::upcalls_live() || si.cmdline().has("poll") {
        return true;
    }
    println!(
        "{name}: SKIP (the hypervisor does not deliver event upcalls yet; `poll` forces polling)"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers() {
        let me = DomainId(10);
        assert_eq!(parse_peer("+1", me), Some(DomainId(11)));
        assert_eq!(parse_peer("-1", me), Some(DomainId(9)));
        assert_eq!(parse_peer("3", me), Some(DomainId(3)));
        assert_eq!(parse_peer("-11", me), None);
        assert_eq!(parse_peer("+x", me), None);
    }
}
