//! Network test, client: connects over its interface and dom0's switch to
//! the echo guest (`peer=A.B.C.D`, port 7), sends `bytes` bytes of a
//! pattern, reads everything back, checks it byte for byte and closes.
//! Prints `net-client: PASS sent <n> bytes, <n> echoed back intact`, or
//! `net-client: FAIL ...`. Own address from `ip=A.B.C.D/N`, or `ip=dhcp`
//! (then it prints `net-client: dhcp <address> via <router>`); optionally
//! `port=N` (the peer's port, default 7) and `gw=A.B.C.D` (a default route,
//! for a peer beyond the subnet: through dom0's NAT on `nat0`).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec;

use pv_guest_sdk::net::NetDevice;
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::{StartInfo, println};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, IpCidr, Ipv4Address, Ipv4Cidr};

pv_guest_sdk::entry!(client_main);

/// The whole exchange must end within this.
const LIMIT_MS: u64 = 60_000;
const SOCKET_BUFFER: usize = 16 * 1024;
/// Connection attempts refused before anything was sent (the peer, started
/// at the same time, not listening yet) that are tried again, each after
/// [`RETRY_MS`]: what a client of a service that is still starting does.
const CONNECT_TRIES: u16 = 50;
/// Pause before trying a refused connection again.
const RETRY_MS: u64 = 20;
/// How long `ip=dhcp` waits for a lease.
const DHCP_MS: u64 = 10_000;

fn now() -> Instant {
    Instant::from_micros((time::now() / 1000) as i64)
}

/// Byte `i` of the stream: not periodic in any small power of two.
fn pattern(i: usize) -> u8 {
    (i * 7 + i / 251) as u8
}

/// Asks DHCP for an address: the lease's address and router.
fn lease(
    iface: &mut Interface,
    dev: &mut NetDevice,
) -> Result<(Ipv4Cidr, Option<Ipv4Address>), &'static str> {
    let mut sockets = SocketSet::new(vec![]);
    let h = sockets.add(dhcpv4::Socket::new());
    let limit = Deadline::after_ms(DHCP_MS);
    while !limit.passed() {
        iface.poll(now(), dev, &mut sockets);
        if let Some(dhcpv4::Event::Configured(c)) = sockets.get_mut::<dhcpv4::Socket>(h).poll() {
            return Ok((c.address, c.router));
        }
        let deadline = iface.poll_delay(now(), &sockets).map_or(limit.0, |d| {
            Deadline::after_ns(d.total_micros().saturating_mul(1000))
                .0
                .min(limit.0)
        });
        dev.wait(Some(deadline))
            .map_err(|_| "network interface broke")?;
    }
    Err("no lease in time")
}

fn client_main(si: &StartInfo) {
    let cmd = si.cmdline();
    let dhcp = cmd.get("ip") == Some("dhcp");
    let cidr = cmd.get("ip").and_then(|v| v.parse::<Ipv4Cidr>().ok());
    let (true, Some(peer)) = (
        dhcp || cidr.is_some(),
        cmd.get("peer").and_then(|v| v.parse::<Ipv4Address>().ok()),
    ) else {
        return println!("net-client: FAIL needs ip=A.B.C.D/N|dhcp peer=A.B.C.D");
    };
    let total = cmd.get_u64("bytes").unwrap_or(1 << 20) as usize;
    let Ok(port) = u16::try_from(cmd.get_u64("port").unwrap_or(7)) else {
        return println!("net-client: FAIL port= out of range");
    };
    let mut gateway = cmd.get("gw").and_then(|v| v.parse::<Ipv4Address>().ok());
    let mut dev = match NetDevice::open(0) {
        Ok(d) => d,
        Err(e) => return println!("net-client: FAIL no network interface: {e}"),
    };
    let mut iface = Interface::new(Config::new(dev.hardware_address()), &mut dev, now());
    let cidr = match cidr {
        Some(c) => c,
        None => match lease(&mut iface, &mut dev) {
            Ok((c, router)) => {
                gateway = router;
                println!(
                    "net-client: dhcp {c} via {}",
                    router.map_or_else(|| "no router".into(), |r| alloc::format!("{r}"))
                );
                c
            }
            Err(e) => return println!("net-client: FAIL dhcp: {e}"),
        },
    };
    iface.update_ip_addrs(|a| {
        // One address: the list has room for it.
        let _ = a.push(IpCidr::Ipv4(cidr));
    });
    if let Some(gw) = gateway {
        // Fails only if the route table is full; it is empty.
        let _ = iface.routes_mut().add_default_ipv4_route(gw);
    }
    let mut sockets = SocketSet::new(vec![]);
    let h = sockets.add(tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
    ));
    let local_port = 49152 + (si.domain_id().0 % 1000) as u16;
    let mut tries = 1;
    if let Err(e) = sockets.get_mut::<tcp::Socket>(h).connect(
        iface.context(),
        (IpAddress::Ipv4(peer), port),
        local_port,
    ) {
        return println!("net-client: FAIL connect: {e}");
    }
    let limit = Deadline::after_ms(LIMIT_MS);
    let start = time::now();
    let (mut sent, mut got) = (0usize, 0usize);
    let mut buf = [0u8; 2048];
    loop {
        if limit.passed() {
            let s = dev.stats();
            return println!(
                "net-client: FAIL timed out: {sent} sent, {got} back ({} frames out, {} in)",
                s.sent, s.received
            );
        }
        iface.poll(now(), &mut dev, &mut sockets);
        let s = sockets.get_mut::<tcp::Socket>(h);
        let mut progress = false;
        while s.can_send() && sent < total {
            let n = (total - sent).min(buf.len());
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(sent + k);
            }
            match s.send_slice(&buf[..n]) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    sent += k;
                    progress = true;
                }
            }
        }
        while s.can_recv() {
            let n = match s.recv_slice(&mut buf) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            if let Some(k) = (0..n).find(|&k| buf[k] != pattern(got + k)) {
                return println!("net-client: FAIL byte {} differs", got + k);
            }
            got += n;
            progress = true;
        }
        if got == total {
            s.close();
            let us = (time::now() - start) / 1000;
            let st = dev.stats();
            return println!(
                "net-client: PASS sent {total} bytes, {got} echoed back intact in {us} us ({} frames out, {} in)",
                st.sent, st.received
            );
        }
        if !s.is_open() && sent == 0 && tries < CONNECT_TRIES {
            // Refused (reset) before the handshake completed: the peer is
            // not listening yet. A fresh local port each time, so that no
            // segment of the last attempt is taken for this one.
            let _ = dev.wait(Some(Deadline::after_ms(RETRY_MS).0));
            let again = s.connect(
                iface.context(),
                (IpAddress::Ipv4(peer), port),
                49152 + (local_port - 49152 + tries * 1000) % 16384,
            );
            if let Err(e) = again {
                return println!("net-client: FAIL connect: {e}");
            }
            tries += 1;
            continue;
        }
        if !s.is_open() {
            return println!("net-client: FAIL connection closed: {sent} sent, {got} back");
        }
        if progress {
            continue;
        }
        let deadline = iface.poll_delay(now(), &sockets).map_or(limit.0, |d| {
            Deadline::after_ns(d.total_micros().saturating_mul(1000))
                .0
                .min(limit.0)
        });
        let waited = if dev.can_send() {
            dev.wait(Some(deadline))
        } else {
            dev.wait_tx(Some(deadline))
        };
        if let Err(e) = waited {
            return println!("net-client: FAIL {e}");
        }
    }
}
