//! The echo guest: a TCP echo server (RFC 862) on port 7 of its first
//! network interface, serving one connection after another for ever.
//!
//! Command line: `ip=A.B.C.D/N` (its address; QEMU user networking's
//! `10.0.2.0/24` behind dom0's uplink) and optionally `gw=A.B.C.D`.
//! Prints `echo: listening on <ip>:7 (mac <mac>)` once connected, then
//! `echo: connection <n> closed, <bytes> bytes echoed` per connection.
//!
//! With a disk (its configuration's first `disk`), the guest keeps a boot
//! counter in the disk's first sector: read, incremented, written and
//! flushed at every start, shown as `echo: disk xvda <n> MiB, boot #<n>`.
//! Without one it says so and serves all the same.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec;

use pv_guest_sdk::blk::{BlkError, BlockDevice};
use pv_guest_sdk::net::NetDevice;
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::{StartInfo, println};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{IpCidr, Ipv4Address, Ipv4Cidr};

pv_guest_sdk::entry!(echo_main);

/// The echo port (RFC 862).
const ECHO_PORT: u16 = 7;
/// Bytes of each TCP socket buffer.
const SOCKET_BUFFER: usize = 16 * 1024;

fn now() -> Instant {
    Instant::from_micros((time::now() / 1000) as i64)
}

/// What marks sector 0 as holding the boot counter (a fresh disk is zeros).
const COUNTER_MAGIC: &[u8; 8] = b"ternboot";
/// Bytes of a sector.
const SECTOR: usize = 512;

/// Counts this boot on the first disk: the count before, plus one, written
/// back and flushed. Returns the disk's size in MiB and this boot's number.
fn count_boot() -> Result<(u64, u64), BlkError> {
    let mut disk = BlockDevice::open(0)?;
    let mut sector = [0u8; SECTOR];
    disk.read(0, &mut sector)?;
    let before = if &sector[..8] == COUNTER_MAGIC {
        u64::from_le_bytes(sector[8..16].try_into().unwrap_or_default())
    } else {
        0
    };
    let boot = before.wrapping_add(1);
    sector[..8].copy_from_slice(COUNTER_MAGIC);
    sector[8..16].copy_from_slice(&boot.to_le_bytes());
    disk.write(0, &sector)?;
    if disk.can_flush() {
        disk.flush()?;
    }
    Ok(((disk.capacity() * SECTOR as u64) >> 20, boot))
}

fn echo_main(si: &StartInfo) {
    let name = si.name();
    let Some(cidr) = si
        .cmdline()
        .get("ip")
        .and_then(|v| v.parse::<Ipv4Cidr>().ok())
    else {
        return println!("{name}: FAIL no ip=A.B.C.D/N on the command line");
    };
    let gateway = si
        .cmdline()
        .get("gw")
        .and_then(|v| v.parse::<Ipv4Address>().ok());
    let mut dev = match NetDevice::open(0) {
        Ok(d) => d,
        Err(e) => return println!("{name}: FAIL no network interface: {e}"),
    };
    match count_boot() {
        Ok((mib, boot)) => println!("{name}: disk xvda {mib} MiB, boot #{boot}"),
        Err(BlkError::NoDevice) => println!("{name}: no disk"),
        Err(e) => println!("{name}: disk xvda: {e}"),
    }
    // A second front end on the same store connection: the console ring,
    // so that `console echo` in dom0's shell attaches to this guest.
    if let Err(e) = pv_guest_sdk::console::connect() {
        println!("{name}: console stays on the hypervisor ({e})");
    }
    let mut iface = Interface::new(Config::new(dev.hardware_address()), &mut dev, now());
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
    let m = dev.mac();
    println!(
        "{name}: listening on {}:{ECHO_PORT} (mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x})",
        cidr.address(),
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5]
    );
    let mut chunk = [0u8; 2048];
    let (mut connections, mut bytes, mut connected) = (0u64, 0usize, false);
    loop {
        iface.poll(now(), &mut dev, &mut sockets);
        let s = sockets.get_mut::<tcp::Socket>(h);
        if !s.is_open() {
            if connected {
                connections += 1;
                println!("{name}: connection {connections} closed, {bytes} bytes echoed");
                (bytes, connected) = (0, false);
            }
            // Fails only for port 0 or an open socket: neither here.
            let _ = s.listen(ECHO_PORT);
        }
        connected |= s.is_active();
        let mut echoed = 0;
        while s.can_recv() && s.can_send() {
            let room = s.send_capacity() - s.send_queue();
            let n = match s.recv_slice(&mut chunk[..room.min(2048)]) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            // `room` bytes fit in the send buffer, so all are queued.
            let _ = s.send_slice(&chunk[..n]);
            echoed += n;
        }
        bytes += echoed;
        if s.state() == tcp::State::CloseWait && s.send_queue() == 0 {
            // The client is done and has everything back: close our side.
            s.close();
        }
        if echoed > 0 {
            continue;
        }
        let deadline = iface
            .poll_delay(now(), &sockets)
            .map(|d| Deadline::after_ns(d.total_micros().saturating_mul(1000)).0);
        let waited = if dev.can_send() {
            dev.wait(deadline)
        } else {
            dev.wait_tx(deadline)
        };
        if let Err(e) = waited {
            return println!("{name}: FAIL {e}");
        }
    }
}
