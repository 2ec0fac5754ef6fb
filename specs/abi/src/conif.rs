//! The split console's shared page (`specs/console.md`): Xen's
//! `xencons_interface`, two byte rings between a domain (the front end) and
//! dom0's console back end. `in` carries typed bytes to the domain, `out`
//! the domain's output to dom0. The hypervisor never reads this page.
//!
//! Each end keeps its own indices privately ([`ConsEndpoint`]) and checks
//! the peer's on every use, as the store's rings do: an index claiming more
//! bytes than a ring holds is [`RingError::Overflow`] and the end stops
//! using the page ([`RingError::Broken`]).

use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub use crate::ring::RingError;
use crate::spec::{LayoutDesc, layout_desc};

/// Bytes of the input ring (dom0 to the domain).
pub const CONS_IN_SIZE: usize = 1024;
/// Bytes of the output ring (the domain to dom0).
pub const CONS_OUT_SIZE: usize = 2048;
/// The device type of the console in the store (`device/console/0`).
pub const DEVICE_TYPE: &str = "console";
/// Front-end key: grant reference of the page.
pub const KEY_RING_REF: &str = "ring-ref";
/// Front-end key: the port the front end reserved for dom0.
pub const KEY_EVENT_CHANNEL: &str = "event-channel";

const RESERVED: usize = crate::PAGE_SIZE as usize - CONS_IN_SIZE - CONS_OUT_SIZE - 16;

/// The page as plain bytes (for its description; both ends use
/// [`SharedConsPage`]). "IN" fields are written by the domain, "OUT" by dom0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ConsPage {
    /// OUT: the input ring (typed bytes for the domain).
    pub input: [u8; CONS_IN_SIZE],
    /// IN: the output ring (what the domain prints).
    pub output: [u8; CONS_OUT_SIZE],
    /// IN: input bytes consumed by the domain (free-running).
    pub in_cons: u32,
    /// OUT: input bytes produced by dom0 (free-running).
    pub in_prod: u32,
    /// OUT: output bytes consumed by dom0 (free-running).
    pub out_cons: u32,
    /// IN: output bytes produced by the domain (free-running).
    pub out_prod: u32,
    /// Zero.
    pub reserved: [u8; RESERVED],
}
const _: () = assert!(size_of::<ConsPage>() == crate::PAGE_SIZE as usize);

/// The atomic view of a [`ConsPage`]: every byte may change under either end.
#[repr(C, align(4096))]
#[derive(Debug)]
pub struct SharedConsPage {
    /// The input ring.
    pub input: [AtomicU8; CONS_IN_SIZE],
    /// The output ring.
    pub output: [AtomicU8; CONS_OUT_SIZE],
    /// Input consumed (domain).
    pub in_cons: AtomicU32,
    /// Input produced (dom0).
    pub in_prod: AtomicU32,
    /// Output consumed (dom0).
    pub out_cons: AtomicU32,
    /// Output produced (domain).
    pub out_prod: AtomicU32,
    /// Zero.
    pub reserved: [AtomicU8; RESERVED],
}
const _: () = assert!(size_of::<SharedConsPage>() == size_of::<ConsPage>());
const _: () = assert!(
    core::mem::offset_of!(SharedConsPage, out_prod) == core::mem::offset_of!(ConsPage, out_prod)
);

impl SharedConsPage {
    /// A zeroed page: both rings empty.
    pub const fn new() -> Self {
        Self {
            input: [const { AtomicU8::new(0) }; CONS_IN_SIZE],
            output: [const { AtomicU8::new(0) }; CONS_OUT_SIZE],
            in_cons: AtomicU32::new(0),
            in_prod: AtomicU32::new(0),
            out_cons: AtomicU32::new(0),
            out_prod: AtomicU32::new(0),
            reserved: [const { AtomicU8::new(0) }; RESERVED],
        }
    }
}

impl Default for SharedConsPage {
    fn default() -> Self {
        Self::new()
    }
}

/// Which end an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsSide {
    /// The domain: writes `output`, reads `input`.
    Front,
    /// dom0: reads `output`, writes `input`.
    Back,
}

/// One end's private indices and whether the peer broke the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsEndpoint {
    side: ConsSide,
    rx_cons: u32,
    tx_prod: u32,
    broken: bool,
}

struct Dir<'p> {
    data: &'p [AtomicU8],
    prod: &'p AtomicU32,
    cons: &'p AtomicU32,
}

