//! Serving one block ring: take each request (copied out of the ring before
//! it is looked at), check it ([`super::request::check`]), move its data
//! between the front end's granted pages and one buffer of dom0's own, do
//! the disk work, and answer. Generic over the ring, the real disk and the
//! page copies, so that it runs on the host against fakes.
//!
//! A write is answered only after [`Backing::write`] returned (the real
//! disk completed it), a flush only after [`Backing::flush`] returned.
//! Nothing the front end writes can make this panic: a broken ring index is
//! the ring's [`RingError`], anything else an error status.

use alloc::vec::Vec;

use pv_guest_sdk::abi::blkif::{BlkifOp, BlkifRequest, BlkifResponse, BlkifStatus};
use pv_guest_sdk::abi::ring::{Back, RingError};
use pv_guest_sdk::ring::BackRing;

use super::request::{Checked, Seg, VDisk, check};

/// The real disk failed a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoFailed;

/// The real disk, addressed in 512-byte sectors of the real disk.
pub trait Backing {
    /// Reads `buf.len()` bytes (whole sectors) from `sector` on.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoFailed>;
    /// Writes `buf` from `sector` on; returns once the disk completed it.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoFailed>;
    /// Returns once every completed write is durable.
    fn flush(&mut self) -> Result<(), IoFailed>;
}

/// Copies between the front end's granted pages and a buffer of dom0.
pub trait Grants {
    /// Copies each segment's bytes, in order, into `buf` (as long as their
    /// sum). `false` if any copy failed.
    fn copy_in(&mut self, segs: &[Seg], buf: &mut [u8]) -> bool;
    /// Copies `buf` into the segments, in order. `false` if any failed.
    fn copy_out(&mut self, segs: &[Seg], buf: &[u8]) -> bool;
}

/// The back end of a block ring.
pub trait RequestRing {
    /// The next request, copied out of the ring.
    fn take(&mut self) -> Result<Option<BlkifRequest>, RingError>;
    /// Answers the oldest unanswered request.
    fn push(&mut self, rsp: &BlkifResponse) -> Result<(), RingError>;
}

impl RequestRing for Back<'_, BlkifRequest, BlkifResponse> {
    fn take(&mut self) -> Result<Option<BlkifRequest>, RingError> {
        Back::take(self)
    }
    fn push(&mut self, rsp: &BlkifResponse) -> Result<(), RingError> {
        Back::push(self, rsp)
    }
}

impl RequestRing for BackRing<BlkifRequest, BlkifResponse> {
    fn take(&mut self) -> Result<Option<BlkifRequest>, RingError> {
        BackRing::take(self)
    }
    fn push(&mut self, rsp: &BlkifResponse) -> Result<(), RingError> {
        BackRing::push(self, rsp)
    }
}

/// What one [`serve`] pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Requests answered (published by the caller).
    pub answered: usize,
    /// Of those, answered with an error status.
    pub refused: usize,
    /// The pass stopped at its limit: requests may be waiting.
    pub more: bool,
}

/// Serves up to `max` requests of `ring` on `disk`. `buf` is dom0's data
/// buffer (grown as needed, kept between passes). Errors only when the
/// front end broke the ring: the caller must stop using it.
pub fn serve(
    ring: &mut impl RequestRing,
    disk: &VDisk,
    backing: &mut impl Backing,
    grants: &mut impl Grants,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Pass, RingError> {
    let mut pass = Pass::default();
    while pass.answered < max {
        let Some(req) = ring.take()? else {
            return Ok(pass);
        };
        let status = match check(&req, disk) {
            Ok(c) => execute(&c, backing, grants, buf),
            Err(s) => s,
        };
        ring.push(&BlkifResponse {
            id: req.id,
            op: req.op,
            status: status.raw(),
            ..BlkifResponse::default()
        })?;
        pass.answered += 1;
        if status != BlkifStatus::Okay {
            pass.refused += 1;
        }
    }
    pass.more = true;
    Ok(pass)
}

/// Does a checked request's work, blocking until the disk finished it.
pub fn execute(
    c: &Checked,
    backing: &mut impl Backing,
    grants: &mut impl Grants,
    buf: &mut Vec<u8>,
) -> BlkifStatus {
    // Grown, never cleared: a read fills every byte it answers with (the
    // disk wrote them all, or the request failed and nothing is copied
    // out), a write copies every byte in first. Clearing cost a 4 KiB
    // memset per request.
    if buf.len() < c.bytes {
        buf.resize(c.bytes, 0);
    }
    let data = &mut buf[..c.bytes];
    match c.op {
        BlkifOp::Read => {
            if backing.read(c.sector, data).is_err() {
                return BlkifStatus::IoError;
            }
            if !grants.copy_out(c.segments(), data) {
                return BlkifStatus::BadRequest;
            }
        }
        BlkifOp::Write | BlkifOp::Flush => {
            if c.bytes > 0 {
                if !grants.copy_in(c.segments(), data) {
                    return BlkifStatus::BadRequest;
                }
                if backing.write(c.sector, data).is_err() {
                    return BlkifStatus::IoError;
                }
            }
            if c.op == BlkifOp::Flush && backing.flush().is_err() {
                return BlkifStatus::IoError;
            }
        }
    }
    BlkifStatus::Okay
}
