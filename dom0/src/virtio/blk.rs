//! A virtio-blk disk: read, write and flush of 512-byte sectors, capacity,
//! read-only flag. Reads and writes complete by interrupt (the device's
//! pirq event) when it has one, else by polling; `flush` polls, because
//! `virtio-drivers` offers no non-blocking flush.
//!
//! Besides those blocking calls, [`Blk::submit`] hands the device a request
//! and returns at once, [`Blk::complete`] gives back finished ones: several
//! requests are then in flight together. A request's buffers live on the
//! heap, owned by the disk, from submission until the device returned them,
//! whatever happens to whoever submitted it. The blocking calls first let
//! every request in flight finish (keeping their results for
//! [`Blk::complete`]), because the driver pops completions in order.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use pv_guest_sdk::println;
use pv_guest_sdk::time::Deadline;
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::mmio::MmioTransport;

use super::hal::Dom0Hal;
use super::irq::{self, Pirq};

/// Bytes of one sector.
pub const SECTOR: usize = SECTOR_SIZE;

/// Most bytes one request moves: bounds how long the device holds a
/// buffer and stays well inside QEMU's per-request limits.
const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// After this long without completion a request is reported (and waited
/// for further: the device still owns its buffers, so giving up would let
/// it write into freed memory).
const STALL_REPORT_MS: u64 = 10_000;

/// Why a disk operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkError {
    /// A write to a read-only disk.
    ReadOnly,
    /// Sectors beyond the disk's capacity.
    OutOfRange,
    /// A buffer that is empty or not a whole number of sectors.
    BadLength,
    /// The device or the driver reported an error.
    Device(virtio_drivers::Error),
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlkError::ReadOnly => f.write_str("read-only disk"),
            BlkError::OutOfRange => f.write_str("sector out of range"),
            BlkError::BadLength => f.write_str("length is not a whole number of sectors"),
            BlkError::Device(e) => write!(f, "device: {e}"),
        }
    }
}

/// Descriptors one request takes without indirect descriptors (header,
/// data, status): bounds how many fit in the queue at once.
const DESCRIPTORS_PER_REQUEST: usize = 3;

/// A request handed to the device by [`Blk::submit`], while the device
/// has it.
struct Io {
    req: BlkReq,
    resp: BlkResp,
    token: u16,
    /// The data: read into, or written from.
    data: Vec<u8>,
    /// Instead of `data`, a read straight into memory the submitter keeps
    /// for the device ([`Blk::submit_into`]): its address and length.
    into: Option<(usize, usize)>,
    write: bool,
    tag: u64,
}

impl Io {
    /// The buffer the device reads into or writes from.
    ///
    /// # Safety
    ///
    /// With `into`, the submitter's contract of [`Blk::submit_into`].
    unsafe fn buf(&mut self) -> &mut [u8] {
        match self.into {
            // SAFETY: the caller's: `len` writable bytes at `at`, kept
            // for the device until the request is complete.
            Some((at, len)) => unsafe { core::slice::from_raw_parts_mut(at as *mut u8, len) },
            None => &mut self.data,
        }
    }
}

/// A request the device finished, and how.
pub struct Done {
    /// The submitter's name for it.
    pub tag: u64,
    /// Its data buffer, the submitter's again.
    pub data: Vec<u8>,
    /// Whether it wrote.
    pub write: bool,
    /// Its outcome.
    pub result: Result<(), BlkError>,
}

/// A virtio-blk disk.
pub struct Blk {
    dev: VirtIOBlk<Dom0Hal, MmioTransport<'static>>,
    irq: Option<Pirq>,
    base: u64,
    /// Submitted, not yet returned by the device. Boxed: the device holds
    /// the header's and status's addresses, which must not move when the
    /// vector grows.
    #[allow(clippy::vec_box)]
    inflight: Vec<Box<Io>>,
    /// Boxes of finished requests, for the next submissions: no heap
    /// allocation per request.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Io>>,
    /// Returned by the device, not yet taken by [`Blk::complete`].
    done: Vec<Done>,
}

