//! Typed shared rings between two domains: the front end owns the ring page
//! and grants it, the back end maps it (specs/rings.md; the ring logic is
//! `tern_abi::ring`, this module adds the page, the grant and the event
//! channel).
//!
//! ```ignore
//! use pv_guest_sdk::ring::{FrontRing, BackRing};
//! // Front end: a ring granted to domain `back`, notifying over `port`.
//! let mut front = FrontRing::<Req, Rsp>::new(back, port)?;
//! // ... tell the back end `front.gref()` and the port ...
//! front.push(&req)?;
//! front.publish()?;               // sends an event only if the back end asked
//! front.wait(None)?;              // final check, then block until notified
//! // or both in one: the event and the first block are one hypercall
//! front.publish_and_wait(None)?;
//! let rsp = front.take()?;
//! // Back end:
//! let mut back = BackRing::<Req, Rsp>::new(front_dom, gref, port)?;
//! while let Some(req) = back.take()? { back.push(&answer(req))?; }
//! back.publish()?;
//! ```
//!
//! Waiting uses [`crate::events::wait_until`]: the ring's final check (ask
//! for a notification, then look again) runs with the upcall masked right
//! before `block`, so an event sent after the check wakes the vCPU at once.
//! The port needs no handler: the ring itself says whether there is work.

use tern_abi::domctl::DomainId;
use tern_abi::ring::{Back, Front, SharedRing};
use tern_abi::{Error, Features};
use zerocopy::{FromBytes, Immutable, IntoBytes};

pub use tern_abi::ring::RingError;

use crate::events::{self, Port};
use crate::grant::{self, Grant, GrantRef, Mapping, Page};

/// Why waiting on a ring or notifying its peer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The peer broke the ring's rules (see [`RingError`]).
    Ring(RingError),
    /// A hypercall failed (sending the event).
    Call(Error),
    /// The deadline passed first.
    Timeout,
}

impl From<RingError> for Fault {
    fn from(e: RingError) -> Self {
        Self::Ring(e)
    }
}

impl From<Error> for Fault {
    fn from(e: Error) -> Self {
        Self::Call(e)
    }
}

impl core::fmt::Display for Fault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ring(e) => write!(f, "{e}"),
            Self::Call(e) => write!(f, "{e}"),
            Self::Timeout => f.write_str("timed out"),
        }
    }
}

/// Runs `check` (a ring's final check) inside [`events::wait_until`] until
/// it finds work, fails, or `deadline` (virtual counter) passes. With
/// `notify`, first sends an event on that port, together with the first
/// block ([`events::send_and_wait`]).
fn wait_on(
    notify: Option<Port>,
    mut check: impl FnMut() -> Result<bool, RingError>,
    deadline: Option<u64>,
) -> Result<(), Fault> {
    let mut failed = None;
    let done = || match check() {
        Ok(found) => found,
        Err(e) => {
            failed = Some(e);
            true
        }
    };
    let done = match notify {
        Some(port) => events::send_and_wait(port, done, deadline)?,
        None => events::wait_until(done, deadline),
    };
    match (failed, done) {
        (Some(e), _) => Err(Fault::Ring(e)),
        (None, true) => Ok(()),
        (None, false) => Err(Fault::Timeout),
    }
}

/// Sends an event on `port` if `needed`; counts it.
fn notify(port: Port, needed: bool, sent: &mut u64) -> Result<bool, Error> {
    if needed {
        events::send(port)?;
        *sent += 1;
    }
    Ok(needed)
}

/// The front end of a ring: owns the ring page (granted read-write to the
/// back end), produces requests, consumes responses.
pub struct FrontRing<Req, Rsp> {
    // Declared before `grant`, so dropped first: it borrows the grant's page.
    ring: Front<'static, Req, Rsp>,
    grant: Grant,
    port: Port,
    sent: u64,
}

impl<Req, Rsp> core::fmt::Debug for FrontRing<Req, Rsp> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FrontRing({:?}, port {})", self.grant, self.port.0)
    }
}

