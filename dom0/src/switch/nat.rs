//! Network address translation for bridge `nat0`: domains on a private
//! subnet reach out through dom0's own uplink address.
//!
//! dom0 is the private subnet's gateway ([`NAT_GATEWAY`], answering ARP for
//! it with [`NAT_GATEWAY_MAC`] and echo requests to it) and its DHCP server
//! ([`super::dhcp`]). An outgoing TCP or
//! UDP packet, or ICMP echo request, gets dom0's uplink address as source
//! and a port (ICMP: an identifier) from [`NAT_PORTS`], disjoint from the
//! ports dom0's own stack uses; replies to that port are translated back.
//! Checksums are updated incrementally (RFC 1624). The uplink next hop's MAC
//! comes from ARP, asked by this module from dom0's uplink MAC, the frames
//! for it held meanwhile. Mappings expire: TCP [`TCP_CLOSED_MS`] after a
//! RST or FINs both ways, else after [`TCP_IDLE_MS`] idle; UDP after
//! [`UDP_MS`], ICMP after [`ICMP_MS`]. The table holds [`TABLE_MAX`]
//! mappings; when it or the port range is full a new flow is dropped.
//!
//! Plain logic, host-tested (`nat_tests.rs`); `netback::service` moves the
//! frames (`specs/netif.md`, "NAT").

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use super::bridge::{Mac, is_group};
use super::dhcp::DhcpServer;
use super::nat_wire::{self as wire, ARP_REPLY, ARP_REQUEST, End, Ip, Ipv4};

/// The name of the NAT bridge (a vif entry's `bridge=`).
pub const NAT_BRIDGE: &str = "nat0";
/// dom0's address on the private subnet: the domains' gateway.
pub const NAT_GATEWAY: Ip = [10, 0, 3, 1];
/// Prefix length of the private subnet (10.0.3.0/24).
pub const NAT_PREFIX: u8 = 24;
/// The gateway's MAC on `nat0` (locally administered).
pub const NAT_GATEWAY_MAC: Mac = [0x02, 0x00, 0x0a, 0x00, 0x03, 0x01];
/// Ports (and ICMP identifiers) translated flows get on the uplink: below
/// IANA's dynamic range (49152..), where dom0's own sockets live.
pub const NAT_PORTS: RangeInclusive<u16> = 40000..=48999;
/// Most mappings at once.
pub const TABLE_MAX: usize = 1024;
/// An open TCP mapping's idle timeout (RFC 5382, REQ-5: at least 2 h 4 min).
pub const TCP_IDLE_MS: u64 = 7_440_000;
/// A TCP mapping's life after a RST or a FIN each way.
pub const TCP_CLOSED_MS: u64 = 10_000;
/// A UDP mapping's idle timeout (RFC 4787, REQ-5: at least 2 min).
pub const UDP_MS: u64 = 120_000;
/// An ICMP echo mapping's idle timeout.
pub const ICMP_MS: u64 = 60_000;
/// Uplink neighbours remembered, and for how long.
const NEIGHBOURS_MAX: usize = 16;
const NEIGHBOUR_MS: u64 = 300_000;
/// Frames held while their next hop's MAC is asked, and for how long.
const PENDING_MAX: usize = 32;
const PENDING_MS: u64 = 3_000;

/// dom0's side of the uplink, from its DHCP lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uplink {
    /// dom0's address.
    pub ip: Ip,
    /// Its prefix length.
    pub prefix: u8,
    /// The default gateway, if any.
    pub gateway: Option<Ip>,
    /// dom0's MAC on the uplink.
    pub mac: Mac,
}

/// A frame NAT sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// Into `nat0`, from the gateway's port.
    Inside(Vec<u8>),
    /// Onto the uplink bridge, from dom0's port.
    Outside(Vec<u8>),
}

/// What NAT made of a frame the uplink bridge delivered to dom0's port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claim {
    /// Whether dom0's own stack gets the frame too (it is not a translated
    /// flow's, or it is ARP).
    pub pass: bool,
    /// The frames NAT sends because of it.
    pub out: Vec<Out>,
}