impl Blk {
    /// Initialises the device behind `transport` (registers at `base`),
    /// completing by `irq`'s event if given.
    pub fn new(
        transport: MmioTransport<'static>,
        base: u64,
        irq: Option<Pirq>,
    ) -> Result<Self, virtio_drivers::Error> {
        let mut dev = VirtIOBlk::new(transport)?;
        if irq.is_some() {
            dev.enable_interrupts();
        } else {
            dev.disable_interrupts();
        }
        Ok(Self {
            dev,
            irq,
            base,
            inflight: Vec::new(),
            spare: Vec::new(),
            done: Vec::new(),
        })
    }

    /// The registers' address (names the disk in messages).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Whether completions come by interrupt (else by polling).
    pub fn interrupt_driven(&self) -> bool {
        self.irq.is_some()
    }

    /// Capacity in sectors.
    pub fn capacity(&self) -> u64 {
        self.dev.capacity()
    }

    /// Whether the device refuses writes.
    pub fn read_only(&self) -> bool {
        self.dev.readonly()
    }

    fn check(&self, sector: u64, len: usize) -> Result<(), BlkError> {
        if len == 0 || !len.is_multiple_of(SECTOR) {
            return Err(BlkError::BadLength);
        }
        let count = (len / SECTOR) as u64;
        match sector.checked_add(count) {
            Some(end) if end <= self.capacity() => Ok(()),
            _ => Err(BlkError::OutOfRange),
        }
    }

    /// Requests that fit in the queue together.
    pub fn depth(&self) -> usize {
        usize::from(self.dev.virt_queue_size()) / DESCRIPTORS_PER_REQUEST
    }

    /// Requests submitted and not yet taken back by [`Blk::complete`].
    pub fn in_flight(&self) -> usize {
        self.inflight.len() + self.done.len()
    }

    /// Hands the device a read (`write` false) into `data` or a write of
    /// `data`, from `sector` on, and returns at once; [`Blk::complete`]
    /// gives it back. On failure nothing was submitted and `data` comes
    /// back.
    pub fn submit(
        &mut self,
        write: bool,
        sector: u64,
        data: Vec<u8>,
        tag: u64,
    ) -> Result<(), (BlkError, Vec<u8>)> {
        // SAFETY: no `into`: the buffer is `data`, owned by the request.
        unsafe { self.start(write, sector, data, None, tag) }
    }

    /// Like a read by [`Blk::submit`], but the device writes straight into
    /// the `len` bytes at `at` (a foreign page registered with
    /// [`super::hal::allow_dma`]); [`Blk::complete`] gives back an empty
    /// buffer.
    ///
    /// # Safety
    ///
    /// The bytes must stay mapped writable, and must not be relied on by
    /// dom0, until [`Blk::complete`] gave the request back.
    pub unsafe fn submit_into(
        &mut self,
        sector: u64,
        at: usize,
        len: usize,
        tag: u64,
    ) -> Result<(), BlkError> {
        // SAFETY: the caller's contract.
        unsafe { self.start(false, sector, Vec::new(), Some((at, len)), tag) }.map_err(|(e, _)| e)
    }

