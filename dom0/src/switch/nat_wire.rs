//! The bytes NAT touches: Ethernet, ARP, IPv4, TCP, UDP and ICMP echo
//! headers read with bounds checks (a short or odd frame is `None`, never a
//! panic), Internet checksums (RFC 1071) and their incremental update when
//! one field changes (RFC 1624). Plain logic, host-tested.

use alloc::vec;
use alloc::vec::Vec;

use super::bridge::{ETH_HEADER, Mac};

/// An IPv4 address as its four bytes.
pub type Ip = [u8; 4];

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// ICMP type of an echo reply.
pub const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP type of an echo request.
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;
/// TCP flag FIN.
pub const TCP_FIN: u8 = 0x01;
/// TCP flag RST.
pub const TCP_RST: u8 = 0x04;
/// The smallest Ethernet frame without its FCS: shorter ones are padded.
const ETH_MIN: usize = 60;
/// Bytes of an ARP packet for IPv4 over Ethernet.
const ARP_LEN: usize = 28;
/// Offsets in an IPv4 header.
const IP_TTL: usize = 8;
const IP_CSUM: usize = 10;
const IP_SRC: usize = 12;
const IP_DST: usize = 16;

/// The big-endian `u16` at `at`, if the slice reaches that far.
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Writes `v` big-endian at `at` (the caller checked the length).
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn ip_at(b: &[u8], at: usize) -> Ip {
    [b[at], b[at + 1], b[at + 2], b[at + 3]]
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The Internet checksum of `data` (RFC 1071): the complement of the
/// one's-complement sum of its 16-bit words (an odd last byte padded).
pub fn checksum(data: &[u8]) -> u16 {
    let s = data.chunks(2).fold(0u32, |s, w| {
        s + u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))
    });
    !fold(s)
}

/// The checksum `hc` after one 16-bit word it covers changed from `old` to
/// `new`: RFC 1624, equation 3, `HC' = ~(~HC + ~m + m')`.
pub fn adjust(hc: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!hc) + u32::from(!old) + u32::from(new))
}

/// [`adjust`] for a changed IPv4 address (two words).
pub fn adjust_ip(hc: u16, old: Ip, new: Ip) -> u16 {
    let w = |ip: Ip, i: usize| u16::from_be_bytes([ip[i], ip[i + 1]]);
    adjust(adjust(hc, w(old, 0), w(new, 0)), w(old, 2), w(new, 2))
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// [`ARP_REQUEST`] or [`ARP_REPLY`].
    pub op: u16,
    /// Sender hardware and protocol address.
    pub sha: Mac,
    /// Sender IPv4 address.
    pub spa: Ip,
    /// Target IPv4 address.
    pub tpa: Ip,
}

/// The Ethernet frame's type, if it has a whole header.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    be16(frame, 12)
}

/// The frame's destination MAC.
pub fn dst_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(0..6)?.try_into().ok()
}

/// The ARP packet in `frame`, if it is a well-formed IPv4-over-Ethernet one.
pub fn parse_arp(frame: &[u8]) -> Option<Arp> {
    if ethertype(frame)? != ETHERTYPE_ARP {
        return None;
    }
    let a = frame.get(ETH_HEADER..ETH_HEADER + ARP_LEN)?;
    // Hardware type 1 (Ethernet), protocol IPv4, address lengths 6 and 4.
    if be16(a, 0)? != 1 || be16(a, 2)? != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4 {
        return None;
    }
    Some(Arp {
        op: be16(a, 6)?,
        sha: a[8..14].try_into().ok()?,
        spa: ip_at(a, 14),
        tpa: ip_at(a, 24),
    })
}

/// An ARP frame: `op` from `sha`/`spa` about `tha`/`tpa`, sent to `dst`.
pub fn build_arp(op: u16, dst: Mac, sha: Mac, spa: Ip, tha: Mac, tpa: Ip) -> Vec<u8> {
    let mut f = vec![0u8; ETH_MIN];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&sha);
    put16(&mut f, 12, ETHERTYPE_ARP);
    let a = &mut f[ETH_HEADER..ETH_HEADER + ARP_LEN];
    put16(a, 0, 1);
    put16(a, 2, ETHERTYPE_IPV4);
    a[4] = 6;
    a[5] = 4;
    put16(a, 6, op);
    a[8..14].copy_from_slice(&sha);
    a[14..18].copy_from_slice(&spa);
    a[18..24].copy_from_slice(&tha);
    a[24..28].copy_from_slice(&tpa);
    f
}

/// Where the interesting fields of an IPv4 packet are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    /// The protocol: [`PROTO_TCP`], [`PROTO_UDP`] or [`PROTO_ICMP`].
    pub proto: u8,
    /// Source address.
    pub src: Ip,
    /// Destination address.
    pub dst: Ip,
    /// Offset of the transport header in the frame.
    pub l4: usize,
    /// TCP/UDP: source port; ICMP echo: the identifier.
    pub sport: u16,
    /// TCP/UDP: destination port; ICMP echo: the identifier.
    pub dport: u16,
    /// ICMP: the type; TCP: the flags; UDP: 0.
    pub kind: u8,
}

impl Ipv4 {
    /// Offset of the transport checksum in the frame.
    fn csum_at(&self) -> usize {
        self.l4
            + match self.proto {
                PROTO_TCP => 16,
                PROTO_UDP => 6,
                _ => 2,
            }
    }
}

