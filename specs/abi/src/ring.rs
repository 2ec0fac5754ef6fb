//! Shared rings: a single-producer / single-consumer request/response ring in
//! one shared page, with the semantics of Xen's `io/ring.h`. `specs/rings.md`
//! is the normative description; this module is the one implementation both
//! ends use.
//!
//! The page ([`SharedRing`]) holds four free-running 32-bit indices and an
//! array of fixed-size slots. The front end produces requests and consumes
//! responses; the back end consumes requests and produces responses. A
//! response takes the slot of the request it answers (responses are produced
//! in the order requests were consumed), so a slot holds a request or a
//! response, whichever is larger.
//!
//! Memory ordering (the `wmb`/`rmb`/`mb` of `io/ring.h`):
//! - a producer writes slots, then publishes its index with a **release**
//!   store, so the consumer that reads the index with an **acquire** load
//!   sees the slots written;
//! - before deciding whether to notify, the producer orders its index store
//!   before its load of the peer's `event` index with a full (`SeqCst`)
//!   fence, and a consumer about to sleep orders its `event` store before
//!   re-reading the producer index with the same fence. Of the two
//!   store-fence-load sequences at least one sees the other's store, so
//!   either the producer notifies or the consumer finds the work: no lost
//!   wake-up.
//!
//! A peer may be hostile: it can write any value to any index or slot at any
//! time. Nothing here trusts the page: slots are copied out with atomic word
//! loads (so a concurrent writer is not a data race) **before** the caller
//! looks at them, and an index claiming more entries than the ring can hold
//! is reported as [`RingError::Overflow`], after which the end refuses to
//! touch the ring ([`RingError::Broken`]). Slot contents are the caller's to
//! validate: this module only guarantees that what it returns is one
//! snapshot that later writes by the peer cannot change.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::PAGE_SIZE;

/// Bytes of the ring page before the slots: the four indices and padding.
pub const RING_HEADER_BYTES: usize = 64;
/// Bytes of the ring page available to slots.
pub const RING_SLOT_AREA_BYTES: usize = PAGE_SIZE as usize - RING_HEADER_BYTES;
/// 64-bit words of the slot area.
pub const RING_SLOT_AREA_WORDS: usize = RING_SLOT_AREA_BYTES / 8;
/// Slots are whole 64-bit words (every slot starts 8-byte aligned).
pub const RING_SLOT_ALIGN: usize = 8;

/// A ring page as both ends see it. Every field is atomic because the other
/// end writes it concurrently. Lives in one page that the front end grants
/// to the back end.
#[repr(C, align(4096))]
#[derive(Debug)]
pub struct SharedRing {
    /// Requests produced (written by the front end).
    pub req_prod: AtomicU32,
    /// The back end wants a notification when `req_prod` passes this value
    /// (written by the back end).
    pub req_event: AtomicU32,
    /// Responses produced (written by the back end).
    pub rsp_prod: AtomicU32,
    /// The front end wants a notification when `rsp_prod` passes this value
    /// (written by the front end).
    pub rsp_event: AtomicU32,
    /// Zero; no meaning yet.
    pub reserved: [AtomicU64; 6],
    /// The slots, as 64-bit words.
    pub slots: [AtomicU64; RING_SLOT_AREA_WORDS],
}

const _: () = assert!(size_of::<SharedRing>() == PAGE_SIZE as usize);
const _: () = assert!(core::mem::offset_of!(SharedRing, slots) == RING_HEADER_BYTES);

impl SharedRing {
    /// A zeroed page.
    pub const fn new() -> Self {
        Self {
            req_prod: AtomicU32::new(0),
            req_event: AtomicU32::new(0),
            rsp_prod: AtomicU32::new(0),
            rsp_event: AtomicU32::new(0),
            reserved: [const { AtomicU64::new(0) }; 6],
            slots: [const { AtomicU64::new(0) }; RING_SLOT_AREA_WORDS],
        }
    }

    /// Puts the indices in their initial state (`SHARED_RING_INIT`): nothing
    /// produced, each end wants to hear about the first entry. Only the front
    /// end does this, before it grants the page.
    pub fn init(&self) {
        self.req_prod.store(0, Ordering::Relaxed);
        self.rsp_prod.store(0, Ordering::Relaxed);
        self.req_event.store(1, Ordering::Relaxed);
        self.rsp_event.store(1, Ordering::Release);
    }
}

impl Default for SharedRing {
    fn default() -> Self {
        Self::new()
    }
}

/// The number of slots of a ring whose slots hold `slot_bytes` bytes: the
/// largest power of two that fits the slot area (0 if not even one fits).
pub const fn ring_size(slot_bytes: usize) -> u32 {
    let words = slot_words(slot_bytes);
    if words == 0 || words > RING_SLOT_AREA_WORDS {
        return 0;
    }
    let fit = RING_SLOT_AREA_WORDS / words;
    1 << (usize::BITS - 1 - fit.leading_zeros())
}

