//! A network interface front end (`specs/netif.md`): frames to and from
//! dom0's virtual switch over a tx and an rx ring, and (feature `smoltcp`)
//! a `smoltcp::phy::Device`, so a guest gets TCP/UDP in a few lines:
//!
//! ```ignore
//! use pv_guest_sdk::net::NetDevice;
//! let mut dev = NetDevice::open(0)?;             // vif 0 of this domain
//! let cfg = smoltcp::iface::Config::new(dev.hardware_address());
//! let mut iface = smoltcp::iface::Interface::new(cfg, &mut dev, now);
//! // ... sockets, iface.poll(now, &mut dev, &mut sockets), dev.wait(deadline)
//! ```
//!
//! Buffers: [`TX_BUFFERS`] and [`RX_BUFFERS`] half pages, two per page,
//! each page granted to dom0 once (tx read-only, rx read-write) for the
//! device's life. Every rx buffer is posted to dom0 at all times but while
//! the guest copies a frame out of it.

use alloc::vec::Vec;

use tern_abi::domctl::DomainId;
use tern_abi::netif::{self, NETIF_FRAME_MAX, NetifRequest, NetifResponse};
use tern_abi::store::XenbusState;

use crate::Error;
use crate::events::{self, Port};
use crate::grant::{Grant, Page};
use crate::ring::{Fault, FrontRing};
use crate::store::{self, Device, FrontDetails, Store};
use crate::time::Deadline;

/// Frames in flight to dom0 at most.
pub const TX_BUFFERS: usize = 32;
/// Buffers posted for received frames.
pub const RX_BUFFERS: usize = 32;
/// Bytes of each buffer: half a page.
const BUFFER_BYTES: usize = 2048;
/// How long [`NetDevice::open`] waits for dom0.
const CONNECT_MS: u64 = 10_000;

/// Why opening or using the interface failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The store refused or timed out during the handshake.
    Store(store::Error),
    /// A hypercall failed (grant, event channel).
    Call(Error),
    /// dom0 broke a ring.
    Ring(Fault),
    /// dom0's `mac` node is missing or malformed.
    NoMac,
    /// A frame larger than [`NETIF_FRAME_MAX`] or smaller than a header.
    BadFrame,
    /// Every tx buffer is in flight.
    Busy,
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "store: {e}"),
            Self::Call(e) => write!(f, "{e}"),
            Self::Ring(e) => write!(f, "ring: {e}"),
            Self::NoMac => f.write_str("no MAC address from the back end"),
            Self::BadFrame => f.write_str("frame size out of range"),
            Self::Busy => f.write_str("every tx buffer in flight"),
        }
    }
}

impl From<store::Error> for NetError {
    fn from(e: store::Error) -> Self {
        Self::Store(e)
    }
}

impl From<Error> for NetError {
    fn from(e: Error) -> Self {
        Self::Call(e)
    }
}

impl From<Fault> for NetError {
    fn from(e: Fault) -> Self {
        Self::Ring(e)
    }
}

impl From<tern_abi::ring::RingError> for NetError {
    fn from(e: tern_abi::ring::RingError) -> Self {
        Self::Ring(Fault::Ring(e))
    }
}

/// Counters of an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames dom0 took from the tx ring.
    pub sent: u64,
    /// Frames received.
    pub received: u64,
    /// tx or rx responses with an error status.
    pub errors: u64,
}

/// Buffer `i` of a set of pages: (page, byte offset).
fn slot(i: usize) -> (usize, usize) {
    (i / 2, (i % 2) * BUFFER_BYTES)
}

/// An open interface.
pub struct NetDevice {
    tx: FrontRing<NetifRequest, NetifResponse>,
    rx: FrontRing<NetifRequest, NetifResponse>,
    tx_pages: Vec<Grant>,
    rx_pages: Vec<Grant>,
    /// tx buffer ids not in flight.
    tx_free: Vec<u16>,
    mac: [u8; 6],
    index: u32,
    stats: NetStats,
}

impl core::fmt::Debug for NetDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "NetDevice({:02x?})", self.mac)
    }
}

fn grant_pages(n: usize, readonly: bool) -> Result<Vec<Grant>, Error> {
    (0..n.div_ceil(2))
        .map(|_| Grant::new(DomainId::DOM0, Page::new()?, readonly))
        .collect()
}

