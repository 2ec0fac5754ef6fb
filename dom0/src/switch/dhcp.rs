//! A tiny DHCP server (RFC 2131) for `nat0`'s private subnet: it answers
//! DISCOVER with an OFFER and REQUEST with an ACK (or a NAK for an address
//! it did not give), one lease per client MAC from [`POOL`], with the
//! gateway as router. Replies go to the client's MAC and the IPv4
//! broadcast address, so a client without an address takes them. Plain
//! logic, host-tested; [`super::nat::Nat`] hands it the frames.

use alloc::vec;
use alloc::vec::Vec;

use super::bridge::{ETH_HEADER, Mac, is_group};
use super::nat::{NAT_GATEWAY, NAT_GATEWAY_MAC, NAT_PREFIX};
use super::nat_wire::{self as wire, ETHERTYPE_IPV4, Ip, PROTO_UDP};

/// The last octets of the addresses handed out: 10.0.3.100 to 10.0.3.199.
pub const POOL: core::ops::RangeInclusive<u8> = 100..=199;
/// How long a lease lasts, in seconds (renewed by every REQUEST).
pub const LEASE_SECS: u32 = 3600;
const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
/// The BOOTP message's fixed part, up to the magic cookie.
const BOOTP_FIXED: usize = 236;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// Message types (option 53).
const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const ACK: u8 = 5;
const NAK: u8 = 6;
/// Option codes.
const OPT_PAD: u8 = 0;
const OPT_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_REQUESTED: u8 = 50;
const OPT_LEASE: u8 = 51;
const OPT_TYPE: u8 = 53;
const OPT_SERVER: u8 = 54;
const OPT_END: u8 = 255;

/// A client's request, as far as the server cares.
struct Request {
    kind: u8,
    xid: [u8; 4],
    chaddr: Mac,
    /// Option 50, or `ciaddr` when renewing.
    wants: Option<Ip>,
    /// Option 54: the server the client chose, if it says.
    server: Option<Ip>,
}

fn parse(frame: &[u8]) -> Option<Request> {
    let p = wire::parse_ipv4(frame)?;
    if p.proto != PROTO_UDP || p.sport != CLIENT_PORT || p.dport != SERVER_PORT {
        return None;
    }
    let b = frame.get(p.l4 + 8..)?;
    // op BOOTREQUEST, Ethernet hardware addresses.
    if b.len() < BOOTP_FIXED + 4 || b[0] != 1 || b[1] != 1 || b[2] != 6 {
        return None;
    }
    if b[BOOTP_FIXED..BOOTP_FIXED + 4] != MAGIC {
        return None;
    }
    let ciaddr: Ip = b[12..16].try_into().ok()?;
    let mut r = Request {
        kind: 0,
        xid: b[4..8].try_into().ok()?,
        chaddr: b[28..34].try_into().ok()?,
        wants: (ciaddr != [0; 4]).then_some(ciaddr),
        server: None,
    };
    let mut opts = &b[BOOTP_FIXED + 4..];
    while let Some((&code, rest)) = opts.split_first() {
        match code {
            OPT_END => break,
            OPT_PAD => opts = rest,
            _ => {
                let (&len, rest) = rest.split_first()?;
                let val = rest.get(..usize::from(len))?;
                match (code, val) {
                    (OPT_TYPE, [t]) => r.kind = *t,
                    (OPT_REQUESTED, [a, b, c, d]) => r.wants = Some([*a, *b, *c, *d]),
                    (OPT_SERVER, [a, b, c, d]) => r.server = Some([*a, *b, *c, *d]),
                    _ => {}
                }
                opts = &rest[usize::from(len)..];
            }
        }
    }
    Some(r)
}

/// The server: who holds which address until when.
#[derive(Debug, Default)]
pub struct DhcpServer {
    leases: Vec<(Mac, Ip, u64)>,
}

impl DhcpServer {
    /// No leases yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address leased to `mac`, if any.
    pub fn lease_of(&self, mac: &Mac) -> Option<Ip> {
        self.leases.iter().find(|l| &l.0 == mac).map(|l| l.1)
    }

    /// `mac`'s address: its lease, else a free one (or an expired lease's).
    fn address_for(&mut self, mac: Mac, now_ms: u64) -> Option<Ip> {
        if let Some(ip) = self.lease_of(&mac) {
            return Some(ip);
        }
        self.leases.retain(|l| l.2 > now_ms);
        let ip = POOL
            .map(|o| [NAT_GATEWAY[0], NAT_GATEWAY[1], NAT_GATEWAY[2], o])
            .find(|ip| !self.leases.iter().any(|l| &l.1 == ip))?;
        // Held for a minute until the client requests it.
        self.leases.push((mac, ip, now_ms + 60_000));
        Some(ip)
    }

