//! A virtual disk (`specs/blkif.md`): the front end of a block device whose
//! back end (dom0) serves it from a real disk.
//!
//! ```ignore
//! use pv_guest_sdk::blk::BlockDevice;
//! let mut disk = BlockDevice::open(0)?;      // the domain's first `disk`
//! let mut buf = [0u8; 4096];
//! disk.read(0, &mut buf)?;                    // sectors of 512 bytes
//! disk.write(8, &buf)?;                       // answered once on the disk
//! disk.flush()?;                              // ... and durable
//! ```
//!
//! [`BlockDevice::open`] runs the store handshake with dom0 (which wrote
//! the device's entries when it created this domain), sets up a ring and a
//! pool of data pages granted to dom0. A read or write of any length is cut
//! into requests of up to `BLKIF_MAX_SEGMENTS` pages, of which up to
//! [`DEPTH`] are in flight at once. Failures are [`BlkError`] values; the
//! back end's refusals carry its [`BlkifStatus`].

use alloc::vec::Vec;
use core::fmt;

use tern_abi::blkif::{
    BLKIF_MAX_SEGMENTS, BLKIF_SECTOR_SIZE, BLKIF_SECTORS_PER_PAGE, BlkifOp, BlkifRequest,
    BlkifResponse, BlkifSegment, DEVICE_KIND, KEY_FEATURE_FLUSH, KEY_FEATURE_PERSISTENT, KEY_MODE,
    KEY_SECTOR_SIZE, KEY_SECTORS,
};
use tern_abi::domctl::DomainId;
use tern_abi::time::ns_to_ticks;

pub use tern_abi::blkif::BlkifStatus;

use crate::events;
use crate::grant::{Grant, PAGE_BYTES, Page, load_words, store_words};
use crate::ring::{Fault, FrontRing};
use crate::store::{self, Device, FrontDetails, Store};
use crate::time::Deadline;

/// Requests one [`BlockDevice`] keeps in flight at most.
pub const DEPTH: usize = 4;
/// Bytes one request moves at most.
pub const REQUEST_BYTES: usize = BLKIF_MAX_SEGMENTS * PAGE_BYTES;
/// How long the handshake, and each wait for a response, may take.
const WAIT_MS: u64 = 30_000;
const SECTOR: usize = BLKIF_SECTOR_SIZE as usize;

/// Why a block operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The store refused or broke while setting up.
    Store(store::Error),
    /// A hypercall failed (granting, events).
    Call(crate::Error),
    /// The back end broke the ring, or did not answer in time.
    Ring(Fault),
    /// The back end answered with an error status.
    Status(BlkifStatus),
    /// The back end answered with a status this SDK does not know, or
    /// with a response to no request of ours.
    Protocol,
    /// A buffer that is empty or not a whole number of sectors.
    BadLength,
    /// No such device (`device/vbd/<index>` missing), or its back end
    /// published keys that do not parse.
    NoDevice,
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => write!(f, "store: {e}"),
            Self::Call(e) => write!(f, "{e}"),
            Self::Ring(e) => write!(f, "ring: {e}"),
            Self::Status(s) => write!(f, "back end: {}", s.name()),
            Self::Protocol => f.write_str("malformed response"),
            Self::BadLength => f.write_str("length is not a whole number of sectors"),
            Self::NoDevice => f.write_str("no such block device"),
        }
    }
}

impl From<store::Error> for BlkError {
    fn from(e: store::Error) -> Self {
        Self::Store(e)
    }
}

impl From<crate::Error> for BlkError {
    fn from(e: crate::Error) -> Self {
        Self::Call(e)
    }
}

impl From<Fault> for BlkError {
    fn from(e: Fault) -> Self {
        Self::Ring(e)
    }
}

impl From<crate::ring::RingError> for BlkError {
    fn from(e: crate::ring::RingError) -> Self {
        Self::Ring(Fault::Ring(e))
    }
}

/// The data of one transfer.
enum Data<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Data<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Read(b) => b.len(),
            Self::Write(b) => b.len(),
        }
    }
}

/// A request in flight: which part of the caller's buffer it moves.
#[derive(Clone, Copy)]
struct Slot {
    at: usize,
    len: usize,
}

