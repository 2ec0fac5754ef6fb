//! dom0's TCP/IP over the physical NIC: a `smoltcp` interface on a
//! [`Net`], addressed by DHCP (QEMU user networking answers with
//! 10.0.2.15/24, gateway 10.0.2.2) or, if no answer comes, statically with
//! the same values. [`echo`] is a TCP echo server on it.

pub mod echo;
pub mod net_test;

use alloc::vec;

use pv_guest_sdk::println;
use pv_guest_sdk::time::{self, Deadline};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use crate::virtio::net::Net;

/// The address used when DHCP does not answer: QEMU user networking's.
pub const STATIC_ADDRESS: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);
/// The gateway used with [`STATIC_ADDRESS`].
pub const STATIC_GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

/// `smoltcp`'s clock: dom0's virtual time.
pub fn now() -> Instant {
    Instant::from_micros((time::now() / 1000) as i64)
}

/// The virtual-counter deadline `delay` from now, or `limit` if sooner
/// (or if there is no delay: nothing to do until a frame arrives).
fn wake_at(delay: Option<smoltcp::time::Duration>, limit: u64) -> u64 {
    match delay {
        Some(d) => Deadline::after_ns(d.total_micros().saturating_mul(1000))
            .0
            .min(limit),
        None => limit,
    }
}

/// An interface, its sockets, and how it got its address.
pub struct Stack {
    /// The interface.
    pub iface: Interface,
    /// Its sockets.
    pub sockets: SocketSet<'static>,
    /// The address in force.
    pub address: Ipv4Cidr,
    /// Whether it came from DHCP.
    pub by_dhcp: bool,
}

impl Stack {
    /// Processes the frames that arrived and sends what is due.
    pub fn poll(&mut self, net: &mut Net) {
        self.iface.poll(now(), net, &mut self.sockets);
    }

    /// Sleeps until a frame arrives, the next TCP timer is due, or the
    /// virtual counter reaches `limit`. Call after handling the sockets:
    /// data a poll delivered to them does not wake this.
    pub fn wait(&mut self, net: &mut Net, limit: u64) {
        let delay = self.iface.poll_delay(now(), &self.sockets);
        net.wait(wake_at(delay, limit));
    }
}

fn set_address(iface: &mut Interface, cidr: Ipv4Cidr, gateway: Option<Ipv4Address>) {
    iface.update_ip_addrs(|addrs| {
        addrs.clear();
        // One address: the list has room for it.
        let _ = addrs.push(IpCidr::Ipv4(cidr));
    });
    iface.routes_mut().remove_default_ipv4_route();
    if let Some(gw) = gateway {
        // Fails only if the route table is full; it was just emptied.
        let _ = iface.routes_mut().add_default_ipv4_route(gw);
    }
}

/// Brings the interface up on `net`: DHCP for up to `dhcp_ms`
/// milliseconds, else [`STATIC_ADDRESS`].
pub fn up(net: &mut Net, dhcp_ms: u64) -> Stack {
    let mac = EthernetAddress(net.mac());
    let mut iface = Interface::new(Config::new(HardwareAddress::Ethernet(mac)), net, now());
    let mut sockets = SocketSet::new(vec![]);
    let dhcp: SocketHandle = sockets.add(dhcpv4::Socket::new());
    let limit = Deadline::after_ms(dhcp_ms).0;
    let mut lease = None;
    while time::counter() < limit {
        iface.poll(now(), net, &mut sockets);
        if let Some(dhcpv4::Event::Configured(cfg)) = sockets.get_mut::<dhcpv4::Socket>(dhcp).poll()
        {
            lease = Some((cfg.address, cfg.router));
            break;
        }
        let delay = iface.poll_delay(now(), &sockets);
        net.wait(wake_at(delay, limit));
    }
    // The lease (QEMU's lasts a day) is not renewed: the DHCP socket goes.
    sockets.remove(dhcp);
    let (address, gateway, by_dhcp) = match lease {
        Some((a, gw)) => (a, gw, true),
        None => (STATIC_ADDRESS, Some(STATIC_GATEWAY), false),
    };
    set_address(&mut iface, address, gateway);
    println!(
        "dom0: net: {address} via {} ({})",
        gateway.map_or_else(
            || alloc::string::String::from("no gateway"),
            |g| alloc::format!("{g}")
        ),
        if by_dhcp { "dhcp" } else { "static" }
    );
    Stack {
        iface,
        sockets,
        address,
        by_dhcp,
    }
}
