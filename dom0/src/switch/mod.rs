//! dom0's virtual switch: one learning bridge ([`bridge`]) joining the
//! domains' interfaces (netback), the physical NIC (the uplink) and dom0's
//! own TCP/IP interface ([`host`]). [`Switch`] takes frames in on a port
//! and queues copies on the ports they go to; whoever serves a port drains
//! its queue. Plain logic, host-tested (`specs/netif.md`, "The switch").

pub mod bridge;
pub mod dhcp;
pub mod host;
pub mod nat;
pub mod nat_wire;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

pub use bridge::{Bridge, Forward, Mac, PortId};

/// Frames queued on one port before the switch drops new ones for it.
pub const QUEUE_MAX: usize = 256;

/// The name of the one bridge (a vif entry's `bridge=`).
pub const BRIDGE_NAME: &str = "br0";

#[derive(Debug)]
struct Port {
    name: String,
    queue: VecDeque<Vec<u8>>,
    dropped: u64,
    received: u64,
}

/// The switch: the bridge's table and each port's queue of frames to send.
#[derive(Debug, Default)]
pub struct Switch {
    bridge: Bridge,
    ports: BTreeMap<PortId, Port>,
    next: u32,
}

/// Counters of one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames that came in on it.
    pub received: u64,
    /// Frames for it dropped because its queue was full.
    pub dropped: u64,
    /// Frames waiting in its queue.
    pub queued: usize,
}

impl Switch {
    /// A switch without ports.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a port called `name` (for messages); its id is never reused.
    pub fn add_port(&mut self, name: &str) -> PortId {
        let id = PortId(self.next);
        self.next += 1;
        self.ports.insert(
            id,
            Port {
                name: name.into(),
                queue: VecDeque::new(),
                dropped: 0,
                received: 0,
            },
        );
        id
    }

    /// Removes a port: its queue goes, and so do the addresses learned on it.
    pub fn remove_port(&mut self, id: PortId) {
        self.ports.remove(&id);
        self.bridge.forget_port(id);
    }

    /// A port's name.
    pub fn name(&self, id: PortId) -> Option<&str> {
        self.ports.get(&id).map(|p| p.name.as_str())
    }

    /// A port's counters.
    pub fn stats(&self, id: PortId) -> Option<PortStats> {
        self.ports.get(&id).map(|p| PortStats {
            received: p.received,
            dropped: p.dropped,
            queued: p.queue.len(),
        })
    }

    fn enqueue(port: &mut Port, frame: &[u8]) -> bool {
        if port.queue.len() >= QUEUE_MAX {
            port.dropped += 1;
            return false;
        }
        port.queue.push_back(frame.to_vec());
        true
    }

    /// Takes `frame` in on `from` at `now_ms` and queues it where the bridge
    /// says. Returns on how many ports it was queued. A frame from a port
    /// that does not exist is dropped.
    pub fn input(&mut self, from: PortId, frame: &[u8], now_ms: u64) -> usize {
        let Some(p) = self.ports.get_mut(&from) else {
            return 0;
        };
        p.received += 1;
        match self.bridge.route(from, frame, now_ms) {
            Forward::Drop => 0,
            Forward::To(to) => self
                .ports
                .get_mut(&to)
                .map_or(0, |p| usize::from(Self::enqueue(p, frame))),
            Forward::Flood => self
                .ports
                .iter_mut()
                .filter(|(id, _)| **id != from)
                .map(|(_, p)| usize::from(Self::enqueue(p, frame)))
                .sum(),
        }
    }

    /// The oldest frame queued on `port`, left there.
    pub fn peek(&self, port: PortId) -> Option<&[u8]> {
        self.ports.get(&port)?.queue.front().map(Vec::as_slice)
    }

    /// Takes the oldest frame queued on `port`.
    pub fn pop(&mut self, port: PortId) -> Option<Vec<u8>> {
        self.ports.get_mut(&port)?.queue.pop_front()
    }

    /// Frames queued on `port`.
    pub fn queued(&self, port: PortId) -> usize {
        self.ports.get(&port).map_or(0, |p| p.queue.len())
    }

    /// The bridge's table.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: Mac, src: Mac, fill: u8) -> Vec<u8> {
        let mut f = alloc::vec![fill; 64];
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f
    }

    const A: Mac = [0x00, 0x16, 0x3e, 0, 1, 0];
    const B: Mac = [0x00, 0x16, 0x3e, 0, 2, 0];

    #[test]
    fn floods_then_learns_then_switches() {
        let mut s = Switch::new();
        let up = s.add_port("uplink");
        let a = s.add_port("vif1.0");
        let b = s.add_port("vif2.0");
        // Unknown B: every port but a's gets it.
        assert_eq!(s.input(a, &frame(B, A, 1), 0), 2);
        assert_eq!(s.queued(up), 1);
        assert_eq!(s.queued(a), 0);
        assert_eq!(s.pop(b).unwrap(), frame(B, A, 1));
        s.pop(up);
        // B answers: only a gets it, and B is learned.
        assert_eq!(s.input(b, &frame(A, B, 2), 1), 1);
        assert_eq!(s.peek(a), Some(&frame(A, B, 2)[..]));
        assert_eq!(s.input(a, &frame(B, A, 3), 2), 1);
        assert_eq!(s.queued(b), 1);
        assert_eq!(s.queued(up), 0);
        assert_eq!(s.stats(a).unwrap().received, 2);
    }

    #[test]
    fn full_queues_drop_and_removed_ports_are_forgotten() {
        let mut s = Switch::new();
        let a = s.add_port("a");
        let b = s.add_port("b");
        s.input(b, &frame(A, B, 0), 0);
        s.pop(a);
        for i in 0..QUEUE_MAX + 5 {
            s.input(a, &frame(B, A, i as u8), 1);
        }
        assert_eq!(s.queued(b), QUEUE_MAX);
        assert_eq!(s.stats(b).unwrap().dropped, 5);
        // The oldest frames are kept, in order.
        assert_eq!(s.pop(b).unwrap()[20], 0);
        s.remove_port(b);
        assert_eq!(s.bridge().lookup(&B, 1), None);
        assert_eq!(s.input(b, &frame(A, B, 0), 1), 0);
        assert_eq!(s.input(a, &frame(B, A, 0), 1), 0);
        let c = s.add_port("c");
        assert_ne!(c, b);
        assert_eq!(s.name(c), Some("c"));
    }
}