/// A virtual disk.
pub struct BlockDevice {
    // Declared before `pages`: the back end may only lose the pages after
    // the ring is gone.
    ring: FrontRing<BlkifRequest, BlkifResponse>,
    /// [`DEPTH`] groups of `BLKIF_MAX_SEGMENTS` pages granted to the back end.
    pages: Vec<Grant>,
    store: Store,
    backend: DomainId,
    sectors: u64,
    sector_size: u32,
    read_only: bool,
    flush: bool,
    /// [`WAIT_MS`] in counter ticks, worked out once: the conversion is a
    /// 128-bit division, which two per request made a tenth of a read.
    wait_ticks: u64,
}

impl fmt::Debug for BlockDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BlockDevice({} sectors, back end domain {})",
            self.sectors, self.backend.0
        )
    }
}

fn number(v: Result<alloc::string::String, store::Error>) -> Result<u64, BlkError> {
    v?.trim().parse().map_err(|_| BlkError::NoDevice)
}

impl BlockDevice {
    /// Connects to this domain's block device number `index` (its
    /// configuration's `index`th `disk` entry).
    pub fn open(index: u32) -> Result<Self, BlkError> {
        let mut store = Store::connect()?;
        let me = crate::start_info()
            .map(|si| si.domain_id())
            .ok_or(BlkError::NoDevice)?;
        let mut dev = Device {
            kind: DEVICE_KIND.into(),
            index,
            front: me,
            back: DomainId(0),
        };
        let back = match store.read_string(&alloc::format!("{}/backend-id", dev.front_dir())) {
            Err(store::Error::Store(store::StoreError::NoEnt)) => return Err(BlkError::NoDevice),
            r => number(r)?,
        };
        dev.back = DomainId(u32::try_from(back).map_err(|_| BlkError::NoDevice)?);
        let dir = dev.back_dir();
        let mut key = |k: &str| store.read_string(&alloc::format!("{dir}/{k}"));
        let sectors = number(key(KEY_SECTORS))?;
        let sector_size =
            u32::try_from(number(key(KEY_SECTOR_SIZE))?).map_err(|_| BlkError::NoDevice)?;
        let read_only = key(KEY_MODE)?.trim() != "w";
        let flush = key(KEY_FEATURE_FLUSH).is_ok_and(|v| v.trim() == "1");

        let port = events::alloc_unbound(dev.back)?;
        let ring = FrontRing::new(dev.back, port)?;
        let mut pages = Vec::with_capacity(DEPTH * BLKIF_MAX_SEGMENTS);
        for _ in 0..DEPTH * BLKIF_MAX_SEGMENTS {
            pages.push(Grant::new(dev.back, Page::new()?, false)?);
        }
        // Persistent grants (`specs/blkif.md`): the pool above is granted
        // once and reused by every request, so the back end may keep its
        // pages mapped. Offered before the ring is published, where the
        // back end looks for it; a back end without the feature ignores it.
        store.write(
            &alloc::format!("{}/{KEY_FEATURE_PERSISTENT}", dev.front_dir()),
            b"1",
        )?;
        let details = FrontDetails {
            ring_ref: ring.gref().0,
            event_channel: port.0,
        };
        store.front_connect(&dev, details, Deadline::after_ms(WAIT_MS))?;
        Ok(Self {
            ring,
            pages,
            store,
            backend: dev.back,
            sectors,
            sector_size,
            read_only,
            flush,
            wait_ticks: ns_to_ticks(WAIT_MS * 1_000_000, crate::time::frequency()),
        })
    }

    /// When a response waited for from now on is late (virtual counter).
    fn deadline(&self) -> u64 {
        crate::time::counter().saturating_add(self.wait_ticks)
    }

