//! A virtio-blk disk: read, write and flush of 512-byte sectors, capacity,
//! read-only flag. Reads and writes complete by interrupt (the device's
//! pirq event) when it has one, else by polling; `flush` polls, because
//! `virtio-drivers` offers no non-blocking flush.

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

/// A virtio-blk disk.
pub struct Blk {
    dev: VirtIOBlk<Dom0Hal, MmioTransport<'static>>,
    irq: Option<Pirq>,
    base: u64,
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
        Ok(Self { dev, irq, base })
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

    /// Reads `buf.len()` bytes (whole sectors) from `sector` on.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.check(sector, buf.len())?;
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
        for (i, chunk) in buf.chunks(MAX_REQUEST_BYTES).enumerate() {
            let at = sector + (i * MAX_REQUEST_BYTES / SECTOR) as u64;
            self.write_chunk(at, chunk)?;
        }
        Ok(())
    }

    /// Asks the device to make every acknowledged write durable.
    pub fn flush(&mut self) -> Result<(), BlkError> {
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

    /// Waits until request `token` is in the used ring. Each wake-up
    /// acknowledges a fired interrupt first, so the next completion can
    /// raise it again.
    fn wait_for(&mut self, token: u16) {
        let Self { dev, irq, base } = self;
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
                    dev.peek_used() == Some(token)
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