impl ConsEndpoint {
    /// An end of a page, taking its own indices from the page as it is now
    /// (0 on a fresh page): the domain's `in_cons`/`out_prod`, dom0's
    /// `out_cons`/`in_prod`.
    pub fn new(side: ConsSide, page: &SharedConsPage) -> Self {
        let (rx, tx) = match side {
            ConsSide::Front => (&page.in_cons, &page.out_prod),
            ConsSide::Back => (&page.out_cons, &page.in_prod),
        };
        Self {
            side,
            rx_cons: rx.load(Ordering::Acquire),
            tx_prod: tx.load(Ordering::Acquire),
            broken: false,
        }
    }

    /// Whether the peer broke the page (this end no longer uses it).
    pub const fn is_broken(&self) -> bool {
        self.broken
    }

    fn rx<'p>(&self, page: &'p SharedConsPage) -> Dir<'p> {
        match self.side {
            ConsSide::Front => Dir {
                data: &page.input,
                prod: &page.in_prod,
                cons: &page.in_cons,
            },
            ConsSide::Back => Dir {
                data: &page.output,
                prod: &page.out_prod,
                cons: &page.out_cons,
            },
        }
    }

    fn tx<'p>(&self, page: &'p SharedConsPage) -> Dir<'p> {
        match self.side {
            ConsSide::Front => Dir {
                data: &page.output,
                prod: &page.out_prod,
                cons: &page.out_cons,
            },
            ConsSide::Back => Dir {
                data: &page.input,
                prod: &page.in_prod,
                cons: &page.in_cons,
            },
        }
    }

    fn fail(&mut self) -> RingError {
        self.broken = true;
        RingError::Overflow
    }

    /// Bytes the peer produced that this end has not read, after checking
    /// the peer's index against the ring's size.
    pub fn readable(&mut self, page: &SharedConsPage) -> Result<usize, RingError> {
        if self.broken {
            return Err(RingError::Broken);
        }
        let rx = self.rx(page);
        let n = rx.prod.load(Ordering::Acquire).wrapping_sub(self.rx_cons) as usize;
        if n > rx.data.len() {
            return Err(self.fail());
        }
        Ok(n)
    }

    /// Copies up to `buf.len()` readable bytes out, then publishes the new
    /// consumer index. Returns how many were copied.
    pub fn read(&mut self, page: &SharedConsPage, buf: &mut [u8]) -> Result<usize, RingError> {
        self.read_then(page, buf, |_| {})
    }

    /// Like [`read`](Self::read), but hands the bytes to `done` before
    /// publishing the consumer index: the peer sees them consumed only once
    /// they were dealt with (dom0 prints a domain's output before the domain
    /// can see its ring empty, `specs/console.md`).
    pub fn read_then(
        &mut self,
        page: &SharedConsPage,
        buf: &mut [u8],
        done: impl FnOnce(&[u8]),
    ) -> Result<usize, RingError> {
        let n = self.readable(page)?.min(buf.len());
        let rx = self.rx(page);
        let size = rx.data.len();
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.rx_cons.wrapping_add(i as u32) as usize % size;
            *b = rx.data[at].load(Ordering::Relaxed);
        }
        if n > 0 {
            done(&buf[..n]);
            self.rx_cons = self.rx_cons.wrapping_add(n as u32);
            // Release: the bytes were read before the peer may reuse them.
            rx.cons.store(self.rx_cons, Ordering::Release);
        }
        Ok(n)
    }

    /// Free bytes in the ring this end writes, after checking the peer's
    /// consumer index (not ahead of the producer, not more than a ring behind).
    pub fn writable(&mut self, page: &SharedConsPage) -> Result<usize, RingError> {
        if self.broken {
            return Err(RingError::Broken);
        }
        let tx = self.tx(page);
        let used = self.tx_prod.wrapping_sub(tx.cons.load(Ordering::Acquire)) as usize;
        if used > tx.data.len() {
            return Err(self.fail());
        }
        Ok(tx.data.len() - used)
    }

    /// Copies as much of `bytes` as fits, then publishes the new producer
    /// index. Returns how many were written.
    pub fn write(&mut self, page: &SharedConsPage, bytes: &[u8]) -> Result<usize, RingError> {
        let n = self.writable(page)?.min(bytes.len());
        let tx = self.tx(page);
        let size = tx.data.len();
        for (i, &b) in bytes[..n].iter().enumerate() {
            let at = self.tx_prod.wrapping_add(i as u32) as usize % size;
            tx.data[at].store(b, Ordering::Relaxed);
        }
        if n > 0 {
            self.tx_prod = self.tx_prod.wrapping_add(n as u32);
            // Release: the bytes are visible before the index that covers them.
            tx.prod.store(self.tx_prod, Ordering::Release);
        }
        Ok(n)
    }
}

