//! The back end's side of the split-device handshake (`specs/store.md`,
//! `specs/netif.md`) as a state machine that dom0's main loop steps each
//! time the store may have changed: it reads the front end's `state` and
//! says what to do, never waiting.

use tern_abi::store::XenbusState;

/// Where an interface's back end is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// InitWait written; waiting for the front end's details.
    Waiting,
    /// Rings mapped, port bound, Connected written.
    Connected,
    /// Closed written (the front end closed, or broke the rules).
    Closed,
}

/// What the back end does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing changed.
    Wait,
    /// The front end is Initialised: read its details, map, bind, write
    /// Connected (or Closed if that fails).
    Attach,
    /// The front end is closing or gone: unmap, unbind, write Closed.
    Detach,
    /// A closed front end starts again: write InitWait.
    Reset,
}

/// The step for `phase` when the front end's `state` reads `front`
/// (`None`: missing or not a state).
pub fn step(phase: Phase, front: Option<XenbusState>) -> Step {
    use XenbusState as S;
    match (phase, front) {
        (Phase::Waiting, Some(S::Initialised | S::Connected)) => Step::Attach,
        (Phase::Connected, Some(S::Closing | S::Closed) | None) => Step::Detach,
        (Phase::Closed, Some(S::Initialising)) => Step::Reset,
        _ => Step::Wait,
    }
}

/// The front end's details, as its directory holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Details {
    /// Grant reference of the tx ring page.
    pub tx_ring_ref: u32,
    /// Grant reference of the rx ring page.
    pub rx_ring_ref: u32,
    /// The port the front end reserved for dom0.
    pub event_channel: u32,
}

fn number(v: &[u8]) -> Option<u32> {
    core::str::from_utf8(v).ok()?.trim().parse().ok()
}

impl Details {
    /// Parses the three values; `None` if one is not a decimal `u32`.
    pub fn parse(tx: &[u8], rx: &[u8], port: &[u8]) -> Option<Self> {
        Some(Self {
            tx_ring_ref: number(tx)?,
            rx_ring_ref: number(rx)?,
            event_channel: number(port)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use XenbusState as S;

    #[test]
    fn steps() {
        assert_eq!(step(Phase::Waiting, None), Step::Wait);
        assert_eq!(step(Phase::Waiting, Some(S::Initialising)), Step::Wait);
        assert_eq!(step(Phase::Waiting, Some(S::Initialised)), Step::Attach);
        assert_eq!(step(Phase::Waiting, Some(S::Connected)), Step::Attach);
        assert_eq!(step(Phase::Connected, Some(S::Connected)), Step::Wait);
        assert_eq!(step(Phase::Connected, Some(S::Initialised)), Step::Wait);
        assert_eq!(step(Phase::Connected, Some(S::Closing)), Step::Detach);
        assert_eq!(step(Phase::Connected, None), Step::Detach);
        assert_eq!(step(Phase::Closed, Some(S::Closed)), Step::Wait);
        assert_eq!(step(Phase::Closed, Some(S::Initialised)), Step::Wait);
        assert_eq!(step(Phase::Closed, Some(S::Initialising)), Step::Reset);
    }

    #[test]
    fn details_parse() {
        assert_eq!(
            Details::parse(b"8", b" 9\n", b"12"),
            Some(Details {
                tx_ring_ref: 8,
                rx_ring_ref: 9,
                event_channel: 12
            })
        );
        assert_eq!(Details::parse(b"8", b"-1", b"12"), None);
        assert_eq!(Details::parse(b"8", b"9", b"4294967296"), None);
        assert_eq!(Details::parse(b"", b"9", b"1"), None);
    }
}
