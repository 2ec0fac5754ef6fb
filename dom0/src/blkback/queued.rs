//! Requests in flight at disks that take several at once (virtio-blk):
//! handed to the disk as the ring offers them, answered as the disk
//! finishes them (the ring carries ids, so out of order), each data buffer
//! owned by the disk until it gives it back.

use alloc::vec::Vec;

use pv_guest_sdk::abi::blkif::{BlkifOp, BlkifRequest, BlkifStatus};
use pv_guest_sdk::abi::ring::RingError;

use super::copier::Copier;
use super::disk::{BlockDevice, Disk, Queue, Real};
use super::engine::{self, Grants, IoFailed};
use super::request::{Checked, check};
use super::service::{PER_PASS, Phase, Stop, Vbd, answer_with, respond};

/// Data buffers kept for reuse between requests in flight.
const POOL: usize = 16;

/// A request at a real disk that takes several at once. Only what its
/// answer needs: every move of it is a memcpy (dom0's memory is uncached).
struct Pending {
    /// The disk's name for it.
    tag: u64,
    /// [`Vbd::serial`] of the virtual disk it came from.
    vbd: u64,
    /// The request's `id` and `op`, echoed in its response.
    id: u64,
    op: u8,
    checked: Checked,
    /// A read the disk made straight into the front end's page (nothing
    /// to copy out).
    direct: bool,
}

/// What requests in flight at queued disks need besides their disk.
#[derive(Default)]
pub(super) struct InFlight {
    /// The requests at the disks: few (the disks' queue depths), and a
    /// vector keeps its room between requests where a map allocated and
    /// freed a node for the one request of a lone reader.
    pending: Vec<Pending>,
    /// The next tag.
    next_tag: u64,
    /// Spare data buffers.
    pool: Vec<Vec<u8>>,
}

impl InFlight {
    /// A tag no request in flight has.
    fn take_tag(&mut self) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        tag
    }

    /// Notes `req` of the virtual disk `vbd` ([`Vbd::serial`]), checked as
    /// `checked`, as at the disk under `tag`; `direct`: read straight into
    /// the front end's page.
    fn track(&mut self, vbd: u64, tag: u64, req: &BlkifRequest, checked: &Checked, direct: bool) {
        self.pending.push(Pending {
            tag,
            vbd,
            id: req.id,
            op: req.op,
            checked: *checked,
            direct,
        });
    }
}

/// Serves `v`'s ring on a disk with a queue: every request it can take is
/// handed to the disk at once and answered by [`collect`] when the disk
/// finished it. A write's data is copied in before it is submitted; a
/// flush waits until every earlier request of this ring is done, then runs
/// (its data written, the disk flushed) before anything after it is taken.
///
/// When the ring is empty and the one request at the disk is `v`'s (a
/// front end waiting on a single request: a 4 KiB read), blocks until the
/// next event and, if that was the disk's, answers it: its completion then
/// costs no pass of dom0's main loop (waking, every back end's poll,
/// blocking again). No timer is armed for this (a `set_timer` hypercall
/// per request): any other event ends the wait too, and leaves the
/// request to the loop, as a timer did. Several requests at the disk take
/// the queued way, so a busy front end never holds up another's
/// completions.
pub(super) fn serve(
    v: &mut Vbd,
    dev: &mut dyn BlockDevice,
    t: &mut InFlight,
    buf: &mut Vec<u8>,
) -> Result<Stop, RingError> {
    let stop = take_all(v, dev, t, buf)?;
    if matches!(stop, Stop::Empty)
        && v.in_flight == 1
        && t.pending.len() == 1
        && let Some(q) = dev.queue()
        && q.wait()
    {
        // The only request at the disk is `v`'s: every completion is.
        drain(q, core::slice::from_mut(v), t);
    }
    Ok(stop)
}