impl NetDevice {
    /// Opens interface `index` of this domain (its `vif = [...]` entry):
    /// sets up the rings and buffers, runs the store handshake with dom0,
    /// reads the MAC dom0 assigned, and posts every rx buffer.
    pub fn open(index: u32) -> Result<Self, NetError> {
        let mut st = Store::connect()?;
        let me = crate::start_info().map_or(DomainId(0), |si| si.domain_id());
        let dev = Device {
            kind: netif::DEVICE_TYPE.into(),
            index,
            front: me,
            back: DomainId::DOM0,
        };
        let port = events::alloc_unbound(DomainId::DOM0)?;
        let tx = FrontRing::new(DomainId::DOM0, port)?;
        let rx = FrontRing::new(DomainId::DOM0, port)?;
        let tx_pages = grant_pages(TX_BUFFERS, true)?;
        let rx_pages = grant_pages(RX_BUFFERS, false)?;
        let dir = dev.front_dir();
        st.write(
            &alloc::format!("{dir}/{}", netif::KEY_TX_RING_REF),
            alloc::format!("{}", tx.gref().0).as_bytes(),
        )?;
        st.write(
            &alloc::format!("{dir}/{}", netif::KEY_RX_RING_REF),
            alloc::format!("{}", rx.gref().0).as_bytes(),
        )?;
        let details = FrontDetails {
            ring_ref: tx.gref().0,
            event_channel: port.0,
        };
        st.front_connect(&dev, details, Deadline::after_ms(CONNECT_MS))?;
        let mac = st
            .read(&alloc::format!("{}/{}", dev.back_dir(), netif::KEY_MAC))
            .ok()
            .and_then(|v| netif::parse_mac(&v))
            .ok_or(NetError::NoMac)?;
        let mut me = Self {
            tx,
            rx,
            tx_pages,
            rx_pages,
            tx_free: (0..TX_BUFFERS as u16).rev().collect(),
            mac,
            index,
            stats: NetStats::default(),
        };
        for id in 0..RX_BUFFERS {
            me.post(id as u16)?;
        }
        me.rx.publish()?;
        Ok(me)
    }

    /// The MAC address dom0 assigned.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The event port both rings notify over.
    pub fn port(&self) -> Port {
        self.tx.port()
    }

    /// Pushes rx buffer `id` (not published).
    fn post(&mut self, id: u16) -> Result<(), NetError> {
        let (page, offset) = slot(usize::from(id));
        self.rx.push(&NetifRequest {
            id,
            flags: 0,
            gref: self.rx_pages[page].gref().0,
            offset: offset as u16,
            size: BUFFER_BYTES as u16,
            reserved: 0,
        })?;
        Ok(())
    }

    /// Takes back the tx buffers dom0 is done with.
    fn reclaim(&mut self) -> Result<(), NetError> {
        while let Some(r) = self.tx.take()? {
            if usize::from(r.id) < TX_BUFFERS && !self.tx_free.contains(&r.id) {
                self.tx_free.push(r.id);
            }
            if r.status == netif::NETIF_RSP_OKAY {
                self.stats.sent += 1;
            } else {
                self.stats.errors += 1;
            }
        }
        Ok(())
    }

    /// Whether a frame can be sent now without waiting.
    pub fn can_send(&mut self) -> bool {
        self.reclaim().is_ok() && !self.tx_free.is_empty()
    }