/// The IPv4 packet in `frame` if NAT can handle it: a whole header, not a
/// fragment, and a whole TCP or UDP header or an ICMP echo.
pub fn parse_ipv4(frame: &[u8]) -> Option<Ipv4> {
    if ethertype(frame)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETH_HEADER..)?;
    let (vihl, total) = (*ip.first()?, usize::from(be16(ip, 2)?));
    let ihl = usize::from(vihl & 0xf) * 4;
    // Fragments (more-fragments bit or an offset) are not translated.
    if vihl >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() || be16(ip, 6)? & 0x3fff != 0 {
        return None;
    }
    let proto = ip[9];
    let l4 = &ip[ihl..total];
    let need = match proto {
        PROTO_TCP => 20,
        PROTO_UDP | PROTO_ICMP => 8,
        _ => return None,
    };
    if l4.len() < need {
        return None;
    }
    let (sport, dport, kind) = match proto {
        PROTO_TCP => (be16(l4, 0)?, be16(l4, 2)?, l4[13]),
        PROTO_UDP => (be16(l4, 0)?, be16(l4, 2)?, 0),
        _ => {
            if l4[0] != ICMP_ECHO_REQUEST && l4[0] != ICMP_ECHO_REPLY || l4[1] != 0 {
                return None;
            }
            let id = be16(l4, 4)?;
            (id, id, l4[0])
        }
    };
    Some(Ipv4 {
        proto,
        src: ip_at(ip, IP_SRC),
        dst: ip_at(ip, IP_DST),
        l4: ETH_HEADER + ihl,
        sport,
        dport,
        kind,
    })
}

/// Which end of a packet [`rewrite`] changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The source address and port (outgoing translation).
    Src,
    /// The destination address and port (replies).
    Dst,
}

/// Rewrites `end`'s address to `ip` and its port (ICMP: the identifier) to
/// `port` in the packet `p` describes, decrements the TTL, and updates the
/// IP and transport checksums incrementally. Returns `false` (and changes
/// nothing) if the TTL is spent.
pub fn rewrite(frame: &mut [u8], p: &Ipv4, end: End, ip: Ip, port: u16) -> bool {
    let l3 = ETH_HEADER;
    let ttl = frame[l3 + IP_TTL];
    if ttl <= 1 {
        return false;
    }
    let (ip_off, port_off, old_ip, old_port) = match (end, p.proto) {
        (End::Src, PROTO_ICMP) | (End::Dst, PROTO_ICMP) => (
            if end == End::Src { IP_SRC } else { IP_DST },
            p.l4 + 4,
            if end == End::Src { p.src } else { p.dst },
            p.sport,
        ),
        (End::Src, _) => (IP_SRC, p.l4, p.src, p.sport),
        (End::Dst, _) => (IP_DST, p.l4 + 2, p.dst, p.dport),
    };
    // The IP header: the TTL (with the protocol, one word) and the address.
    let mut hc = be16(frame, l3 + IP_CSUM).unwrap_or(0);
    let word = u16::from_be_bytes([ttl, p.proto]);
    hc = adjust(hc, word, word - 0x100);
    hc = adjust_ip(hc, old_ip, ip);
    frame[l3 + IP_TTL] = ttl - 1;
    put16(frame, l3 + IP_CSUM, hc);
    frame[l3 + ip_off..l3 + ip_off + 4].copy_from_slice(&ip);
    // The transport checksum covers the port and (TCP, UDP) the addresses
    // through the pseudo-header. UDP's 0 means "none" and stays; a computed
    // 0 is sent as 0xffff (RFC 768).
    let at = p.csum_at();
    let mut c = be16(frame, at).unwrap_or(0);
    let none = p.proto == PROTO_UDP && c == 0;
    if !none {
        if p.proto != PROTO_ICMP {
            c = adjust_ip(c, old_ip, ip);
        }
        c = adjust(c, old_port, port);
        if p.proto == PROTO_UDP && c == 0 {
            c = 0xffff;
        }
        put16(frame, at, c);
    }
    put16(frame, port_off, port);
    true
}

/// Sets the frame's Ethernet addresses.
pub fn set_macs(frame: &mut [u8], dst: Mac, src: Mac) {
    frame[0..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&src);
}

/// Turns an ICMP echo request to this host into its reply in place: swaps
/// the addresses, sets the type, fixes the ICMP checksum (the IP header's
/// sum is unchanged by a swap).
pub fn echo_reply(frame: &mut [u8], p: &Ipv4) {
    let l3 = ETH_HEADER;
    let (dst, src): (Mac, Mac) = (
        frame[6..12].try_into().unwrap_or([0; 6]),
        frame[0..6].try_into().unwrap_or([0; 6]),
    );
    set_macs(frame, dst, src);
    frame[l3 + IP_SRC..l3 + IP_SRC + 4].copy_from_slice(&p.dst);
    frame[l3 + IP_DST..l3 + IP_DST + 4].copy_from_slice(&p.src);
    let c = be16(frame, p.l4 + 2).unwrap_or(0);
    let old = u16::from_be_bytes([ICMP_ECHO_REQUEST, 0]);
    let new = u16::from_be_bytes([ICMP_ECHO_REPLY, 0]);
    frame[p.l4] = ICMP_ECHO_REPLY;
    put16(frame, p.l4 + 2, adjust(c, old, new));
}

/// Whether `a` and `b` share the first `prefix` bits.
pub fn same_subnet(a: Ip, b: Ip, prefix: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    u32::from_be_bytes(a) & mask == u32::from_be_bytes(b) & mask
}