    /// Answers `frame` if it is a DHCP DISCOVER or REQUEST: the reply frame
    /// to send into `nat0`. Anything else (or a full pool) is `None`.
    pub fn handle(&mut self, frame: &[u8], now_ms: u64) -> Option<Vec<u8>> {
        let r = parse(frame)?;
        if is_group(&r.chaddr) || r.chaddr == [0; 6] {
            return None;
        }
        match r.kind {
            DISCOVER => {
                let ip = self.address_for(r.chaddr, now_ms)?;
                Some(reply(&r, OFFER, ip))
            }
            REQUEST => {
                if r.server.is_some_and(|s| s != NAT_GATEWAY) {
                    // The client chose another server's offer.
                    return None;
                }
                let ip = self.address_for(r.chaddr, now_ms)?;
                if r.wants != Some(ip) {
                    return Some(reply(&r, NAK, [0; 4]));
                }
                if let Some(l) = self.leases.iter_mut().find(|l| l.0 == r.chaddr) {
                    l.2 = now_ms + u64::from(LEASE_SECS) * 1000;
                }
                Some(reply(&r, ACK, ip))
            }
            _ => None,
        }
    }
}

/// A reply of type `kind` giving `yiaddr` to `r`'s client.
fn reply(r: &Request, kind: u8, yiaddr: Ip) -> Vec<u8> {
    let mask = u32::MAX << (32 - u32::from(NAT_PREFIX));
    let mut opts = vec![OPT_TYPE, 1, kind, OPT_SERVER, 4];
    opts.extend_from_slice(&NAT_GATEWAY);
    if kind != NAK {
        opts.extend_from_slice(&[OPT_LEASE, 4]);
        opts.extend_from_slice(&LEASE_SECS.to_be_bytes());
        opts.extend_from_slice(&[OPT_MASK, 4]);
        opts.extend_from_slice(&mask.to_be_bytes());
        opts.extend_from_slice(&[OPT_ROUTER, 4]);
        opts.extend_from_slice(&NAT_GATEWAY);
    }
    opts.push(OPT_END);
    let mut bootp = vec![0u8; BOOTP_FIXED];
    bootp[0] = 2; // BOOTREPLY
    bootp[1] = 1;
    bootp[2] = 6;
    bootp[4..8].copy_from_slice(&r.xid);
    bootp[16..20].copy_from_slice(&yiaddr);
    bootp[20..24].copy_from_slice(&NAT_GATEWAY);
    bootp[28..34].copy_from_slice(&r.chaddr);
    bootp.extend_from_slice(&MAGIC);
    bootp.extend_from_slice(&opts);
    udp_frame(r.chaddr, &bootp)
}

