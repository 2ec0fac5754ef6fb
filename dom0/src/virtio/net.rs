//! A virtio-net NIC as a `smoltcp` device. Receiving is interrupt-driven
//! (the NIC's pirq event wakes [`Net::wait`]); sending waits for the device
//! to take each frame by polling, which `virtio-drivers` does.

use core::cell::RefCell;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use virtio_drivers::device::net::{RxBuffer, VirtIONet};
use virtio_drivers::transport::mmio::MmioTransport;

use super::hal::Dom0Hal;
use super::irq::{self, Pirq};

/// Receive (and transmit) queue entries.
const QUEUE_SIZE: usize = 16;
/// Bytes of each receive buffer: the virtio-net header plus a full
/// Ethernet frame, rounded up.
const RX_BUFFER_BYTES: usize = 2048;
/// Largest Ethernet frame sent, header included (1500-byte IP MTU).
const ETHERNET_MTU: usize = 1514;

type Inner = VirtIONet<Dom0Hal, MmioTransport<'static>, QUEUE_SIZE>;

/// A virtio-net NIC.
pub struct Net {
    dev: RefCell<Inner>,
    irq: Option<Pirq>,
    base: u64,
}

impl Net {
    /// Initialises the device behind `transport` (registers at `base`),
    /// woken by `irq`'s event if given.
    pub fn new(
        transport: MmioTransport<'static>,
        base: u64,
        irq: Option<Pirq>,
    ) -> Result<Self, virtio_drivers::Error> {
        let mut dev = Inner::new(transport, RX_BUFFER_BYTES)?;
        if irq.is_some() {
            dev.enable_interrupts();
        } else {
            dev.disable_interrupts();
        }
        Ok(Self {
            dev: RefCell::new(dev),
            irq,
            base,
        })
    }

    /// The registers' address (names the NIC in messages).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The NIC's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.dev.borrow().mac_address()
    }

    /// Whether a frame waits (acknowledging a fired interrupt first).
    pub fn ready(&self) -> bool {
        let mut dev = self.dev.borrow_mut();
        if let Some(irq) = &self.irq {
            irq.acknowledge(|| {
                dev.ack_interrupt();
            });
        }
        dev.can_recv()
    }

    /// Sleeps until a frame arrives or the virtual counter reaches
    /// `deadline` (polls without an interrupt).
    pub fn wait(&self, deadline: u64) {
        irq::wait(self.irq.as_ref(), || self.ready(), deadline);
    }
}

/// A received frame; its buffer goes back to the device once consumed.
pub struct NetRx<'a> {
    dev: &'a RefCell<Inner>,
    buf: RxBuffer,
}

/// Permission to send one frame.
pub struct NetTx<'a> {
    dev: &'a RefCell<Inner>,
}

impl phy::RxToken for NetRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(self.buf.packet());
        // Only fails for a buffer the device never had: a driver bug.
        if let Err(e) = self.dev.borrow_mut().recycle_rx_buffer(self.buf) {
            pv_guest_sdk::println!("dom0: virtio-net: receive buffer lost: {e}");
        }
        r
    }
}

impl phy::TxToken for NetTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut dev = self.dev.borrow_mut();
        let mut tx = dev.new_tx_buffer(len);
        let r = f(tx.packet_mut());
        // A frame the device refuses is dropped, as on a real wire.
        if let Err(e) = dev.send(tx) {
            pv_guest_sdk::println!("dom0: virtio-net: frame not sent: {e}");
        }
        r
    }
}

impl phy::Device for Net {
    type RxToken<'a> = NetRx<'a>;
    type TxToken<'a> = NetTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(NetRx<'_>, NetTx<'_>)> {
        let buf = self.dev.get_mut().receive().ok()?;
        Some((
            NetRx {
                dev: &self.dev,
                buf,
            },
            NetTx { dev: &self.dev },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<NetTx<'_>> {
        self.dev
            .get_mut()
            .can_send()
            .then_some(NetTx { dev: &self.dev })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = ETHERNET_MTU;
        caps.max_burst_size = Some(QUEUE_SIZE);
        caps
    }
}