    /// [`Blk::submit`] and [`Blk::submit_into`].
    ///
    /// # Safety
    ///
    /// With `into`, the contract of [`Blk::submit_into`].
    unsafe fn start(
        &mut self,
        write: bool,
        sector: u64,
        data: Vec<u8>,
        into: Option<(usize, usize)>,
        tag: u64,
    ) -> Result<(), (BlkError, Vec<u8>)> {
        let len = into.map_or(data.len(), |(_, n)| n);
        let checked = if write && self.read_only() {
            Err(BlkError::ReadOnly)
        } else if len > MAX_REQUEST_BYTES {
            Err(BlkError::BadLength)
        } else if self.inflight.len() >= self.depth() {
            Err(BlkError::Device(virtio_drivers::Error::QueueFull))
        } else {
            self.check(sector, len)
        };
        if let Err(e) = checked {
            return Err((e, data));
        }
        let fresh = Io {
            req: BlkReq::default(),
            resp: BlkResp::default(),
            token: 0,
            data,
            into,
            write,
            tag,
        };
        let mut io = match self.spare.pop() {
            Some(mut b) => {
                *b = fresh;
                b
            }
            None => Box::new(fresh),
        };
        // SAFETY: with `into`, the caller's contract.
        let data: *mut [u8] = unsafe { io.buf() };
        let Io { req, resp, .. } = &mut *io;
        // SAFETY: `req`, `resp` (in the box) and `data` (`data`'s heap
        // buffer, or the caller's bytes) stay at their addresses and
        // untouched until `complete` passes them to `complete_*_blocks`: the
        // box is kept in `inflight` until then and nothing else reaches into
        // it.
        let token = unsafe {
            let data = &mut *data;
            if write {
                self.dev.write_blocks_nb(sector as usize, req, data, resp)
            } else {
                self.dev.read_blocks_nb(sector as usize, req, data, resp)
            }
        };
        match token {
            Ok(t) => {
                io.token = t;
                self.inflight.push(io);
                Ok(())
            }
            Err(e) => {
                let data = core::mem::take(&mut io.data);
                self.spare.push(io);
                Err((BlkError::Device(e), data))
            }
        }
    }

    /// Whether [`Blk::complete`] has something to give back (or, without
    /// an interrupt, requests are in flight and must be polled for).
    pub fn ready(&mut self) -> bool {
        !self.done.is_empty()
            || (!self.inflight.is_empty() && (self.irq.is_none() || self.dev.peek_used().is_some()))
    }

    /// Unless [`Blk::complete`] has something, blocks until the next event
    /// (see [`irq::wait_once`]); returns whether it has something then.
    /// `false` at once if nothing is in flight.
    pub fn wait_once(&mut self) -> bool {
        if !self.done.is_empty() {
            return true;
        }
        if self.inflight.is_empty() {
            return false;
        }
        let Self { dev, irq, .. } = self;
        irq::wait_once(irq.as_ref(), || {
            // A fired interrupt is acknowledged first, as `wait_until_used`
            // does: one taken after its completion was already seen (and
            // popped) would otherwise stay active, and the completion
            // waited for here could not raise it again.
            if let Some(irq) = irq.as_ref() {
                irq.acknowledge(|| {
                    dev.ack_interrupt();
                });
            }
            dev.peek_used().is_some()
        })
    }

    /// A request the device finished, if any. Acknowledges a fired
    /// interrupt first, so that a later completion raises it again.
    pub fn complete(&mut self) -> Option<Done> {
        if let Some(d) = self.done.pop() {
            return Some(d);
        }
        self.service();
        self.pop_used()
    }

    /// Takes the next entry of the used ring, which must be a submitted
    /// request (the blocking calls settle everything first).
    fn pop_used(&mut self) -> Option<Done> {
        let token = self.dev.peek_used()?;
        let i = self.inflight.iter().position(|io| io.token == token)?;
        let mut io = self.inflight.swap_remove(i);
        // SAFETY: the same bytes `start` gave the device, still kept.
        let data: *mut [u8] = unsafe { io.buf() };
        let Io {
            req,
            resp,
            token,
            write,
            ..
        } = &mut *io;
        // SAFETY: the same buffers `submit` gave the device for `token`,
        // which it has put in the used ring.
        let result = unsafe {
            let data = &mut *data;
            if *write {
                self.dev.complete_write_blocks(*token, req, data, resp)
            } else {
                self.dev.complete_read_blocks(*token, req, data, resp)
            }
        }
        .map_err(BlkError::Device);
        let done = Done {
            tag: io.tag,
            data: core::mem::take(&mut io.data),
            write: io.write,
            result,
        };
        // At most one box per request the queue holds is kept.
        self.spare.push(io);
        Some(done)
    }

    /// Waits until every submitted request is back, keeping them for
    /// [`Blk::complete`]: the blocking calls need the queue to themselves,
    /// and memory given by [`Blk::submit_into`] is free again after it.
    pub fn settle(&mut self) {
        while !self.inflight.is_empty() {
            self.wait_for_any();
            while let Some(d) = self.pop_used() {
                self.done.push(d);
            }
        }
    }

