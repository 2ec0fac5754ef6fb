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
use core::sync::atomic::{AtomicU64, Ordering};

use tern_abi::blkif::{
    BLKIF_MAX_SEGMENTS, BLKIF_SECTOR_SIZE, BLKIF_SECTORS_PER_PAGE, BlkifOp, BlkifRequest,
    BlkifResponse, BlkifSegment, DEVICE_KIND, KEY_FEATURE_FLUSH, KEY_MODE, KEY_SECTOR_SIZE,
    KEY_SECTORS,
};
use tern_abi::domctl::DomainId;

pub use tern_abi::blkif::BlkifStatus;

use crate::events;
use crate::grant::{Grant, PAGE_BYTES, Page};
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
        })
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
        self.ring.publish()?;
        match self.next_response()? {
            (0, Ok(())) => Ok(()),
            (0, Err(e)) => Err(e),
            _ => Err(BlkError::Protocol),
        }
    }

    /// Waits for the next response: its id and status.
    fn next_response(&mut self) -> Result<(u64, Result<(), BlkError>), BlkError> {
        let deadline = Deadline::after_ms(WAIT_MS);
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
            if pushed {
                self.ring.publish()?;
            }
            if slots.iter().all(Option::is_none) {
                return failed.map_or(Ok(()), Err);
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

/// Bytes per word of a page.
const WORD: usize = core::mem::size_of::<u64>();
/// Bytes one iteration of [`burst`] moves: four 16-byte SIMD registers.
const BURST: usize = 64;

/// Copies `src`'s words (a granted page, shared with a peer) into `dst`:
/// `dst.len()` bytes, whole words, at most `src`'s. For the block back end
/// and front end, which move every 4 KiB of data this way once.
///
/// Guests and dom0 are built with strict alignment (their data accesses
/// may be to Device memory), so a byte buffer is copied a byte at a time
/// unless it is known to be aligned. Here: 64 bytes per iteration with
/// SIMD loads and stores when both sides are 16-byte aligned and the
/// length a multiple of 64 (every page-sized transfer into a heap buffer),
/// else one relaxed load and store per word, or per byte. A 4 KiB copy is
/// some 400 instructions instead of 2,000 (word loop) or 11,000 (the
/// general `PageBuf::read`).
pub fn load_words(src: &[AtomicU64], dst: &mut [u8]) {
    let n = dst.len().min(src.len() * WORD) / WORD * WORD;
    let dst = &mut dst[..n];
    if burst_ok(src.as_ptr().cast(), dst.as_ptr(), n) {
        // SAFETY: both ranges are `n` bytes long (`src` holds at least
        // `n / WORD` words), 16-byte aligned and do not overlap (`dst` is
        // exclusively borrowed); the peer writing `src` meanwhile only
        // changes which bytes are copied, the asm being opaque.
        unsafe { burst(src.as_ptr().cast(), dst.as_mut_ptr(), n / BURST) };
        return;
    }
    // SAFETY: every bit pattern is a valid `u8` and a valid `u64`; the
    // aligned middle is a reinterpretation of bytes `dst` owns.
    let (head, mid, tail) = unsafe { dst.align_to_mut::<u64>() };
    if head.is_empty() && tail.is_empty() {
        // Native load, native store: the bytes keep their order.
        for (d, w) in mid.iter_mut().zip(src) {
            *d = w.load(Ordering::Relaxed);
        }
        return;
    }
    for (c, w) in dst.as_chunks_mut::<WORD>().0.iter_mut().zip(src) {
        *c = w.load(Ordering::Relaxed).to_ne_bytes();
    }
}

/// Copies `src` (whole words, at most `dst`'s) into the shared words
/// `dst`, the way [`load_words`] copies out.
pub fn store_words(dst: &[AtomicU64], src: &[u8]) {
    let n = src.len().min(dst.len() * WORD) / WORD * WORD;
    let src = &src[..n];
    if burst_ok(src.as_ptr(), dst.as_ptr().cast(), n) {
        // SAFETY: as in `load_words`; `dst` is shared words (atomics),
        // which the opaque asm may store to through a shared reference
        // as any atomic store may.
        unsafe { burst(src.as_ptr(), dst.as_ptr().cast_mut().cast(), n / BURST) };
        return;
    }
    // SAFETY: as in `load_words`: a read-only reinterpretation of bytes
    // as words, every bit pattern valid.
    let (head, mid, tail) = unsafe { src.align_to::<u64>() };
    if head.is_empty() && tail.is_empty() {
        for (d, w) in mid.iter().zip(dst) {
            w.store(*d, Ordering::Relaxed);
        }
        return;
    }
    for (c, w) in src.as_chunks::<WORD>().0.iter().zip(dst) {
        w.store(u64::from_ne_bytes(*c), Ordering::Relaxed);
    }
}

/// Whether [`burst`] can copy `n` bytes between `a` and `b`.
fn burst_ok(a: *const u8, b: *const u8, n: usize) -> bool {
    cfg!(target_arch = "aarch64")
        && n > 0
        && n.is_multiple_of(BURST)
        && (a as usize).is_multiple_of(16)
        && (b as usize).is_multiple_of(16)
}

/// Copies `bursts` times 64 bytes from `src` to `dst`.
///
/// # Safety
///
/// `src` readable and `dst` writable for `bursts * 64` bytes, both 16-byte
/// aligned, not overlapping.
#[cfg(target_arch = "aarch64")]
unsafe fn burst(src: *const u8, dst: *mut u8, bursts: usize) {
    // SAFETY: the caller's contract; the asm touches only those bytes and
    // the SIMD registers it declares clobbered.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldp {a:q}, {b:q}, [{src}], #32",
            "ldp {c:q}, {d:q}, [{src}], #32",
            "stp {a:q}, {b:q}, [{dst}], #32",
            "stp {c:q}, {d:q}, [{dst}], #32",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            src = inout(reg) src => _,
            dst = inout(reg) dst => _,
            n = inout(reg) bursts => _,
            a = out(vreg) _,
            b = out(vreg) _,
            c = out(vreg) _,
            d = out(vreg) _,
            options(nostack),
        );
    }
}