/// Field table of [`ConsPage`].
pub const PAGE_LAYOUT: LayoutDesc = layout_desc!(ConsPage {
    input: [u8; CONS_IN_SIZE] => Out,
    output: [u8; CONS_OUT_SIZE] => In,
    in_cons: u32 => In,
    in_prod: u32 => Out,
    out_cons: u32 => Out,
    out_prod: u32 => In,
    reserved: [u8; RESERVED] => Reserved,
});

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;

    fn pair() -> (Box<SharedConsPage>, ConsEndpoint, ConsEndpoint) {
        let page = Box::new(SharedConsPage::new());
        let f = ConsEndpoint::new(ConsSide::Front, &page);
        let b = ConsEndpoint::new(ConsSide::Back, &page);
        (page, f, b)
    }

    #[test]
    fn bytes_flow_both_ways_and_wrap() {
        let (page, mut f, mut b) = pair();
        let mut buf = [0u8; 700];
        // Several laps of the output ring: indices wrap inside the ring.
        for lap in 0..10u8 {
            let chunk = [lap; 700];
            assert_eq!(f.write(&page, &chunk), Ok(700));
            assert_eq!(b.read(&page, &mut buf), Ok(700));
            assert_eq!(buf, chunk);
        }
        assert_eq!(b.write(&page, b"typed"), Ok(5));
        assert_eq!(f.read(&page, &mut buf), Ok(5));
        assert_eq!(&buf[..5], b"typed");
        assert_eq!(f.read(&page, &mut buf), Ok(0));
    }

    #[test]
    fn read_then_publishes_the_consumer_index_after_the_callback() {
        let (page, mut f, mut b) = pair();
        assert_eq!(f.write(&page, b"last words"), Ok(10));
        let mut buf = [0u8; 16];
        let mut seen = std::vec::Vec::new();
        let n = b.read_then(&page, &mut buf, |bytes| {
            // The writer must not see its ring empty yet.
            assert_eq!(page.out_cons.load(Ordering::Acquire), 0);
            seen.extend_from_slice(bytes);
        });
        assert_eq!(n, Ok(10));
        assert_eq!(seen, b"last words");
        assert_eq!(f.writable(&page), Ok(CONS_OUT_SIZE));
    }

    #[test]
    fn full_rings_take_no_more() {
        let (page, mut f, mut b) = pair();
        assert_eq!(f.write(&page, &[1; CONS_OUT_SIZE + 5]), Ok(CONS_OUT_SIZE));
        assert_eq!(f.write(&page, &[1]), Ok(0));
        assert_eq!(b.write(&page, &[2; CONS_IN_SIZE + 5]), Ok(CONS_IN_SIZE));
        assert_eq!(b.writable(&page), Ok(0));
    }

    #[test]
    fn hostile_indices_break_the_page() {
        let (page, mut f, mut b) = pair();
        page.out_prod
            .store(CONS_OUT_SIZE as u32 + 1, Ordering::Release);
        assert_eq!(b.readable(&page), Err(RingError::Overflow));
        assert!(b.is_broken());
        assert_eq!(b.write(&page, b"x"), Err(RingError::Broken));
        // A consumer ahead of what was produced.
        page.out_cons.store(7, Ordering::Release);
        assert_eq!(f.writable(&page), Err(RingError::Overflow));
    }

    #[test]
    fn endpoints_resume_from_the_page() {
        let (page, mut f, _) = pair();
        assert_eq!(f.write(&page, b"abc"), Ok(3));
        let mut b = ConsEndpoint::new(ConsSide::Back, &page);
        let mut buf = [0u8; 8];
        assert_eq!(b.read(&page, &mut buf), Ok(3));
        let mut f2 = ConsEndpoint::new(ConsSide::Front, &page);
        assert_eq!(f2.write(&page, b"d"), Ok(1));
        assert_eq!(b.read(&page, &mut buf), Ok(1));
        assert_eq!(buf[0], b'd');
    }
}