    /// Size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.sectors
    }

    /// The real disk's sector size in bytes (requests still count 512-byte
    /// sectors).
    pub fn sector_size(&self) -> u32 {
        self.sector_size
    }

    /// Whether the back end refuses writes.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether the back end offers [`BlockDevice::flush`].
    pub fn can_flush(&self) -> bool {
        self.flush
    }

    /// The back end's domain.
    pub fn backend(&self) -> DomainId {
        self.backend
    }

    /// The store connection the device was set up with.
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Reads `buf.len()` bytes (whole sectors) from `sector` on.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.transfer(BlkifOp::Read, sector, Data::Read(buf))
    }

    /// Writes `buf` (whole sectors) from `sector` on. Returns once the real
    /// disk completed every write; durable after [`BlockDevice::flush`].
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlkError> {
        self.transfer(BlkifOp::Write, sector, Data::Write(buf))
    }

    /// Makes every write done so far durable.
    pub fn flush(&mut self) -> Result<(), BlkError> {
        let req = BlkifRequest {
            id: 0,
            op: BlkifOp::Flush.raw(),
            ..BlkifRequest::default()
        };
        self.ring.push(&req)?;
        self.ring.publish_and_wait(Some(self.deadline()))?;
        match self.next_response()? {
            (0, Ok(())) => Ok(()),
            (0, Err(e)) => Err(e),
            _ => Err(BlkError::Protocol),
        }
    }

    /// Waits for the next response: its id and status.
    fn next_response(&mut self) -> Result<(u64, Result<(), BlkError>), BlkError> {
        let deadline = Deadline(self.deadline());
        loop {
            if let Some(r) = self.ring.take()? {
                let st = match BlkifStatus::from_raw(r.status) {
                    Some(BlkifStatus::Okay) => Ok(()),
                    Some(s) => Err(BlkError::Status(s)),
                    None => Err(BlkError::Protocol),
                };
                return Ok((r.id, st));
            }
            self.ring.wait(Some(deadline.0))?;
        }
    }

    fn transfer(&mut self, op: BlkifOp, sector: u64, mut data: Data<'_>) -> Result<(), BlkError> {
        let total = data.len();
        if total == 0 || !total.is_multiple_of(SECTOR) {
            return Err(BlkError::BadLength);
        }
        let mut slots: [Option<Slot>; DEPTH] = [None; DEPTH];
        let (mut issued, mut failed) = (0usize, None);
        loop {
            // Fill every free slot while there is data left to send.
            let mut pushed = false;
            while issued < total && failed.is_none() {
                let Some(i) = slots.iter().position(Option::is_none) else {
                    break;
                };
                let len = (total - issued).min(REQUEST_BYTES);
                let slot = Slot { at: issued, len };
                let first = sector + (issued / SECTOR) as u64;
                self.push(i, op, first, slot, &data)?;
                slots[i] = Some(slot);
                issued += len;
                pushed = true;
            }
            if slots.iter().all(Option::is_none) {
                return failed.map_or(Ok(()), Err);
            }
            if pushed {
                // The event and the wait for the first answer: one trap.
                self.ring.publish_and_wait(Some(self.deadline()))?;
            }
            let (id, status) = self.next_response()?;
            let i = usize::try_from(id).map_err(|_| BlkError::Protocol)?;
            let slot = slots
                .get_mut(i)
                .and_then(Option::take)
                .ok_or(BlkError::Protocol)?;
            match status {
                Ok(()) => {
                    if let Data::Read(buf) = &mut data {
                        self.copy_out(i, &mut buf[slot.at..slot.at + slot.len]);
                    }
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
    }

    /// The pages of slot `i`.
    fn slot_pages(&self, i: usize) -> &[Grant] {
        &self.pages[i * BLKIF_MAX_SEGMENTS..(i + 1) * BLKIF_MAX_SEGMENTS]
    }

    /// Builds and pushes the request of slot `i` (copying a write's data
    /// into its pages first).
    fn push(
        &mut self,
        i: usize,
        op: BlkifOp,
        sector: u64,
        slot: Slot,
        data: &Data<'_>,
    ) -> Result<(), BlkError> {
        let mut req = BlkifRequest {
            id: i as u64,
            sector,
            op: op.raw(),
            ..BlkifRequest::default()
        };
        let pages = self.slot_pages(i);
        let mut done = 0;
        for (seg, page) in req.segments.iter_mut().zip(pages) {
            if done == slot.len {
                break;
            }
            let n = (slot.len - done).min(PAGE_BYTES);
            if let Data::Write(buf) = data {
                let at = slot.at + done;
                store_words(page.page().words(), &buf[at..at + n]);
            }
            *seg = BlkifSegment {
                gref: page.gref().0,
                first_sect: 0,
                last_sect: ((n / SECTOR) as u64 - 1).min(BLKIF_SECTORS_PER_PAGE - 1) as u8,
                reserved: [0; 2],
            };
            req.nr_segments += 1;
            done += n;
        }
        self.ring.push(&req)?;
        Ok(())
    }

    /// Copies slot `i`'s pages into `dst` (as long as the slot's data).
    fn copy_out(&self, i: usize, dst: &mut [u8]) {
        for (chunk, page) in dst.chunks_mut(PAGE_BYTES).zip(self.slot_pages(i)) {
            load_words(page.page().words(), chunk);
        }
    }
}
