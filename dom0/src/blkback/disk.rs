//! dom0's own disks, whatever drives them: the one interface the block back
//! end (and anything else in dom0 that reads a disk) uses, so that a
//! virtio-blk disk and an SD card are served alike.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::engine::{Backing, IoFailed};
use crate::virtio::blk::Blk;

/// Bytes of one sector, the unit every [`BlockDevice`] is addressed in.
pub const SECTOR: usize = 512;

/// A disk of 512-byte sectors.
///
/// `Send`: the back end keeps its disks behind a lock shared by dom0's loops.
pub trait BlockDevice: Send {
    /// Capacity in sectors.
    fn capacity(&self) -> u64;
    /// Whether the disk refuses writes.
    fn read_only(&self) -> bool;
    /// Reads `buf.len()` bytes (whole sectors) from `sector` on.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoFailed>;
    /// Writes `buf` (whole sectors) from `sector` on; returns once the
    /// device completed it.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoFailed>;
    /// Returns once every completed write is durable.
    fn flush(&mut self) -> Result<(), IoFailed>;
    /// The disk's request queue, if it takes several requests at once;
    /// `None` (the default): the back end uses the blocking calls only.
    fn queue(&mut self) -> Option<&mut dyn Queue> {
        None
    }
}

/// A disk that keeps several requests in flight. Each request's buffer
/// belongs to the disk from [`Queue::submit`] until [`Queue::complete`]
/// gives it back, so nothing else can touch memory the device may still
/// write. The blocking calls of [`BlockDevice`] still work: they first let
/// every request in flight finish, keeping their completions.
pub trait Queue {
    /// Whether [`Queue::submit`] can take another request now.
    fn room(&self) -> bool;
    /// Starts a read into `data` (`write` false) or a write of `data` from
    /// `sector` on, named `tag`. On failure `data` comes back.
    fn submit(&mut self, write: bool, sector: u64, data: Vec<u8>, tag: u64) -> Result<(), Vec<u8>>;
    /// Starts a read of `len` bytes from `sector` on straight into the
    /// bytes at `at`, a foreign page registered for DMA
    /// ([`crate::virtio::hal::allow_dma`]); `false` if it could not. Its
    /// completion gives back an empty buffer.
    ///
    /// # Safety
    ///
    /// The bytes stay mapped writable, and dom0 does not rely on them,
    /// until [`Queue::complete`] gave the request back (or
    /// [`Queue::settle`] returned).
    unsafe fn submit_into(&mut self, sector: u64, at: usize, len: usize, tag: u64) -> bool;
    /// Waits until the disk gave every request back (keeping their
    /// completions for [`Queue::complete`]).
    fn settle(&mut self);
    /// Whether [`Queue::complete`] has something (or must be polled).
    fn ready(&mut self) -> bool;
    /// A finished request: its tag, its buffer and its outcome.
    fn complete(&mut self) -> Option<(u64, Vec<u8>, Result<(), IoFailed>)>;
    /// Unless [`Queue::complete`] has something, blocks until the next
    /// event of any kind (or yields once, without an interrupt); returns
    /// whether it has something then.
    fn wait(&mut self) -> bool;
}

impl Queue for Blk {
    fn room(&self) -> bool {
        self.in_flight() < self.depth()
    }
    fn submit(&mut self, write: bool, sector: u64, data: Vec<u8>, tag: u64) -> Result<(), Vec<u8>> {
        Blk::submit(self, write, sector, data, tag).map_err(|(_, d)| d)
    }
    unsafe fn submit_into(&mut self, sector: u64, at: usize, len: usize, tag: u64) -> bool {
        // SAFETY: the caller's contract, which is `Blk::submit_into`'s.
        unsafe { Blk::submit_into(self, sector, at, len, tag) }.is_ok()
    }
    fn settle(&mut self) {
        Blk::settle(self);
    }
    fn ready(&mut self) -> bool {
        Blk::ready(self)
    }
    fn wait(&mut self) -> bool {
        self.wait_once()
    }
    fn complete(&mut self) -> Option<(u64, Vec<u8>, Result<(), IoFailed>)> {
        Blk::complete(self).map(|d| (d.tag, d.data, d.result.map_err(|_| IoFailed)))
    }
}

impl BlockDevice for Blk {
    fn capacity(&self) -> u64 {
        Blk::capacity(self)
    }
    fn read_only(&self) -> bool {
        Blk::read_only(self)
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoFailed> {
        Blk::read(self, sector, buf).map_err(|_| IoFailed)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoFailed> {
        Blk::write(self, sector, buf).map_err(|_| IoFailed)
    }
    fn flush(&mut self) -> Result<(), IoFailed> {
        Blk::flush(self).map_err(|_| IoFailed)
    }
    fn queue(&mut self) -> Option<&mut dyn Queue> {
        Some(self)
    }
}

/// A disk with the name `disk = ["target=..."]` entries call it by.
pub struct Disk {
    /// `vda`, `vdb`, ... for virtio disks; `mmc0`, ... for SD cards.
    pub name: String,
    /// The device.
    pub dev: Box<dyn BlockDevice>,
}

/// The real disk behind a virtual one, as the engine sees it.
pub struct Real<'a>(pub &'a mut dyn BlockDevice);

impl Backing for Real<'_> {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoFailed> {
        self.0.read(sector, buf)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoFailed> {
        self.0.write(sector, buf)
    }
    fn flush(&mut self) -> Result<(), IoFailed> {
        self.0.flush()
    }
}