impl Claim {
    fn pass() -> Self {
        Self {
            pass: true,
            out: Vec::new(),
        }
    }

    fn taken(out: Vec<Out>) -> Self {
        Self { pass: false, out }
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatStats {
    /// Packets translated out.
    pub out: u64,
    /// Replies translated back in.
    pub back: u64,
    /// Frames dropped: not translatable, no uplink, no mapping, TTL spent.
    pub dropped: u64,
    /// New flows refused because the table or the port range was full.
    pub exhausted: u64,
}

#[derive(Clone, Copy, Debug)]
struct Mapping {
    proto: u8,
    in_mac: Mac,
    in_ip: Ip,
    in_port: u16,
    remote_ip: Ip,
    remote_port: u16,
    out_port: u16,
    last_ms: u64,
    fin_in: bool,
    fin_out: bool,
    closed: bool,
}

impl Mapping {
    fn expired(&self, now_ms: u64) -> bool {
        let limit = match self.proto {
            wire::PROTO_TCP if self.closed || (self.fin_in && self.fin_out) => TCP_CLOSED_MS,
            wire::PROTO_TCP => TCP_IDLE_MS,
            wire::PROTO_UDP => UDP_MS,
            _ => ICMP_MS,
        };
        now_ms.saturating_sub(self.last_ms) >= limit
    }

    /// Notes a TCP segment's flags: `inward` is a reply's.
    fn note(&mut self, p: &Ipv4, inward: bool, now_ms: u64) {
        self.last_ms = now_ms;
        if p.proto != wire::PROTO_TCP {
            return;
        }
        if p.kind & wire::TCP_RST != 0 {
            self.closed = true;
        }
        if p.kind & wire::TCP_FIN != 0 {
            if inward {
                self.fin_out = true;
            } else {
                self.fin_in = true;
            }
        }
    }
}

/// The translator: its mappings, the uplink's neighbours and held frames.
#[derive(Debug)]
pub struct Nat {
    ports: RangeInclusive<u16>,
    next: u16,
    uplink: Option<Uplink>,
    table: Vec<Mapping>,
    neighbours: Vec<(Ip, Mac, u64)>,
    pending: VecDeque<(Ip, Vec<u8>, u64)>,
    /// The subnet's DHCP server.
    pub dhcp: DhcpServer,
    /// Counters.
    pub stats: NatStats,
}

impl Default for Nat {
    fn default() -> Self {
        Self::new(NAT_PORTS)
    }
}

impl Nat {
    /// A translator handing out `ports`, without an uplink yet.
    pub fn new(ports: RangeInclusive<u16>) -> Self {
        Self {
            next: *ports.start(),
            ports,
            uplink: None,
            table: Vec::new(),
            neighbours: Vec::new(),
            pending: VecDeque::new(),
            dhcp: DhcpServer::new(),
            stats: NatStats::default(),
        }
    }

    /// Sets (or clears) dom0's uplink address. A new address ends every
    /// mapping and forgets the neighbours.
    pub fn set_uplink(&mut self, uplink: Option<Uplink>) {
        if self.uplink != uplink {
            self.table.clear();
            self.neighbours.clear();
            self.pending.clear();
            self.uplink = uplink;
        }
    }

    /// The uplink in use.
    pub fn uplink(&self) -> Option<Uplink> {
        self.uplink
    }

    /// Mappings in the table.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Drops expired mappings, neighbours and held frames.
    pub fn expire(&mut self, now_ms: u64) {
        self.table.retain(|m| !m.expired(now_ms));
        self.neighbours
            .retain(|n| now_ms.saturating_sub(n.2) < NEIGHBOUR_MS);
        let before = self.pending.len();
        self.pending
            .retain(|p| now_ms.saturating_sub(p.2) < PENDING_MS);
        self.stats.dropped += (before - self.pending.len()) as u64;
    }

    fn drop_frame(&mut self) -> Vec<Out> {
        self.stats.dropped += 1;
        Vec::new()
    }

    /// Takes a frame `nat0` delivered to the gateway's port. Answers ARP,
    /// DHCP and echo requests for the gateway, translates what goes beyond
    /// the subnet, and drops the rest.
    pub fn inside(&mut self, frame: &[u8], now_ms: u64) -> Vec<Out> {
        if let Some(r) = self.dhcp.handle(frame, now_ms) {
            return alloc::vec![Out::Inside(r)];
        }
        if let Some(a) = wire::parse_arp(frame) {
            if a.op == ARP_REQUEST && a.tpa == NAT_GATEWAY {
                return alloc::vec![Out::Inside(wire::build_arp(
                    ARP_REPLY,
                    a.sha,
                    NAT_GATEWAY_MAC,
                    NAT_GATEWAY,
                    a.sha,
                    a.spa,
                ))];
            }
            return Vec::new();
        }
        if wire::dst_mac(frame) != Some(NAT_GATEWAY_MAC) {
            // Another domain's (flooded to every port): not ours.
            return Vec::new();
        }
        let Some(p) = wire::parse_ipv4(frame) else {
            return self.drop_frame();
        };
        if p.dst == NAT_GATEWAY {
            if p.proto == wire::PROTO_ICMP && p.kind == wire::ICMP_ECHO_REQUEST {
                let mut f = frame.to_vec();
                wire::echo_reply(&mut f, &p);
                return alloc::vec![Out::Inside(f)];
            }
            return self.drop_frame();
        }
        let Some(up) = self.uplink else {
            return self.drop_frame();
        };
        if wire::same_subnet(p.dst, NAT_GATEWAY, NAT_PREFIX)
            || p.proto == wire::PROTO_ICMP && p.kind != wire::ICMP_ECHO_REQUEST
        {
            return self.drop_frame();
        }
        let in_mac: Mac = frame[6..12].try_into().unwrap_or([0; 6]);
        let Some(i) = self.mapping_for(&p, in_mac, now_ms) else {
            return Vec::new();
        };
        self.table[i].note(&p, false, now_ms);
        let out_port = self.table[i].out_port;
        let mut f = frame.to_vec();
        if !wire::rewrite(&mut f, &p, End::Src, up.ip, out_port) {
            return self.drop_frame();
        }
        self.stats.out += 1;
        let hop = if wire::same_subnet(p.dst, up.ip, up.prefix) {
            p.dst
        } else if let Some(gw) = up.gateway {
            gw
        } else {
            return self.drop_frame();
        };
        self.send_out(f, hop, &up, now_ms)
    }

    /// The index of `p`'s mapping, made if new; `None` (counted) if full.
    fn mapping_for(&mut self, p: &Ipv4, in_mac: Mac, now_ms: u64) -> Option<usize> {
        let remote_port = if p.proto == wire::PROTO_ICMP {
            0
        } else {
            p.dport
        };
        if let Some(i) = self.table.iter().position(|m| {
            m.proto == p.proto
                && m.in_ip == p.src
                && m.in_port == p.sport
                && m.remote_ip == p.dst
                && m.remote_port == remote_port
        }) {
            self.table[i].in_mac = in_mac;
            return Some(i);
        }
        self.expire(now_ms);
        let port = if self.table.len() < TABLE_MAX {
            self.free_port(p.proto)
        } else {
            None
        };
        let Some(out_port) = port else {
            self.stats.exhausted += 1;
            return None;
        };
        self.table.push(Mapping {
            proto: p.proto,
            in_mac,
            in_ip: p.src,
            in_port: p.sport,
            remote_ip: p.dst,
            remote_port,
            out_port,
            last_ms: now_ms,
            fin_in: false,
            fin_out: false,
            closed: false,
        });
        Some(self.table.len() - 1)
    }

    /// A port of the range no mapping of `proto` holds, searched from
    /// after the last one handed out (so a port is not reused at once).
    fn free_port(&mut self, proto: u8) -> Option<u16> {
        let (lo, hi) = (*self.ports.start(), *self.ports.end());
        let span = u32::from(hi - lo) + 1;
        for k in 0..span {
            let off = (u32::from(self.next - lo) + k) % span;
            let port = lo + off as u16;
            if !self
                .table
                .iter()
                .any(|m| m.proto == proto && m.out_port == port)
            {
                self.next = if port == hi { lo } else { port + 1 };
                return Some(port);
            }
        }
        None
    }

    /// Addresses `f` to `hop` on the uplink, or holds it and asks ARP.
    fn send_out(&mut self, mut f: Vec<u8>, hop: Ip, up: &Uplink, now_ms: u64) -> Vec<Out> {
        if let Some(&(_, mac, _)) = self.neighbours.iter().find(|n| n.0 == hop) {
            wire::set_macs(&mut f, mac, up.mac);
            return alloc::vec![Out::Outside(f)];
        }
        let asked = self.pending.iter().any(|p| p.0 == hop);
        if self.pending.len() >= PENDING_MAX {
            self.pending.pop_front();
            self.stats.dropped += 1;
        }
        self.pending.push_back((hop, f, now_ms));
        if asked {
            return Vec::new();
        }
        alloc::vec![Out::Outside(wire::build_arp(
            ARP_REQUEST,
            [0xff; 6],
            up.mac,
            up.ip,
            [0; 6],
            hop,
        ))]
    }

    /// Takes a frame the uplink bridge delivered to dom0's port: learns the
    /// neighbours' MACs from ARP (and releases the frames held for them),
    /// and translates replies of mapped flows back into `nat0`.
    pub fn outside(&mut self, frame: &[u8], now_ms: u64) -> Claim {
        let Some(up) = self.uplink else {
            return Claim::pass();
        };
        if let Some(a) = wire::parse_arp(frame) {
            // dom0's stack sees ARP too: it answers requests for itself.
            return Claim {
                pass: true,
                out: self.learn(&a, &up, now_ms),
            };
        }
        let Some(p) = wire::parse_ipv4(frame) else {
            return Claim::pass();
        };
        let icmp_reply = p.proto == wire::PROTO_ICMP && p.kind == wire::ICMP_ECHO_REPLY;
        if p.dst != up.ip
            || !self.ports.contains(&p.dport)
            || p.proto == wire::PROTO_ICMP && !icmp_reply
        {
            return Claim::pass();
        }
        let remote_port = if icmp_reply { 0 } else { p.sport };
        let Some(i) = self.table.iter().position(|m| {
            m.proto == p.proto
                && m.out_port == p.dport
                && m.remote_ip == p.src
                && m.remote_port == remote_port
                && !m.expired(now_ms)
        }) else {
            return Claim::taken(self.drop_frame());
        };
        self.table[i].note(&p, true, now_ms);
        let m = self.table[i];
        let mut f = frame.to_vec();
        if !wire::rewrite(&mut f, &p, End::Dst, m.in_ip, m.in_port) {
            return Claim::taken(self.drop_frame());
        }
        wire::set_macs(&mut f, m.in_mac, NAT_GATEWAY_MAC);
        self.stats.back += 1;
        Claim::taken(alloc::vec![Out::Inside(f)])
    }

    /// Remembers `a`'s sender if it is an uplink neighbour, and returns the
    /// frames held for it, addressed.
    fn learn(&mut self, a: &wire::Arp, up: &Uplink, now_ms: u64) -> Vec<Out> {
        if !wire::same_subnet(a.spa, up.ip, up.prefix) || is_group(&a.sha) || a.spa == up.ip {
            return Vec::new();
        }
        self.neighbours.retain(|n| n.0 != a.spa);
        if self.neighbours.len() >= NEIGHBOURS_MAX {
            self.neighbours.remove(0);
        }
        self.neighbours.push((a.spa, a.sha, now_ms));
        let (ready, held): (VecDeque<_>, VecDeque<_>) = core::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.0 == a.spa);
        self.pending = held;
        ready
            .into_iter()
            .map(|(_, mut f, _)| {
                wire::set_macs(&mut f, a.sha, up.mac);
                Out::Outside(f)
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "nat_tests.rs"]
mod tests;