/// Words per slot for entries of `bytes` bytes (at least one word).
pub const fn slot_words(bytes: usize) -> usize {
    let w = bytes.div_ceil(RING_SLOT_ALIGN);
    if w == 0 { 1 } else { w }
}

/// Why a ring operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// No free slot: the ring holds as many requests as it has slots, or
    /// every consumed request has been answered.
    Full,
    /// The peer's index claims more entries than the ring can hold (or
    /// responses to requests never published). The peer is broken or
    /// hostile; the ring is now [`RingError::Broken`].
    Overflow,
    /// An earlier [`RingError::Overflow`]: this end no longer uses the ring.
    Broken,
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Full => "ring full",
            Self::Overflow => "peer claims more entries than the ring holds",
            Self::Broken => "ring broken by its peer",
        })
    }
}

/// The geometry shared by both ends of a ring of `Req`/`Rsp`.
struct Geometry {
    words: usize,
    size: u32,
}

const fn geometry(req: usize, rsp: usize) -> Geometry {
    let bytes = if req > rsp { req } else { rsp };
    Geometry {
        words: slot_words(bytes),
        size: ring_size(bytes),
    }
}

fn slot<'r>(ring: &'r SharedRing, g: &Geometry, idx: u32) -> &'r [AtomicU64] {
    let i = (idx & (g.size - 1)) as usize * g.words;
    &ring.slots[i..i + g.words]
}