    /// Sends one Ethernet frame (header included, no FCS). `Busy` if every
    /// tx buffer is in flight: [`NetDevice::wait_tx`] then try again.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), NetError> {
        self.put(frame)?;
        self.tx.publish()?;
        Ok(())
    }

    /// [`Self::send`], but dom0 is told at this domain's next wait (any
    /// `wait` here, or an `events` wait), with that wait's block, in one
    /// hypercall: for a frame followed by waiting for the answer, or
    /// several frames in a row.
    pub fn queue(&mut self, frame: &[u8]) -> Result<(), NetError> {
        self.put(frame)?;
        self.tx.publish_later();
        Ok(())
    }

    /// Puts `frame` on the tx ring, unpublished.
    fn put(&mut self, frame: &[u8]) -> Result<(), NetError> {
        if frame.len() < usize::from(netif::NETIF_FRAME_MIN)
            || frame.len() > usize::from(NETIF_FRAME_MAX)
        {
            return Err(NetError::BadFrame);
        }
        self.reclaim()?;
        let id = self.tx_free.pop().ok_or(NetError::Busy)?;
        let (page, offset) = slot(usize::from(id));
        self.tx_pages[page].page().write(offset, frame)?;
        self.tx.push(&NetifRequest {
            id,
            flags: 0,
            gref: self.tx_pages[page].gref().0,
            offset: offset as u16,
            size: frame.len() as u16,
            reserved: 0,
        })?;
        Ok(())
    }

    /// Receives one frame into `buf` (at least [`NETIF_FRAME_MAX`] bytes
    /// to be sure it fits; a longer frame is cut). Returns its length, or
    /// `None` if none waits. The buffer goes back to dom0 at once.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, NetError> {
        loop {
            let Some(r) = self.rx.take()? else {
                return Ok(None);
            };
            let id = usize::from(r.id);
            if id >= RX_BUFFERS {
                // Not one of ours: dom0 is confused; the buffer is not lost.
                self.stats.errors += 1;
                continue;
            }
            let got = usize::try_from(r.status)
                .ok()
                .filter(|&n| n > 0 && n <= usize::from(NETIF_FRAME_MAX));
            if let Some(n) = got {
                let n = n.min(buf.len());
                let (page, offset) = slot(id);
                self.rx_pages[page].page().read(offset, &mut buf[..n])?;
                self.stats.received += 1;
                self.post(r.id)?;
                self.rx.publish()?;
                return Ok(Some(n));
            }
            self.stats.errors += 1;
            self.post(r.id)?;
            self.rx.publish()?;
        }
    }

    /// Blocks until a frame arrives or `deadline` (virtual counter)
    /// passes.
    pub fn wait(&mut self, deadline: Option<u64>) -> Result<(), NetError> {
        match self.rx.wait(deadline) {
            Ok(()) | Err(Fault::Timeout) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Blocks until dom0 finished a frame sent earlier (a tx buffer is
    /// free again) or `deadline` passes.
    pub fn wait_tx(&mut self, deadline: Option<u64>) -> Result<(), NetError> {
        if self.can_send() {
            return Ok(());
        }
        match self.tx.wait(deadline) {
            Ok(()) | Err(Fault::Timeout) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Tells dom0 the interface is going away (state Closing then Closed).
    /// The pages stay granted until the domain ends.
    pub fn close(self) -> Result<(), NetError> {
        let mut st = Store::connect()?;
        let me = crate::start_info().map_or(DomainId(0), |si| si.domain_id());
        let dir = alloc::format!(
            "/local/domain/{}/device/{}/{}",
            me.0,
            netif::DEVICE_TYPE,
            self.index
        );
        for s in [XenbusState::Closing, XenbusState::Closed] {
            st.write(
                &alloc::format!("{dir}/state"),
                alloc::format!("{}", s.raw()).as_bytes(),
            )?;
        }
        Ok(())
    }
}

#[cfg(feature = "smoltcp")]
mod phy {
    //! `smoltcp::phy::Device` for [`NetDevice`]: a received frame is copied
    //! out of its rx buffer (which goes back to dom0 at once), a sent one
    //! into a tx buffer.

    use alloc::vec;
    use alloc::vec::Vec;

    use smoltcp::phy::{self, DeviceCapabilities, Medium};
    use smoltcp::time::Instant;
    use smoltcp::wire::{EthernetAddress, HardwareAddress};

    use super::{NETIF_FRAME_MAX, NetDevice, TX_BUFFERS};

    /// A frame received, copied out of its buffer.
    pub struct NetRx(Vec<u8>);
    /// Room to send one frame.
    pub struct NetTx<'a>(&'a mut NetDevice);

    impl phy::RxToken for NetRx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl phy::TxToken for NetTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut buf = vec![0u8; len];
            let r = f(&mut buf);
            // `transmit` saw a free buffer; a frame refused anyway (too
            // long, dom0 broke the ring) is dropped, as on a wire.
            let _ = self.0.send(&buf);
            r
        }
    }

    impl NetDevice {
        /// The MAC as `smoltcp` wants it for `iface::Config::new`.
        pub fn hardware_address(&self) -> HardwareAddress {
            HardwareAddress::Ethernet(EthernetAddress(self.mac))
        }
    }

    impl phy::Device for NetDevice {
        type RxToken<'a> = NetRx;
        type TxToken<'a> = NetTx<'a>;

        fn receive(&mut self, _now: Instant) -> Option<(NetRx, NetTx<'_>)> {
            let mut buf = vec![0u8; usize::from(NETIF_FRAME_MAX)];
            let n = self.recv(&mut buf).ok()??;
            buf.truncate(n);
            Some((NetRx(buf), NetTx(self)))
        }

        fn transmit(&mut self, _now: Instant) -> Option<NetTx<'_>> {
            self.can_send().then_some(NetTx(self))
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut caps = DeviceCapabilities::default();
            caps.medium = Medium::Ethernet;
            caps.max_transmission_unit = usize::from(NETIF_FRAME_MAX);
            caps.max_burst_size = Some(TX_BUFFERS);
            caps
        }
    }
}