/// Hands every request of `v`'s ring it can take to the disk.
fn take_all(
    v: &mut Vbd,
    dev: &mut dyn BlockDevice,
    t: &mut InFlight,
    buf: &mut Vec<u8>,
) -> Result<Stop, RingError> {
    let Phase::Connected(c) = &mut v.phase else {
        return Ok(Stop::Empty);
    };
    let mut copier = Copier::new(v.front, c.cache.as_mut());
    let mut taken = 0;
    loop {
        if let Some((req, checked)) = v.flush {
            if v.in_flight > 0 {
                return Ok(Stop::Wait);
            }
            v.flush = None;
            let status = engine::execute(&checked, &mut Real(&mut *dev), &mut copier, buf);
            respond(&mut c.ring, &req, status)?;
            v.requests += 1;
            v.unpublished = true;
        }
        if taken >= PER_PASS {
            return Ok(Stop::Limit);
        }
        let Some(q) = dev.queue() else {
            return Ok(Stop::Empty);
        };
        if !q.room() {
            return Ok(Stop::Wait);
        }
        let Some(req) = c.ring.take()? else {
            return Ok(Stop::Empty);
        };
        taken += 1;
        // Looked at in place: each move of a `Checked` is a memcpy.
        let result = check(&req, &v.vdisk);
        let checked = match &result {
            Ok(ch) if ch.op == BlkifOp::Flush => {
                v.flush = Some((req, *ch));
                continue;
            }
            Ok(ch) => ch,
            Err(status) => {
                let status = *status;
                respond(&mut c.ring, &req, status)?;
                v.requests += 1;
                v.unpublished = true;
                continue;
            }
        };
        let write = checked.op == BlkifOp::Write;
        // Zero copy: a one-page read into a persistently mapped page goes
        // straight there (the 4 KiB reads of a file system or a benchmark).
        if !write
            && checked.nr == 1
            && let Some((at, len)) = copier.dma_target(&checked.segs[0])
        {
            let tag = t.take_tag();
            // SAFETY: the page stays mapped writable in `c.cache` until the
            // disk gave back every request of this ring: the back end lets
            // the disk settle before it drops the cache
            // (`service::disconnect`); dom0 reads nothing of the page.
            if unsafe { q.submit_into(checked.sector, at, len, tag) } {
                t.track(v.serial, tag, &req, checked, true);
                v.in_flight += 1;
                v.peak = v.peak.max(v.in_flight);
            } else {
                respond(&mut c.ring, &req, BlkifStatus::IoError)?;
                v.requests += 1;
                v.unpublished = true;
            }
            continue;
        }
        let mut data = t.pool.pop().unwrap_or_default();
        // Not cleared: a read's buffer is filled whole by the disk before
        // anything is copied out, a write's is copied in whole.
        data.resize(checked.bytes, 0);
        let refused = if write && !copier.copy_in(checked.segments(), &mut data) {
            t.pool.push(data);
            Some(BlkifStatus::BadRequest)
        } else {
            let tag = t.take_tag();
            match q.submit(write, checked.sector, data, tag) {
                Ok(()) => {
                    t.track(v.serial, tag, &req, checked, false);
                    v.in_flight += 1;
                    v.peak = v.peak.max(v.in_flight);
                    None
                }
                Err(data) => {
                    t.pool.push(data);
                    Some(BlkifStatus::IoError)
                }
            }
        };
        if let Some(status) = refused {
            respond(&mut c.ring, &req, status)?;
            v.requests += 1;
            v.unpublished = true;
        }
    }
}

/// Answers every request a queued disk finished: a read's data is copied
/// out first. A completion whose virtual disk is gone (its domain was
/// destroyed) or disconnected is dropped; its buffer, which the disk gave
/// back, is only now reused or freed. Responses are published by [`super::service::poll`],
/// once per ring.
pub(super) fn collect(disks: &mut [Disk], vbds: &mut [Vbd], t: &mut InFlight) {
    for d in disks.iter_mut() {
        if let Some(q) = d.dev.queue() {
            drain(q, vbds, t);
        }
    }
}

/// Answers every request `q` finished, as [`collect`] does.
fn drain(q: &mut dyn Queue, vbds: &mut [Vbd], t: &mut InFlight) {
    while let Some((tag, data, result)) = q.complete() {
        if let Some(i) = t.pending.iter().position(|p| p.tag == tag) {
            // Answered in place: moving it out would copy it.
            let p = &t.pending[i];
            if let Some(v) = vbds.iter_mut().find(|v| v.serial == p.vbd) {
                answer(v, p, &data, result);
            }
            if i + 1 == t.pending.len() {
                t.pending.truncate(i);
            } else {
                t.pending.swap_remove(i);
            }
        }
        if t.pool.len() < POOL {
            t.pool.push(data);
        }
    }
}

/// Answers `p`, a request of `v` the disk finished with `result` (a read's
/// data in `data`, copied out first).
fn answer(v: &mut Vbd, p: &Pending, data: &[u8], result: Result<(), IoFailed>) {
    v.in_flight = v.in_flight.saturating_sub(1);
    let Phase::Connected(c) = &mut v.phase else {
        return;
    };
    let read = p.checked.op == BlkifOp::Read;
    let status = match result {
        Err(_) => BlkifStatus::IoError,
        Ok(())
            if read
                && !p.direct
                && !Copier::new(v.front, c.cache.as_mut()).copy_out(p.checked.segments(), data) =>
        {
            BlkifStatus::BadRequest
        }
        Ok(()) => BlkifStatus::Okay,
    };
    match answer_with(&mut c.ring, p.id, p.op, status) {
        Ok(()) => {
            v.requests += 1;
            v.unpublished = true;
        }
        Err(e) => {
            v.broken.get_or_insert(e);
        }
    }
}