impl<Req, Rsp> FrontRing<Req, Rsp>
where
    Req: IntoBytes + Immutable,
    Rsp: FromBytes + IntoBytes,
{
    /// Slots of the ring.
    pub const SIZE: u32 = Front::<'static, Req, Rsp>::SIZE;

    /// Allocates and initialises a ring page, grants it read-write to
    /// `backend`, and notifies over `port` (an inter-domain port to the back
    /// end, or one that will be bound before the first publish).
    pub fn new(backend: DomainId, port: Port) -> Result<Self, Error> {
        let page = Page::new()?;
        // SAFETY: the page is heap memory owned by `grant` below, which
        // lives in the same struct and is dropped after `ring` (field
        // order); moving the struct moves the box, not the page. The
        // 'static reference never leaves this struct.
        let shared: &'static SharedRing = unsafe { &*(page.as_ring() as *const SharedRing) };
        // Initialised before the back end can see it.
        let ring = Front::new(shared);
        let grant = Grant::new(backend, page, false)?;
        Ok(Self {
            ring,
            grant,
            port,
            sent: 0,
        })
    }

    /// The grant reference of the ring page, for the back end.
    pub fn gref(&self) -> GrantRef {
        self.grant.gref()
    }

    /// The event port.
    pub fn port(&self) -> Port {
        self.port
    }

    /// Slots free for new requests.
    pub fn free_slots(&self) -> u32 {
        self.ring.free_slots()
    }

    /// Requests pushed whose responses were not taken yet.
    pub fn outstanding(&self) -> u32 {
        self.ring.outstanding()
    }

    /// Events sent to the back end so far.
    pub fn notifications(&self) -> u64 {
        self.sent
    }

    /// Writes `req` into the next slot (seen by the back end after
    /// [`FrontRing::publish`]).
    pub fn push(&mut self, req: &Req) -> Result<(), RingError> {
        self.ring.push(req)
    }

    /// Publishes the pushed requests and sends an event if the back end
    /// asked for one. Returns whether it did.
    pub fn publish(&mut self) -> Result<bool, Error> {
        let needed = self.ring.publish();
        notify(self.port, needed, &mut self.sent)
    }

    /// The next response, copied out of the ring.
    pub fn take(&mut self) -> Result<Option<Rsp>, RingError> {
        self.ring.take()
    }

    /// Blocks until a response is there to take (after the final check),
    /// or `deadline` (virtual counter) passes.
    pub fn wait(&mut self, deadline: Option<u64>) -> Result<(), Fault> {
        wait_on(None, || self.ring.final_check(), deadline)
    }

    /// [`Self::publish`], but an event the back end asked for is only
    /// marked ([`events::send_later`]): it goes with this domain's next
    /// wait, together with its block. Returns whether one was marked.
    pub fn publish_later(&mut self) -> bool {
        let needed = self.ring.publish();
        if needed {
            events::send_later(self.port);
            self.sent += 1;
        }
        needed
    }

    /// [`Self::publish`], then [`Self::wait`]: when the back end must be
    /// told, the event and the first block are one hypercall
    /// (`sched_op send_wait`).
    pub fn publish_and_wait(&mut self, deadline: Option<u64>) -> Result<(), Fault> {
        let notify = self.ring.publish().then_some(self.port);
        self.sent += u64::from(notify.is_some());
        wait_on(notify, || self.ring.final_check(), deadline)
    }

    /// Takes the ring page back from the back end. `Busy` if the back end
    /// still maps it: the page is then leaked, never reused.
    pub fn close(self) -> Result<(), Error> {
        // The ring's borrow of the page ends with `self`.
        let Self { grant, .. } = self;
        grant.end().map(drop).map_err(|(_, e)| e)
    }
}

/// The back end of a ring: maps the front end's ring page, consumes
/// requests (each copied out of the page before the caller sees it),
/// produces responses.
pub struct BackRing<Req, Rsp> {
    // Declared before `map`, so dropped first: it borrows the mapped page.
    ring: Back<'static, Req, Rsp>,
    map: Mapping,
    port: Port,
    sent: u64,
}

impl<Req, Rsp> core::fmt::Debug for BackRing<Req, Rsp> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "BackRing({:?}, port {})", self.map, self.port.0)
    }
}

impl<Req, Rsp> BackRing<Req, Rsp>
where
    Req: FromBytes + IntoBytes,
    Rsp: IntoBytes + Immutable,
{
    /// Slots of the ring.
    pub const SIZE: u32 = Back::<'static, Req, Rsp>::SIZE;

    /// Maps ring page `gref` of `frontend` read-write and notifies over
    /// `port`.
    pub fn new(frontend: DomainId, gref: GrantRef, port: Port) -> Result<Self, Error> {
        let map = grant::map(frontend, gref, false)?;
        let page = map.shared().ok_or(Error::PermissionDenied)?;
        // SAFETY: the page stays mapped at its fixed IPA until `map` is
        // dropped, after `ring` (field order); the 'static reference never
        // leaves this struct.
        let shared: &'static SharedRing = unsafe { &*(page.as_ring() as *const SharedRing) };
        Ok(Self {
            ring: Back::new(shared),
            map,
            port,
            sent: 0,
        })
    }

    /// The event port.
    pub fn port(&self) -> Port {
        self.port
    }

    /// Events sent to the front end so far.
    pub fn notifications(&self) -> u64 {
        self.sent
    }

    /// Requests published and not taken yet; `Overflow` if the front end
    /// claims more than the ring can hold.
    pub fn unconsumed(&mut self) -> Result<u32, RingError> {
        self.ring.unconsumed()
    }

    /// Requests taken but not answered yet.
    pub fn unanswered(&self) -> u32 {
        self.ring.unanswered()
    }

    /// The next request, copied out of the ring before anyone looks at it.
    pub fn take(&mut self) -> Result<Option<Req>, RingError> {
        self.ring.take()
    }

    /// Writes the response to the oldest unanswered request.
    pub fn push(&mut self, rsp: &Rsp) -> Result<(), RingError> {
        self.ring.push(rsp)
    }

    /// Publishes the pushed responses and sends an event if the front end
    /// asked for one. Returns whether it did.
    pub fn publish(&mut self) -> Result<bool, Error> {
        let needed = self.ring.publish();
        notify(self.port, needed, &mut self.sent)
    }

    /// Blocks until a request is there to take (after the final check), or
    /// `deadline` passes.
    pub fn wait(&mut self, deadline: Option<u64>) -> Result<(), Fault> {
        wait_on(None, || self.ring.final_check(), deadline)
    }

    /// [`Self::publish`], then [`Self::wait`]: when the front end must be
    /// told, the event and the first block are one hypercall.
    pub fn publish_and_wait(&mut self, deadline: Option<u64>) -> Result<(), Fault> {
        let notify = self.ring.publish().then_some(self.port);
        self.sent += u64::from(notify.is_some());
        wait_on(notify, || self.ring.final_check(), deadline)
    }

    /// Unmaps the ring page.
    pub fn close(self) -> Result<(), Error> {
        let Self { map, .. } = self;
        map.unmap()
    }
}

/// Whether this hypervisor offers grant tables (`Features::GRANT`), so
/// rings can be set up at all.
pub fn available() -> bool {
    crate::hypercall::version().is_ok_and(|v| v.features.contains(Features::GRANT))
}