/// `payload` in a UDP datagram from the gateway's port 67 to the broadcast
/// address's port 68, in a frame to `dst`, checksums computed.
fn udp_frame(dst: Mac, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut f = vec![0u8; ETH_HEADER + total];
    wire::set_macs(&mut f, dst, NAT_GATEWAY_MAC);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let bcast: Ip = [255; 4];
    {
        let ip = &mut f[ETH_HEADER..ETH_HEADER + 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = PROTO_UDP;
        ip[12..16].copy_from_slice(&NAT_GATEWAY);
        ip[16..20].copy_from_slice(&bcast);
        let c = wire::checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let l4 = ETH_HEADER + 20;
    f[l4..l4 + 2].copy_from_slice(&SERVER_PORT.to_be_bytes());
    f[l4 + 2..l4 + 4].copy_from_slice(&CLIENT_PORT.to_be_bytes());
    f[l4 + 4..l4 + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    f[l4 + 8..].copy_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12 + udp_len);
    pseudo.extend_from_slice(&NAT_GATEWAY);
    pseudo.extend_from_slice(&bcast);
    pseudo.extend_from_slice(&[0, PROTO_UDP]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    pseudo.extend_from_slice(&f[l4..]);
    let c = match wire::checksum(&pseudo) {
        0 => 0xffff,
        c => c,
    };
    f[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Mac = [0x00, 0x16, 0x3e, 0, 4, 0];

    /// A client's DHCP message of `kind`, with `opts` after the type.
    fn client_msg(mac: Mac, kind: u8, opts: &[u8]) -> Vec<u8> {
        let mut bootp = vec![0u8; BOOTP_FIXED];
        bootp[0] = 1;
        bootp[1] = 1;
        bootp[2] = 6;
        bootp[4..8].copy_from_slice(&[1, 2, 3, 4]);
        bootp[28..34].copy_from_slice(&mac);
        bootp.extend_from_slice(&MAGIC);
        bootp.extend_from_slice(&[OPT_PAD, OPT_TYPE, 1, kind]);
        bootp.extend_from_slice(opts);
        bootp.push(OPT_END);
        // The same framing as a reply, with the ports and source swapped.
        let mut f = udp_frame([0xff; 6], &bootp);
        f[6..12].copy_from_slice(&mac);
        f[34..36].copy_from_slice(&CLIENT_PORT.to_be_bytes());
        f[36..38].copy_from_slice(&SERVER_PORT.to_be_bytes());
        f
    }

    fn kind_and_ip(f: &[u8]) -> (u8, Ip) {
        let r = wire::parse_ipv4(f).unwrap();
        assert_eq!((r.sport, r.dport), (SERVER_PORT, CLIENT_PORT));
        assert_eq!(wire::checksum(&f[14..34]), 0);
        let b = &f[42..];
        let yiaddr: Ip = b[16..20].try_into().unwrap();
        assert_eq!(&b[BOOTP_FIXED..BOOTP_FIXED + 4], &MAGIC);
        assert_eq!(&b[BOOTP_FIXED + 4..BOOTP_FIXED + 6], &[OPT_TYPE, 1]);
        (b[BOOTP_FIXED + 6], yiaddr)
    }

    #[test]
    fn discover_offer_request_ack() {
        let mut d = DhcpServer::new();
        let offer = d.handle(&client_msg(CLIENT, DISCOVER, &[]), 0).unwrap();
        assert_eq!(&offer[0..6], &CLIENT);
        assert_eq!(kind_and_ip(&offer), (OFFER, [10, 0, 3, 100]));
        let req = [OPT_REQUESTED, 4, 10, 0, 3, 100, OPT_SERVER, 4, 10, 0, 3, 1];
        let ack = d.handle(&client_msg(CLIENT, REQUEST, &req), 1).unwrap();
        assert_eq!(kind_and_ip(&ack), (ACK, [10, 0, 3, 100]));
        // A second client gets the next address; the first keeps its own.
        let other = [0x00, 0x16, 0x3e, 0, 5, 0];
        let offer = d.handle(&client_msg(other, DISCOVER, &[]), 2).unwrap();
        assert_eq!(kind_and_ip(&offer).1, [10, 0, 3, 101]);
        let again = d.handle(&client_msg(CLIENT, DISCOVER, &[]), 3).unwrap();
        assert_eq!(kind_and_ip(&again).1, [10, 0, 3, 100]);
    }

    #[test]
    fn a_wrong_request_is_refused_and_another_servers_ignored() {
        let mut d = DhcpServer::new();
        let req = [OPT_REQUESTED, 4, 10, 0, 3, 150];
        let nak = d.handle(&client_msg(CLIENT, REQUEST, &req), 0).unwrap();
        assert_eq!(kind_and_ip(&nak), (NAK, [0; 4]));
        let elsewhere = [OPT_REQUESTED, 4, 10, 0, 3, 100, OPT_SERVER, 4, 10, 0, 3, 9];
        assert!(
            d.handle(&client_msg(CLIENT, REQUEST, &elsewhere), 0)
                .is_none()
        );
    }

    #[test]
    fn the_pool_runs_out_and_unconfirmed_offers_expire() {
        let mut d = DhcpServer::new();
        for i in 0..POOL.len() as u8 {
            assert!(
                d.handle(&client_msg([2, 0, 0, 0, 0, i], DISCOVER, &[]), 0)
                    .is_some()
            );
        }
        assert!(d.handle(&client_msg(CLIENT, DISCOVER, &[]), 0).is_none());
        // Offers nobody requested are held a minute.
        let offer = d
            .handle(&client_msg(CLIENT, DISCOVER, &[]), 60_001)
            .unwrap();
        assert_eq!(kind_and_ip(&offer).1, [10, 0, 3, 100]);
    }

    #[test]
    fn garbage_is_ignored() {
        let mut d = DhcpServer::new();
        let good = client_msg(CLIENT, DISCOVER, &[OPT_REQUESTED, 4, 10, 0, 3, 100]);
        for len in 0..good.len() {
            let _ = d.handle(&good[..len], 0);
        }
        for at in 0..good.len() {
            for v in [0u8, 1, 4, 0x35, 0xff] {
                let mut g = good.clone();
                g[at] = v;
                let _ = d.handle(&g, 0);
            }
        }
        // Options running past the end.
        let bad = client_msg(CLIENT, DISCOVER, &[OPT_REQUESTED, 200, 1]);
        let _ = d.handle(&bad, 0);
    }
}
