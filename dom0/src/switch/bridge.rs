//! The learning bridge's forwarding decision: a table of which port each
//! source MAC was last seen on, aged out, and what to do with a frame.
//! Plain logic, host-tested; [`super::Switch`] moves the frames.

use alloc::vec::Vec;

/// A port of the switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u32);

/// A MAC address.
pub type Mac = [u8; 6];

/// Bytes of an Ethernet header (destination, source, type).
pub const ETH_HEADER: usize = 14;

/// How long a learned address stays without being seen again (Linux's
/// default bridge ageing time).
pub const AGEING_MS: u64 = 300_000;

/// Most addresses the table holds; the least recently seen goes first.
pub const TABLE_MAX: usize = 1024;

/// Whether `mac` is a group (multicast or broadcast) address: the I/G bit,
/// the lowest bit of the first byte (IEEE 802-2014, 8.2).
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    /// Nowhere: malformed, or its destination lives on the port it came from.
    Drop,
    /// To one port.
    To(PortId),
    /// To every port but the one it came from.
    Flood,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    mac: Mac,
    port: PortId,
    seen_ms: u64,
}

/// The MAC table.
#[derive(Debug, Default)]
pub struct Bridge {
    table: Vec<Entry>,
}

impl Bridge {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Addresses known (aged ones included until they are looked up or
    /// replaced).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The port `mac` was last seen on, if that was less than
    /// [`AGEING_MS`] before `now_ms`.
    pub fn lookup(&self, mac: &Mac, now_ms: u64) -> Option<PortId> {
        self.table
            .iter()
            .find(|e| &e.mac == mac && now_ms.saturating_sub(e.seen_ms) < AGEING_MS)
            .map(|e| e.port)
    }

    /// Notes that `mac` was seen on `port`. Group and all-zero addresses are
    /// never learned (no frame may come *from* them).
    pub fn learn(&mut self, mac: &Mac, port: PortId, now_ms: u64) {
        if is_group(mac) || *mac == [0; 6] {
            return;
        }
        if let Some(e) = self.table.iter_mut().find(|e| &e.mac == mac) {
            e.port = port;
            e.seen_ms = now_ms;
            return;
        }
        // Expired entries go first; then, if still full, the stalest.
        self.table
            .retain(|e| now_ms.saturating_sub(e.seen_ms) < AGEING_MS);
        if self.table.len() >= TABLE_MAX
            && let Some(i) = (0..self.table.len()).min_by_key(|&i| self.table[i].seen_ms)
        {
            self.table.swap_remove(i);
        }
        self.table.push(Entry {
            mac: *mac,
            port,
            seen_ms: now_ms,
        });
    }

    /// Forgets every address learned on `port` (it went away).
    pub fn forget_port(&mut self, port: PortId) {
        self.table.retain(|e| e.port != port);
    }

    /// Learns the source of `frame` (which came in on `from`) and says
    /// where it goes.
    pub fn route(&mut self, from: PortId, frame: &[u8], now_ms: u64) -> Forward {
        if frame.len() < ETH_HEADER {
            return Forward::Drop;
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&frame[0..6]);
        src.copy_from_slice(&frame[6..12]);
        self.learn(&src, from, now_ms);
        if is_group(&dst) {
            return Forward::Flood;
        }
        match self.lookup(&dst, now_ms) {
            Some(p) if p == from => Forward::Drop,
            Some(p) => Forward::To(p),
            None => Forward::Flood,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [0x00, 0x16, 0x3e, 0, 1, 0];
    const B: Mac = [0x00, 0x16, 0x3e, 0, 2, 0];
    const BCAST: Mac = [0xff; 6];
    const P1: PortId = PortId(1);
    const P2: PortId = PortId(2);
    const P3: PortId = PortId(3);

    fn frame(dst: Mac, src: Mac) -> Vec<u8> {
        let mut f = alloc::vec![0u8; 60];
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f
    }

    #[test]
    fn unknown_and_broadcast_flood_known_goes_to_its_port() {
        let mut b = Bridge::new();
        assert_eq!(b.route(P1, &frame(B, A), 0), Forward::Flood);
        assert_eq!(b.route(P2, &frame(BCAST, B), 1), Forward::Flood);
        assert_eq!(b.route(P2, &frame(A, B), 2), Forward::To(P1));
        assert_eq!(b.route(P1, &frame(B, A), 3), Forward::To(P2));
        // Destination on the port it came from: not sent back.
        assert_eq!(b.route(P1, &frame(A, A), 4), Forward::Drop);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn runts_are_dropped_and_group_sources_not_learned() {
        let mut b = Bridge::new();
        assert_eq!(b.route(P1, &[0u8; 13], 0), Forward::Drop);
        b.route(P1, &frame(A, BCAST), 0);
        b.route(P1, &frame(A, [0; 6]), 0);
        assert!(b.is_empty());
        assert_eq!(b.route(P2, &frame(BCAST, A), 0), Forward::Flood);
        assert_eq!(b.lookup(&A, 0), Some(P2));
    }

    #[test]
    fn addresses_move_and_age_out() {
        let mut b = Bridge::new();
        b.learn(&A, P1, 0);
        b.learn(&A, P3, 10);
        assert_eq!(b.lookup(&A, 10), Some(P3));
        assert_eq!(b.lookup(&A, 10 + AGEING_MS - 1), Some(P3));
        assert_eq!(b.lookup(&A, 10 + AGEING_MS), None);
        assert_eq!(b.route(P2, &frame(A, B), 10 + AGEING_MS), Forward::Flood);
        // Re-seen: fresh again.
        b.learn(&A, P1, 20 + AGEING_MS);
        assert_eq!(b.lookup(&A, 20 + AGEING_MS), Some(P1));
    }

    #[test]
    fn forgetting_a_port_and_a_full_table() {
        let mut b = Bridge::new();
        b.learn(&A, P1, 0);
        b.learn(&B, P2, 0);
        b.forget_port(P1);
        assert_eq!(b.lookup(&A, 0), None);
        assert_eq!(b.lookup(&B, 0), Some(P2));
        for i in 0..TABLE_MAX as u32 * 2 {
            let [_, _, x, y] = i.to_be_bytes();
            b.learn(&[0x02, 0, 0, 0, x, y], P3, u64::from(i) + 1);
        }
        assert_eq!(b.len(), TABLE_MAX);
        // The stalest went; the newest is there.
        assert_eq!(b.lookup(&B, 1), None);
        let last = TABLE_MAX as u32 * 2 - 1;
        let [_, _, x, y] = last.to_be_bytes();
        assert_eq!(b.lookup(&[0x02, 0, 0, 0, x, y], 1), Some(P3));
    }
}
