use super::*;
use crate::switch::nat_wire::{
    ETHERTYPE_IPV4, PROTO_ICMP, PROTO_TCP, PROTO_UDP, TCP_FIN, TCP_RST, checksum,
};
use alloc::vec;

const DOMU_MAC: Mac = [0x00, 0x16, 0x3e, 0, 1, 0];
const DOMU_IP: Ip = [10, 0, 3, 20];
const DOM0_MAC: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const DOM0_IP: Ip = [10, 0, 2, 15];
const GW_IP: Ip = [10, 0, 2, 2];
const GW_MAC: Mac = [0x52, 0x55, 10, 0, 2, 2];
const REMOTE: Ip = [93, 184, 216, 34];

fn uplink() -> Uplink {
    Uplink {
        ip: DOM0_IP,
        prefix: 24,
        gateway: Some(GW_IP),
        mac: DOM0_MAC,
    }
}

/// A frame with correct checksums, computed in full.
fn packet(
    macs: (Mac, Mac),
    src: Ip,
    dst: Ip,
    proto: u8,
    ports: (u16, u16),
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let l4_len = match proto {
        PROTO_TCP => 20,
        _ => 8,
    } + payload.len();
    let mut f = vec![0u8; 14 + 20 + l4_len];
    f[0..6].copy_from_slice(&macs.0);
    f[6..12].copy_from_slice(&macs.1);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let l4 = &mut f[34..];
    match proto {
        PROTO_TCP => {
            l4[0..2].copy_from_slice(&ports.0.to_be_bytes());
            l4[2..4].copy_from_slice(&ports.1.to_be_bytes());
            l4[12] = 5 << 4;
            l4[13] = flags;
            l4[20..].copy_from_slice(payload);
        }
        PROTO_UDP => {
            l4[0..2].copy_from_slice(&ports.0.to_be_bytes());
            l4[2..4].copy_from_slice(&ports.1.to_be_bytes());
            l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            l4[8..].copy_from_slice(payload);
        }
        _ => {
            l4[0] = flags; // the ICMP type
            l4[4..6].copy_from_slice(&ports.0.to_be_bytes());
            l4[8..].copy_from_slice(payload);
        }
    }
    let c = l4_checksum(&f);
    let at = csum_offset(proto);
    f[34 + at..34 + at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

fn csum_offset(proto: u8) -> usize {
    match proto {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        _ => 2,
    }
}

/// The transport checksum of `f` computed in full (with the pseudo-header
/// for TCP and UDP): 0 for a correct one when the field is included.
fn l4_checksum(f: &[u8]) -> u16 {
    let proto = f[23];
    let l4 = &f[34..];
    let mut data = Vec::new();
    if proto != PROTO_ICMP {
        data.extend_from_slice(&f[26..34]);
        data.extend_from_slice(&[0, proto]);
        data.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    }
    data.extend_from_slice(l4);
    checksum(&data)
}

/// Both checksums of `f` verify.
fn verifies(f: &[u8]) -> bool {
    checksum(&f[14..34]) == 0 && l4_checksum(f) == 0
}

fn to_nat(f: Vec<u8>) -> Vec<u8> {
    let mut f = f;
    f[0..6].copy_from_slice(&NAT_GATEWAY_MAC);
    f
}

fn out_frames(outs: Vec<Out>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for o in outs {
        match o {
            Out::Inside(f) => inside.push(f),
            Out::Outside(f) => outside.push(f),
        }
    }
    (inside, outside)
}

/// A translator that knows the gateway's MAC.
fn ready_nat() -> Nat {
    let mut n = Nat::default();
    n.set_uplink(Some(uplink()));
    let reply = wire::build_arp(ARP_REPLY, DOM0_MAC, GW_MAC, GW_IP, DOM0_MAC, DOM0_IP);
    assert!(n.outside(&reply, 0).pass);
    n
}

fn tcp_out(sport: u16, flags: u8) -> Vec<u8> {
    to_nat(packet(
        (NAT_GATEWAY_MAC, DOMU_MAC),
        DOMU_IP,
        REMOTE,
        PROTO_TCP,
        (sport, 80),
        flags,
        b"GET / HTTP/1.0\r\n\r\n",
    ))
}

#[test]
fn checksum_updates_match_full_recomputation() {
    // RFC 1624's example: the incremental update gives 0x0000, not the
    // -0 (0xffff) of RFC 1141's formula.
    assert_eq!(adjust_ok(0xdd2f, 0x5555, 0x3285), 0x0000);
    for (proto, odd) in [(PROTO_TCP, 0), (PROTO_UDP, 1), (PROTO_ICMP, 3)] {
        let payload: Vec<u8> = (0..(37 + odd)).map(|i| (i * 31) as u8).collect();
        let kind = if proto == PROTO_ICMP { 8 } else { 0x18 };
        let f = packet(
            (NAT_GATEWAY_MAC, DOMU_MAC),
            DOMU_IP,
            REMOTE,
            proto,
            (0xbeef, 443),
            kind,
            &payload,
        );
        assert!(verifies(&f));
        let p = wire::parse_ipv4(&f).unwrap();
        let mut g = f.clone();
        assert!(wire::rewrite(&mut g, &p, End::Src, DOM0_IP, 40123));
        assert!(verifies(&g), "proto {proto}");
        assert_eq!(g[22], 63, "TTL decremented");
        let q = wire::parse_ipv4(&g).unwrap();
        assert_eq!((q.src, q.sport), (DOM0_IP, 40123));
        // And back: the original bytes but for the TTL.
        assert!(wire::rewrite(&mut g, &q, End::Src, DOMU_IP, 0xbeef));
        assert!(verifies(&g));
        assert_eq!(g[34..], f[34..]);
    }
}

fn adjust_ok(hc: u16, old: u16, new: u16) -> u16 {
    wire::adjust(hc, old, new)
}

#[test]
fn a_udp_packet_without_checksum_keeps_none() {
    let mut f = packet(
        (NAT_GATEWAY_MAC, DOMU_MAC),
        DOMU_IP,
        REMOTE,
        PROTO_UDP,
        (5353, 53),
        0,
        b"q",
    );
    f[40..42].copy_from_slice(&[0, 0]);
    let p = wire::parse_ipv4(&f).unwrap();
    assert!(wire::rewrite(&mut f, &p, End::Src, DOM0_IP, 40000));
    assert_eq!(&f[40..42], &[0, 0]);
    assert_eq!(checksum(&f[14..34]), 0);
}

#[test]
fn gateway_answers_arp_and_ping() {
    let mut n = Nat::default();
    let req = wire::build_arp(
        ARP_REQUEST,
        [0xff; 6],
        DOMU_MAC,
        DOMU_IP,
        [0; 6],
        NAT_GATEWAY,
    );
    let (inside, outside) = out_frames(n.inside(&req, 0));
    assert!(outside.is_empty());
    let a = wire::parse_arp(&inside[0]).unwrap();
    assert_eq!(
        (a.op, a.sha, a.spa),
        (ARP_REPLY, NAT_GATEWAY_MAC, NAT_GATEWAY)
    );
    assert_eq!(&inside[0][0..6], &DOMU_MAC);
    // ARP for someone else on the subnet: not answered.
    let other = wire::build_arp(
        ARP_REQUEST,
        [0xff; 6],
        DOMU_MAC,
        DOMU_IP,
        [0; 6],
        [10, 0, 3, 9],
    );
    assert!(n.inside(&other, 0).is_empty());
    let ping = packet(
        (NAT_GATEWAY_MAC, DOMU_MAC),
        DOMU_IP,
        NAT_GATEWAY,
        PROTO_ICMP,
        (7, 7),
        8,
        b"ping",
    );
    let (inside, _) = out_frames(n.inside(&ping, 0));
    let p = wire::parse_ipv4(&inside[0]).unwrap();
    assert_eq!((p.src, p.dst, p.kind), (NAT_GATEWAY, DOMU_IP, 0));
    assert!(verifies(&inside[0]));
}

#[test]
fn tcp_goes_out_after_arp_and_replies_come_back() {
    let mut n = Nat::default();
    n.set_uplink(Some(uplink()));
    // The gateway's MAC is unknown: the segment is held, ARP asked.
    let (_, outside) = out_frames(n.inside(&tcp_out(50000, 0x02), 1));
    assert_eq!(outside.len(), 1);
    let a = wire::parse_arp(&outside[0]).unwrap();
    assert_eq!(
        (a.op, a.sha, a.spa, a.tpa),
        (ARP_REQUEST, DOM0_MAC, DOM0_IP, GW_IP)
    );
    // The reply releases it, translated and addressed to the gateway.
    let reply = wire::build_arp(ARP_REPLY, DOM0_MAC, GW_MAC, GW_IP, DOM0_MAC, DOM0_IP);
    let c = n.outside(&reply, 2);
    assert!(c.pass);
    let (_, outside) = out_frames(c.out);
    assert_eq!(outside.len(), 1);
    let f = &outside[0];
    assert_eq!((&f[0..6], &f[6..12]), (&GW_MAC[..], &DOM0_MAC[..]));
    let p = wire::parse_ipv4(f).unwrap();
    assert_eq!((p.src, p.dst, p.dport), (DOM0_IP, REMOTE, 80));
    assert!(NAT_PORTS.contains(&p.sport));
    assert!(verifies(f));
    // The answer, to dom0's address and the NAT port, goes to the domain.
    let back = packet(
        (DOM0_MAC, GW_MAC),
        REMOTE,
        DOM0_IP,
        PROTO_TCP,
        (80, p.sport),
        0x12,
        b"",
    );
    let c = n.outside(&back, 3);
    assert!(!c.pass);
    let (inside, _) = out_frames(c.out);
    let f = &inside[0];
    assert_eq!((&f[0..6], &f[6..12]), (&DOMU_MAC[..], &NAT_GATEWAY_MAC[..]));
    let q = wire::parse_ipv4(f).unwrap();
    assert_eq!(
        (q.src, q.sport, q.dst, q.dport),
        (REMOTE, 80, DOMU_IP, 50000)
    );
    assert!(verifies(f));
    // The same flow keeps its port, goes straight out now.
    let (_, outside) = out_frames(n.inside(&tcp_out(50000, 0x10), 4));
    assert_eq!(wire::parse_ipv4(&outside[0]).unwrap().sport, p.sport);
    assert_eq!(n.len(), 1);
    assert_eq!((n.stats.out, n.stats.back), (2, 1));
    // A reply from another remote port for the same NAT port is dropped.
    let stray = packet(
        (DOM0_MAC, GW_MAC),
        REMOTE,
        DOM0_IP,
        PROTO_TCP,
        (81, p.sport),
        0x10,
        b"",
    );
    assert_eq!(n.outside(&stray, 5), Claim::taken(Vec::new()));
    // Not a NAT port: dom0's own.
    let own = packet(
        (DOM0_MAC, GW_MAC),
        REMOTE,
        DOM0_IP,
        PROTO_TCP,
        (80, 7),
        0x02,
        b"",
    );
    assert!(n.outside(&own, 5).pass);
}

#[test]
fn udp_and_icmp_are_translated_too() {
    let mut n = ready_nat();
    let udp = to_nat(packet(
        (NAT_GATEWAY_MAC, DOMU_MAC),
        DOMU_IP,
        GW_IP,
        PROTO_UDP,
        (5353, 53),
        0,
        b"query",
    ));
    let (_, outside) = out_frames(n.inside(&udp, 1));
    let p = wire::parse_ipv4(&outside[0]).unwrap();
    assert!(verifies(&outside[0]));
    let answer = packet(
        (DOM0_MAC, GW_MAC),
        GW_IP,
        DOM0_IP,
        PROTO_UDP,
        (53, p.sport),
        0,
        b"answer",
    );
    let (inside, _) = out_frames(n.outside(&answer, 2).out);
    assert_eq!(wire::parse_ipv4(&inside[0]).unwrap().dport, 5353);
    assert!(verifies(&inside[0]));

    let ping = to_nat(packet(
        (NAT_GATEWAY_MAC, DOMU_MAC),
        DOMU_IP,
        REMOTE,
        PROTO_ICMP,
        (0x1234, 0),
        8,
        b"abc",
    ));
    let (_, outside) = out_frames(n.inside(&ping, 3));
    let p = wire::parse_ipv4(&outside[0]).unwrap();
    assert!(NAT_PORTS.contains(&p.sport));
    assert!(verifies(&outside[0]));
    let pong = packet(
        (DOM0_MAC, GW_MAC),
        REMOTE,
        DOM0_IP,
        PROTO_ICMP,
        (p.sport, 0),
        0,
        b"abc",
    );
    let (inside, _) = out_frames(n.outside(&pong, 4).out);
    let q = wire::parse_ipv4(&inside[0]).unwrap();
    assert_eq!((q.dst, q.sport, q.kind), (DOMU_IP, 0x1234, 0));
    assert!(verifies(&inside[0]));
}

#[test]
fn ports_run_out_and_come_back_when_mappings_expire() {
    let mut n = Nat::new(45000..=45003);
    n.set_uplink(Some(uplink()));
    let reply = wire::build_arp(ARP_REPLY, DOM0_MAC, GW_MAC, GW_IP, DOM0_MAC, DOM0_IP);
    n.outside(&reply, 0);
    let udp = |sport: u16| {
        to_nat(packet(
            (NAT_GATEWAY_MAC, DOMU_MAC),
            DOMU_IP,
            REMOTE,
            PROTO_UDP,
            (sport, 9),
            0,
            b"x",
        ))
    };
    let mut ports = Vec::new();
    for s in 0..4 {
        let (_, out) = out_frames(n.inside(&udp(1000 + s), 10));
        ports.push(wire::parse_ipv4(&out[0]).unwrap().sport);
    }
    ports.sort();
    assert_eq!(ports, [45000, 45001, 45002, 45003]);
    // Full: a fifth flow is refused, counted.
    assert!(n.inside(&udp(2000), 20).is_empty());
    assert_eq!(n.stats.exhausted, 1);
    // TCP has its own ports.
    assert_eq!(out_frames(n.inside(&tcp_out(3000, 0x02), 20)).1.len(), 1);
    // After UDP's timeout they are free again.
    assert_eq!(out_frames(n.inside(&udp(2000), 10 + UDP_MS)).1.len(), 1);
    assert_eq!(n.len(), 2);
}

#[test]
fn tcp_mappings_end_after_fin_both_ways_or_rst() {
    let mut n = ready_nat();
    let port_of = |n: &mut Nat, sport, flags, t| {
        let (_, out) = out_frames(n.inside(&tcp_out(sport, flags), t));
        wire::parse_ipv4(&out[0]).unwrap().sport
    };
    let p = port_of(&mut n, 1, 0x02, 0);
    let back = |flags| {
        packet(
            (DOM0_MAC, GW_MAC),
            REMOTE,
            DOM0_IP,
            PROTO_TCP,
            (80, p),
            flags,
            b"",
        )
    };
    port_of(&mut n, 1, TCP_FIN | 0x10, 100);
    assert!(!n.outside(&back(TCP_FIN | 0x10), 200).pass);
    n.expire(200 + TCP_CLOSED_MS - 1);
    assert_eq!(n.len(), 1);
    n.expire(200 + TCP_CLOSED_MS);
    assert!(n.is_empty());
    // A RST from outside ends one too; an open one lives long.
    let q = port_of(&mut n, 2, 0x02, 0);
    port_of(&mut n, 3, 0x02, 0);
    let rst = packet(
        (DOM0_MAC, GW_MAC),
        REMOTE,
        DOM0_IP,
        PROTO_TCP,
        (80, q),
        TCP_RST,
        b"",
    );
    n.outside(&rst, 50);
    n.expire(50 + TCP_CLOSED_MS);
    assert_eq!(n.len(), 1);
    n.expire(TCP_IDLE_MS - 1);
    assert_eq!(n.len(), 1);
    n.expire(TCP_IDLE_MS);
    assert!(n.is_empty());
}

#[test]
fn without_an_uplink_nothing_goes_out_and_a_new_address_flushes() {
    let mut n = Nat::default();
    assert!(n.inside(&tcp_out(1, 0x02), 0).is_empty());
    assert_eq!(n.stats.dropped, 1);
    let mut n = ready_nat();
    n.inside(&tcp_out(1, 0x02), 0);
    assert_eq!(n.len(), 1);
    n.set_uplink(Some(Uplink {
        ip: [10, 0, 2, 16],
        ..uplink()
    }));
    assert!(n.is_empty());
    // Traffic to the private subnet itself is not translated.
    let local = to_nat(packet(
        (NAT_GATEWAY_MAC, DOMU_MAC),
        DOMU_IP,
        [10, 0, 3, 7],
        PROTO_UDP,
        (1, 2),
        0,
        b"",
    ));
    assert!(n.inside(&local, 0).is_empty());
}

#[test]
fn garbage_never_panics() {
    let mut n = ready_nat();
    let good = [
        tcp_out(5, 0x02),
        to_nat(packet(
            (NAT_GATEWAY_MAC, DOMU_MAC),
            DOMU_IP,
            REMOTE,
            PROTO_UDP,
            (5, 6),
            0,
            b"abc",
        )),
        to_nat(packet(
            (NAT_GATEWAY_MAC, DOMU_MAC),
            DOMU_IP,
            REMOTE,
            PROTO_ICMP,
            (5, 0),
            8,
            b"",
        )),
        wire::build_arp(
            ARP_REQUEST,
            [0xff; 6],
            DOMU_MAC,
            DOMU_IP,
            [0; 6],
            NAT_GATEWAY,
        ),
    ];
    // Every truncation, and every byte of the headers set to odd values.
    let mut seed = 0x2545_f491_u32;
    for f in &good {
        for len in 0..f.len() {
            n.inside(&f[..len], 1);
            n.outside(&f[..len], 1);
        }
        for at in 0..f.len().min(64) {
            for v in [0u8, 1, 0x0f, 0x40, 0x45, 0x4f, 0x80, 0xff] {
                let mut g = f.clone();
                g[at] = v;
                n.inside(&g, 2);
                n.outside(&g, 2);
            }
        }
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let mut g = f.clone();
            let at = seed as usize % g.len();
            g[at] = (seed >> 8) as u8;
            n.inside(&g, 3);
            n.outside(&g, 3);
        }
    }
    assert!(n.len() <= TABLE_MAX);
}