/// Copies `v` into the slot of index `idx`, word by word.
fn write_slot<T: IntoBytes + Immutable>(ring: &SharedRing, g: &Geometry, idx: u32, v: &T) {
    let words = slot(ring, g, idx);
    for (w, chunk) in words.iter().zip(v.as_bytes().chunks(RING_SLOT_ALIGN)) {
        let mut b = [0u8; RING_SLOT_ALIGN];
        b[..chunk.len()].copy_from_slice(chunk);
        w.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
}

/// Copies the slot of index `idx` out of shared memory, word by word: the
/// value returned is private to the caller and the peer cannot change it.
fn read_slot<T: FromBytes + IntoBytes>(ring: &SharedRing, g: &Geometry, idx: u32) -> T {
    let mut v = T::new_zeroed();
    let words = slot(ring, g, idx);
    for (w, chunk) in words
        .iter()
        .zip(v.as_mut_bytes().chunks_mut(RING_SLOT_ALIGN))
    {
        let b = w.load(Ordering::Relaxed).to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    v
}

/// `io/ring.h`'s notification rule: the peer asked to hear about index
/// `event`; tell it iff `event` lies in `(old, new]`.
pub const fn need_notify(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// Publishes `new` in `prod` (release), then reads the peer's `event` after a
/// full fence and says whether to notify.
fn publish(prod: &AtomicU32, event: &AtomicU32, old: u32, new: u32) -> bool {
    prod.store(new, Ordering::Release);
    fence(Ordering::SeqCst);
    need_notify(old, new, event.load(Ordering::Acquire))
}

/// The front end: produces requests, consumes responses.
#[derive(Debug)]
pub struct Front<'r, Req, Rsp> {
    ring: &'r SharedRing,
    req_prod_pvt: u32,
    req_published: u32,
    rsp_cons: u32,
    broken: bool,
    types: PhantomData<fn(Req) -> Rsp>,
}

impl<'r, Req, Rsp> Front<'r, Req, Rsp>
where
    Req: IntoBytes + Immutable,
    Rsp: FromBytes + IntoBytes,
{
    const GEOMETRY: Geometry = geometry(size_of::<Req>(), size_of::<Rsp>());
    /// Slots in this ring.
    pub const SIZE: u32 = Self::GEOMETRY.size;
    const FITS: () = assert!(
        Self::SIZE > 0,
        "request or response larger than a ring page"
    );

    /// Initialises `ring` ([`SharedRing::init`]) and returns its front end.
    pub fn new(ring: &'r SharedRing) -> Self {
        let () = Self::FITS;
        ring.init();
        Self {
            ring,
            req_prod_pvt: 0,
            req_published: 0,
            rsp_cons: 0,
            broken: false,
            types: PhantomData,
        }
    }

    /// Slots free for new requests.
    pub fn free_slots(&self) -> u32 {
        Self::SIZE - self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Requests pushed or published whose responses were not consumed yet.
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Writes `req` into the next slot. The back end sees it after
    /// [`Front::publish`].
    pub fn push(&mut self, req: &Req) -> Result<(), RingError> {
        if self.broken {
            return Err(RingError::Broken);
        }
        if self.free_slots() == 0 {
            return Err(RingError::Full);
        }
        write_slot(self.ring, &Self::GEOMETRY, self.req_prod_pvt, req);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the pushed requests (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    /// Returns whether the back end asked to be notified of them: if so,
    /// send it an event.
    pub fn publish(&mut self) -> bool {
        let old = self.req_published;
        self.req_published = self.req_prod_pvt;
        publish(
            &self.ring.req_prod,
            &self.ring.req_event,
            old,
            self.req_prod_pvt,
        )
    }

    /// Responses published and not consumed yet, after checking the back end's
    /// index: it may not answer more requests than were published.
    pub fn unconsumed(&mut self) -> Result<u32, RingError> {
        if self.broken {
            return Err(RingError::Broken);
        }
        let prod = self.ring.rsp_prod.load(Ordering::Acquire);
        let n = prod.wrapping_sub(self.rsp_cons);
        if n > self.req_published.wrapping_sub(self.rsp_cons) {
            self.broken = true;
            return Err(RingError::Overflow);
        }
        Ok(n)
    }

    /// The next response, copied out of the ring, or `None` if there is none.
    pub fn take(&mut self) -> Result<Option<Rsp>, RingError> {
        if self.unconsumed()? == 0 {
            return Ok(None);
        }
        let v = read_slot(self.ring, &Self::GEOMETRY, self.rsp_cons);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(v))
    }

    /// Before sleeping (`RING_FINAL_CHECK_FOR_RESPONSES`): asks for a
    /// notification of the next response, then checks again. `true` means
    /// responses arrived: do not sleep.
    pub fn final_check(&mut self) -> Result<bool, RingError> {
        if self.unconsumed()? > 0 {
            return Ok(true);
        }
        self.ring
            .rsp_event
            .store(self.rsp_cons.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        Ok(self.unconsumed()? > 0)
    }
}

/// The back end: consumes requests, produces responses.
#[derive(Debug)]
pub struct Back<'r, Req, Rsp> {
    ring: &'r SharedRing,
    req_cons: u32,
    rsp_prod_pvt: u32,
    rsp_published: u32,
    broken: bool,
    types: PhantomData<fn(Req) -> Rsp>,
}

impl<'r, Req, Rsp> Back<'r, Req, Rsp>
where
    Req: FromBytes + IntoBytes,
    Rsp: IntoBytes + Immutable,
{
    const GEOMETRY: Geometry = geometry(size_of::<Req>(), size_of::<Rsp>());
    /// Slots in this ring.
    pub const SIZE: u32 = Self::GEOMETRY.size;
    const FITS: () = assert!(
        Self::SIZE > 0,
        "request or response larger than a ring page"
    );

    /// The back end of a ring the front end initialised (`BACK_RING_INIT`:
    /// nothing consumed or produced yet).
    pub fn new(ring: &'r SharedRing) -> Self {
        let () = Self::FITS;
        Self {
            ring,
            req_cons: 0,
            rsp_prod_pvt: 0,
            rsp_published: 0,
            broken: false,
            types: PhantomData,
        }
    }

    /// Requests published and not consumed yet
    /// (`RING_HAS_UNCONSUMED_REQUESTS`), after checking the front end's
    /// index: the requests not yet answered can never exceed the ring.
    pub fn unconsumed(&mut self) -> Result<u32, RingError> {
        if self.broken {
            return Err(RingError::Broken);
        }
        let prod = self.ring.req_prod.load(Ordering::Acquire);
        let n = prod.wrapping_sub(self.req_cons);
        let unanswered = self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        if n > Self::SIZE - unanswered {
            self.broken = true;
            return Err(RingError::Overflow);
        }
        Ok(n)
    }

    /// The next request, copied out of the ring **before** the caller looks
    /// at it, or `None` if there is none.
    pub fn take(&mut self) -> Result<Option<Req>, RingError> {
        if self.unconsumed()? == 0 {
            return Ok(None);
        }
        let v = read_slot(self.ring, &Self::GEOMETRY, self.req_cons);
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(v))
    }

    /// Requests consumed but not answered yet.
    pub fn unanswered(&self) -> u32 {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt)
    }

    /// Writes the response to the oldest unanswered request into its slot.
    /// The front end sees it after [`Back::publish`].
    pub fn push(&mut self, rsp: &Rsp) -> Result<(), RingError> {
        if self.broken {
            return Err(RingError::Broken);
        }
        if self.unanswered() == 0 {
            return Err(RingError::Full);
        }
        write_slot(self.ring, &Self::GEOMETRY, self.rsp_prod_pvt, rsp);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the pushed responses (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`).
    /// Returns whether the front end asked to be notified.
    pub fn publish(&mut self) -> bool {
        let old = self.rsp_published;
        self.rsp_published = self.rsp_prod_pvt;
        publish(
            &self.ring.rsp_prod,
            &self.ring.rsp_event,
            old,
            self.rsp_prod_pvt,
        )
    }

    /// Before sleeping (`RING_FINAL_CHECK_FOR_REQUESTS`): asks for a
    /// notification of the next request, then checks again. `true` means
    /// requests arrived: do not sleep.
    pub fn final_check(&mut self) -> Result<bool, RingError> {
        if self.unconsumed()? > 0 {
            return Ok(true);
        }
        self.ring
            .req_event
            .store(self.req_cons.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        Ok(self.unconsumed()? > 0)
    }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