    /// Reads `buf.len()` bytes (whole sectors) from `sector` on.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.check(sector, buf.len())?;
        self.settle();
        for (i, chunk) in buf.chunks_mut(MAX_REQUEST_BYTES).enumerate() {
            let at = sector + (i * MAX_REQUEST_BYTES / SECTOR) as u64;
            self.read_chunk(at, chunk)?;
        }
        Ok(())
    }

    /// Writes `buf` (whole sectors) from `sector` on. Acknowledged by the
    /// device; durable only after [`Blk::flush`].
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlkError> {
        if self.read_only() {
            return Err(BlkError::ReadOnly);
        }
        self.check(sector, buf.len())?;
        self.settle();
        for (i, chunk) in buf.chunks(MAX_REQUEST_BYTES).enumerate() {
            let at = sector + (i * MAX_REQUEST_BYTES / SECTOR) as u64;
            self.write_chunk(at, chunk)?;
        }
        Ok(())
    }

    /// Asks the device to make every acknowledged write durable.
    pub fn flush(&mut self) -> Result<(), BlkError> {
        self.settle();
        let r = self.dev.flush().map_err(BlkError::Device);
        // The flush's completion may have raised the interrupt.
        self.service();
        r
    }

    fn read_chunk(&mut self, sector: u64, chunk: &mut [u8]) -> Result<(), BlkError> {
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        // SAFETY: `req`, `chunk` and `resp` are not touched until
        // `complete_read_blocks` below, called with the same buffers; this
        // function does not return before it.
        let token = unsafe {
            self.dev
                .read_blocks_nb(sector as usize, &mut req, chunk, &mut resp)
        }
        .map_err(BlkError::Device)?;
        self.wait_for(token);
        // SAFETY: the same buffers as `read_blocks_nb` got, and the device
        // has returned them (`wait_for`).
        unsafe { self.dev.complete_read_blocks(token, &req, chunk, &mut resp) }
            .map_err(BlkError::Device)
    }

    fn write_chunk(&mut self, sector: u64, chunk: &[u8]) -> Result<(), BlkError> {
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        // SAFETY: as in `read_chunk`: the buffers stay untouched and alive
        // until `complete_write_blocks`.
        let token = unsafe {
            self.dev
                .write_blocks_nb(sector as usize, &mut req, chunk, &mut resp)
        }
        .map_err(BlkError::Device)?;
        self.wait_for(token);
        // SAFETY: the same buffers as `write_blocks_nb` got, returned.
        unsafe {
            self.dev
                .complete_write_blocks(token, &req, chunk, &mut resp)
        }
        .map_err(BlkError::Device)
    }

    /// Acknowledges the interrupt if it fired.
    fn service(&mut self) {
        let Self { dev, irq, .. } = self;
        if let Some(irq) = irq {
            irq.acknowledge(|| {
                dev.ack_interrupt();
            });
        }
    }

    /// Waits until request `token` is in the used ring.
    fn wait_for(&mut self, token: u16) {
        self.wait_until_used(|t| t == token);
    }

    /// Waits until some request is in the used ring.
    fn wait_for_any(&mut self) {
        self.wait_until_used(|_| true);
    }

    /// Waits until the used ring's next entry satisfies `want`. Each
    /// wake-up acknowledges a fired interrupt first, so the next completion
    /// can raise it again.
    fn wait_until_used(&mut self, want: impl Fn(u16) -> bool) {
        let Self { dev, irq, base, .. } = self;
        loop {
            let deadline = Deadline::after_ms(STALL_REPORT_MS).0;
            let done = irq::wait(
                irq.as_ref(),
                || {
                    if let Some(irq) = irq.as_ref() {
                        irq.acknowledge(|| {
                            dev.ack_interrupt();
                        });
                    }
                    dev.peek_used().is_some_and(&want)
                },
                deadline,
            );
            if done {
                return;
            }
            println!("dom0: virtio-blk {base:#x}: request outstanding for {STALL_REPORT_MS} ms");
        }
    }
}
