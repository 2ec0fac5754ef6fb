//! One interface's data path: frames from the front end's tx ring into the
//! switch, frames the switch queued for it into the buffers of its rx ring.
//! Every request is copied out of the ring before it is looked at
//! (`tern_abi::ring`) and checked (`NetifRequest::tx_frame` /
//! `rx_buffer`); a bad one gets `NETIF_RSP_ERROR`, never a panic. A ring
//! whose indices are impossible makes [`Datapath`] fail with
//! [`RingError`], and the caller drops the interface.
//!
//! A frame whose source MAC is not the interface's own is dropped and
//! counted (anti-spoofing: a domain cannot pose as another on the switch
//! nor poison its table); its request gets `NETIF_RSP_DROPPED`.
//!
//! The grant copies go through [`FrameCopy`] so that this logic runs on the
//! host against in-memory rings.

use alloc::vec;
use alloc::vec::Vec;

use tern_abi::netif::{
    NETIF_RING_SLOTS, NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NetifRequest,
    NetifResponse,
};
use tern_abi::ring::{Back, RingError};

use crate::switch::{Mac, PortId, Switch};

/// Requests handled per batch of grant copies (one hypercall).
pub const BATCH: usize = 32;

/// Copies between dom0's buffers and pages the front end granted.
pub trait FrameCopy {
    /// Fills each `dst` from its `(gref, offset)`; one result per copy.
    fn read_guest(&mut self, src: &[(u32, usize)], dst: &mut [Vec<u8>]) -> Vec<bool>;
    /// Writes each frame to its `(gref, offset)`; one result per copy.
    fn write_guest(&mut self, dst: &[(u32, usize)], src: &[Vec<u8>]) -> Vec<bool>;
}

/// What one pass moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Frames taken from the tx ring into the switch.
    pub sent: u64,
    /// Frames put into rx buffers.
    pub received: u64,
    /// Requests answered with an error.
    pub refused: u64,
    /// Frames dropped because their source MAC was not the interface's.
    pub spoofed: u64,
    /// Whether the front end asked to be notified of the responses.
    pub notify: bool,
}

/// The two back rings of an interface.
pub struct Datapath<'r> {
    tx: Back<'r, NetifRequest, NetifResponse>,
    rx: Back<'r, NetifRequest, NetifResponse>,
    mac: Mac,
}

const _: () = assert!(Back::<'static, NetifRequest, NetifResponse>::SIZE == NETIF_RING_SLOTS);

fn answer(id: u16, status: i32) -> NetifResponse {
    NetifResponse {
        id,
        flags: 0,
        status,
    }
}

impl<'r> Datapath<'r> {
    /// The back ends of the two rings the front end initialised, for the
    /// interface whose MAC is `mac` (the only source its frames may have).
    pub fn new(
        tx: Back<'r, NetifRequest, NetifResponse>,
        rx: Back<'r, NetifRequest, NetifResponse>,
        mac: Mac,
    ) -> Self {
        Self { tx, rx, mac }
    }

    /// Moves what can be moved both ways until nothing is left, then asks
    /// both rings to notify dom0 of new requests (the final check).
    pub fn pump(
        &mut self,
        copy: &mut impl FrameCopy,
        switch: &mut Switch,
        port: PortId,
        now_ms: u64,
    ) -> Result<Moved, RingError> {
        let mut m = Moved::default();
        loop {
            let before = (m.sent, m.received, m.refused + m.spoofed);
            self.tx_batch(copy, switch, port, now_ms, &mut m)?;
            self.rx_batch(copy, switch, port, &mut m)?;
            if before == (m.sent, m.received, m.refused + m.spoofed) {
                // Nothing moved: ask for an event before dom0 sleeps.
                let more_tx = self.tx.final_check()?;
                let more_rx = switch.queued(port) > 0 && self.rx.final_check()?;
                if !more_tx && !more_rx {
                    return Ok(m);
                }
            }
        }
    }

    /// Up to [`BATCH`] frames from the tx ring into the switch.
    fn tx_batch(
        &mut self,
        copy: &mut impl FrameCopy,
        switch: &mut Switch,
        port: PortId,
        now_ms: u64,
        m: &mut Moved,
    ) -> Result<(), RingError> {
        let mut reqs = Vec::new();
        while reqs.len() < BATCH {
            match self.tx.take()? {
                Some(r) => reqs.push(r),
                None => break,
            }
        }
        if reqs.is_empty() {
            return Ok(());
        }
        let mut srcs = Vec::new();
        let mut bufs = Vec::new();
        for r in &reqs {
            if let Ok(len) = r.tx_frame() {
                srcs.push((r.gref, usize::from(r.offset)));
                bufs.push(vec![0u8; len]);
            }
        }
        let ok = copy.read_guest(&srcs, &mut bufs);
        let mut copied = ok.iter().zip(bufs);
        for r in &reqs {
            let status = match r.tx_frame() {
                Ok(_) => match copied.next() {
                    Some((true, frame)) if frame.get(6..12) != Some(&self.mac[..]) => {
                        m.spoofed += 1;
                        NETIF_RSP_DROPPED
                    }
                    Some((true, frame)) => {
                        switch.input(port, &frame, now_ms);
                        m.sent += 1;
                        NETIF_RSP_OKAY
                    }
                    _ => NETIF_RSP_ERROR,
                },
                Err(_) => NETIF_RSP_ERROR,
            };
            if status == NETIF_RSP_ERROR {
                m.refused += 1;
            }
            // Cannot be Full: this request was taken and not answered.
            self.tx.push(&answer(r.id, status))?;
        }
        m.notify |= self.tx.publish();
        Ok(())
    }

    /// Up to [`BATCH`] frames the switch queued for `port` into rx buffers.
    fn rx_batch(
        &mut self,
        copy: &mut impl FrameCopy,
        switch: &mut Switch,
        port: PortId,
        m: &mut Moved,
    ) -> Result<(), RingError> {
        // Each request taken, with the index of the frame it gets, if any.
        let mut plan: Vec<(NetifRequest, Option<usize>)> = Vec::new();
        let mut dsts = Vec::new();
        let mut frames = Vec::new();
        while plan.len() < BATCH && switch.queued(port) > 0 {
            let Some(r) = self.rx.take()? else { break };
            // The frame goes only into a buffer that holds it whole; a
            // buffer too small costs the frame (the front end's bug).
            let frame = match r.rx_buffer() {
                Ok(room) => switch.pop(port).filter(|f| f.len() <= room),
                Err(_) => None,
            };
            let slot = frame.map(|f| {
                dsts.push((r.gref, usize::from(r.offset)));
                frames.push(f);
                frames.len() - 1
            });
            plan.push((r, slot));
        }
        if plan.is_empty() {
            return Ok(());
        }
        let ok = copy.write_guest(&dsts, &frames);
        for (r, slot) in &plan {
            let status = slot
                .filter(|&i| ok.get(i) == Some(&true))
                .map_or(NETIF_RSP_ERROR, |i| frames[i].len() as i32);
            if status > 0 {
                m.received += 1;
            } else {
                m.refused += 1;
            }
            self.rx.push(&answer(r.id, status))?;
        }
        m.notify |= self.rx.publish();
        Ok(())
    }
}

#[cfg(test)]
#[path = "datapath_tests.rs"]
mod tests;