/// Never called: [`burst_ok`] is false off AArch64 (host tests).
#[cfg(not(target_arch = "aarch64"))]
unsafe fn burst(_: *const u8, _: *mut u8, _: usize) {
    unreachable!("burst copies are AArch64 only")
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A page's worth of shared words holding the bytes 0, 1, 2, ...
    fn numbered() -> Vec<AtomicU64> {
        (0..PAGE_BYTES / WORD)
            .map(|w| {
                let mut b = [0u8; WORD];
                for (i, x) in b.iter_mut().enumerate() {
                    *x = (w * WORD + i) as u8;
                }
                AtomicU64::new(u64::from_ne_bytes(b))
            })
            .collect()
    }

    #[test]
    fn words_copy_out_aligned_or_not() {
        let src = numbered();
        let mut backing = vec![0u64; 2 * PAGE_BYTES / WORD];
        // SAFETY: u64 to u8, any bit pattern valid; the view is the whole
        // vector, exclusively borrowed.
        let bytes: &mut [u8] = unsafe { backing.align_to_mut::<u8>().1 };
        for at in [0, 1, 3, 8] {
            let dst = &mut bytes[at..at + 1024];
            dst.fill(0xee);
            load_words(&src, dst);
            assert!(
                dst.iter().enumerate().all(|(i, &b)| b == i as u8),
                "at {at}"
            );
        }
        // Longer than the page: only the page's bytes are copied.
        let dst = &mut bytes[..PAGE_BYTES + 8];
        dst.fill(0xee);
        load_words(&src, dst);
        assert_eq!(dst[PAGE_BYTES - 1], (PAGE_BYTES - 1) as u8);
        assert_eq!(dst[PAGE_BYTES], 0xee);
    }

    #[test]
    fn words_copy_in_aligned_or_not() {
        let mut backing = vec![0u64; PAGE_BYTES / WORD + 1];
        // SAFETY: as above.
        let bytes: &mut [u8] = unsafe { backing.align_to_mut::<u8>().1 };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        for at in [0, 5, 8] {
            let dst: Vec<AtomicU64> = (0..PAGE_BYTES / WORD).map(|_| AtomicU64::new(!0)).collect();
            store_words(&dst, &bytes[at..at + 512]);
            let got: Vec<u8> = dst
                .iter()
                .flat_map(|w| w.load(Ordering::Relaxed).to_ne_bytes())
                .collect();
            assert!((0..512).all(|i| got[i] == (at + i) as u8), "at {at}");
            assert!(
                got[512..].iter().all(|&b| b == 0xff),
                "at {at}: past the end"
            );
        }
    }
}
