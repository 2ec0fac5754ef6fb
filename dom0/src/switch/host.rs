//! dom0's own TCP/IP interface on the switch: a `smoltcp` interface whose
//! device is a pair of frame queues ([`HostPort`]) that the switch fills and
//! drains, addressed by DHCP through the uplink (QEMU user networking
//! answers; without an uplink nobody does and the interface stays
//! unaddressed). [`HostStack::poll`] never blocks.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use crate::switch::nat::Uplink;
use crate::switch::{QUEUE_MAX, Switch};

use super::PortId;

/// A `smoltcp` device made of two queues: frames the switch delivered,
/// frames the interface sent.
#[derive(Debug, Default)]
pub struct HostPort {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

/// A frame delivered to the interface.
pub struct HostRx(Vec<u8>);
/// Room for one frame the interface sends.
pub struct HostTx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for HostRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for HostTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push(buf);
        r
    }
}

impl phy::Device for HostPort {
    type RxToken<'a> = HostRx;
    type TxToken<'a> = HostTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(HostRx, HostTx<'_>)> {
        let f = self.rx.pop_front()?;
        Some((HostRx(f), HostTx(&mut self.tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<HostTx<'_>> {
        Some(HostTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = usize::from(tern_abi::netif::NETIF_FRAME_MAX);
        caps
    }
}

/// dom0's interface on the switch and what it learnt from DHCP.
pub struct HostStack {
    port: PortId,
    dev: HostPort,
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: SocketHandle,
    mac: [u8; 6],
    /// The address in force, once DHCP gave one.
    pub address: Option<Ipv4Cidr>,
    /// The default gateway DHCP gave with it.
    pub gateway: Option<Ipv4Address>,
}

impl HostStack {
    /// An interface with MAC `mac` on switch port `port`, asking DHCP for
    /// an address.
    pub fn new(port: PortId, mac: [u8; 6], now: Instant) -> Self {
        let mut dev = HostPort::default();
        let cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        let iface = Interface::new(cfg, &mut dev, now);
        let mut sockets = SocketSet::new(vec![]);
        let dhcp = sockets.add(dhcpv4::Socket::new());
        Self {
            port,
            dev,
            iface,
            sockets,
            dhcp,
            mac,
            address: None,
            gateway: None,
        }
    }

    /// Hands the interface a frame the switch delivered to its port (the
    /// caller took it with [`Switch::pop`] to show it to NAT first).
    pub fn deliver(&mut self, frame: Vec<u8>) {
        if self.dev.rx.len() < QUEUE_MAX {
            self.dev.rx.push_back(frame);
        }
    }

    /// dom0's address on the uplink for NAT, once DHCP gave one.
    pub fn uplink(&self) -> Option<Uplink> {
        self.address.map(|a| Uplink {
            ip: a.address().octets(),
            prefix: a.prefix_len(),
            gateway: self.gateway.map(|g| g.octets()),
            mac: self.mac,
        })
    }

    /// Its switch port.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// Takes the frames the switch queued for the interface, runs it, and
    /// puts what it sent into the switch. Returns a new address when DHCP
    /// just configured one.
    pub fn poll(&mut self, switch: &mut Switch, now: Instant) -> Option<Ipv4Cidr> {
        while let Some(f) = switch.pop(self.port) {
            self.deliver(f);
        }
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        let now_ms = now.total_millis() as u64;
        for f in self.dev.tx.drain(..) {
            switch.input(self.port, &f, now_ms);
        }
        let event = self.sockets.get_mut::<dhcpv4::Socket>(self.dhcp).poll();
        match event {
            Some(dhcpv4::Event::Configured(cfg)) => {
                let (address, router) = (cfg.address, cfg.router);
                self.set_address(address, router);
                Some(address)
            }
            Some(dhcpv4::Event::Deconfigured) => {
                self.address = None;
                self.gateway = None;
                None
            }
            None => None,
        }
    }

    /// When the interface next needs polling (a DHCP retransmission), if
    /// nothing arrives before.
    pub fn poll_delay(&mut self, now: Instant) -> Option<smoltcp::time::Duration> {
        self.iface.poll_delay(now, &self.sockets)
    }

    fn set_address(&mut self, cidr: Ipv4Cidr, gateway: Option<Ipv4Address>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            // One address: the list has room for it.
            let _ = addrs.push(IpCidr::Ipv4(cidr));
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = gateway {
            // Fails only if the route table is full; it was just emptied.
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
        self.address = Some(cidr);
        self.gateway = gateway;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_asks_dhcp_through_the_switch() {
        let mut s = Switch::new();
        let up = s.add_port("uplink");
        let host = s.add_port("dom0");
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let mut h = HostStack::new(host, mac, Instant::from_millis(0));
        assert_eq!(h.poll(&mut s, Instant::from_millis(1)), None);
        // A DHCP discover: broadcast, from dom0's MAC, flooded to the uplink.
        let f = s.pop(up).expect("a DHCP discover");
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(s.bridge().lookup(&mac, 1), Some(host));
        assert!(h.address.is_none());
    }
}
