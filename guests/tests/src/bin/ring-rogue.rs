//! ring-rogue: a hostile front end facing an honest back end (`ring-back
//! tolerant`, its `peer=`; the ring is set up through the configuration
//! store). It drives the ring with `tern_abi::ring` over a page it keeps
//! writing to, and grants: a request page (read-only), a response page
//! (read-write), and a page to domain 0 (not to the peer). In order:
//! 1. an honest request, answered OK;
//! 2. bad requests: grants never given, beyond the table, given to another
//!    domain, a read-only response page, lengths and `pad` the back end
//!    refuses, a payload that does not match its checksum; each must be
//!    answered with its status, and an honest request after them still OK
//!    (`ring-rogue: refused as expected: <what>: <status>`);
//! 3. [`ROUNDS`] requests it rewrites after posting them: until the answer
//!    comes it keeps flipping the slot's response grant and `pad` between
//!    the honest values and a read-only page with a bad `pad`, and the
//!    payload between the real one and garbage. A back end that acts on one
//!    copy answers each as first posted (OK, right response bytes) or as
//!    rewritten (bad request, bad checksum); anything else means it read the
//!    request twice (`mixed`);
//! 4. a request producer index far past what the ring holds, then an event:
//!    the back end must refuse the ring and let go of every page, which
//!    this end then takes back.
//!
//! Prints `ring-rogue: PASS (<n> checks)` or `ring-rogue: FAIL ...` lines.
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::sync::atomic::Ordering;

use pv_guest_sdk::abi::Error;
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::ring::{Front as RawFront, RING_SLOT_ALIGN, SharedRing, slot_words};
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::{Grant, GrantRef, Page};
use pv_guest_sdk::store::Store;
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{StartInfo, println};
use test_guests::Checker;
use test_guests::events::peer;
use test_guests::rings::{
    Req, Rsp, STATUS_BAD_REQUEST, STATUS_BAD_SUM, STATUS_GRANT_FAILED, STATUS_OK, checksum,
    fill_payload, front_handshake, reserve_port, response_byte, status_name,
};

pv_guest_sdk::entry!(rogue);

/// Requests rewritten after posting.
const ROUNDS: u64 = 200;
/// Rewrites of one request at most before waiting for its answer quietly
/// (on one CPU the back end runs only once this end stops).
const FLIPS: u32 = 20_000;
/// Payload bytes of every request.
const LEN: usize = 200;
/// What a rewritten request carries in `pad`.
const BAD_PAD: u32 = 0xbad;
/// The 64-bit word of a request slot holding `rsp_gref` (low half) and
/// `pad` (high half). A response is shorter and never writes it, so this
/// end can rewrite it until the answer comes without clobbering it.
const TAIL_WORD: usize = core::mem::offset_of!(Req, rsp_gref) / RING_SLOT_ALIGN;
const _: () = assert!(core::mem::offset_of!(Req, pad) == TAIL_WORD * RING_SLOT_ALIGN + 4);
const _: () = assert!(size_of::<Rsp>() <= TAIL_WORD * RING_SLOT_ALIGN);

type Ring<'a> = RawFront<'a, Req, Rsp>;

/// The ring and the pages lent to the back end.
struct Rogue<'a> {
    ring: Ring<'a>,
    shared: &'a SharedRing,
    port: Port,
    req: &'a Grant,
    rsp: &'a Grant,
    next_id: u64,
}

impl Rogue<'_> {
    /// An honest request with a fresh id and its payload written.
    fn honest(&mut self) -> Req {
        let id = self.next_id;
        self.next_id += 1;
        let mut payload = [0u8; LEN];
        fill_payload(id, &mut payload);
        let _ = self.req.page().write(0, &payload);
        let _ = self.rsp.page().write(0, &[0u8; LEN]);
        Req {
            id,
            req_gref: self.req.gref().0,
            len: LEN as u32,
            sum: checksum(&payload),
            rsp_gref: self.rsp.gref().0,
            pad: 0,
        }
    }

    /// Pushes `req`, publishes it and notifies the back end if it asked.
    fn post(&mut self, req: &Req) -> Result<(), Error> {
        self.ring.push(req).map_err(|_| Error::Busy)?;
        if self.ring.publish() {
            events::send(self.port)?;
        }
        Ok(())
    }

    /// The next response, waiting up to 10 s.
    fn answer(&mut self) -> Option<Rsp> {
        let deadline = Deadline::after_ms(10_000);
        loop {
            if let Ok(Some(r)) = self.ring.take() {
                return Some(r);
            }
            let ring = &mut self.ring;
            if !events::wait_until(|| ring.final_check().unwrap_or(true), Some(deadline.0)) {
                return None;
            }
        }
    }

    /// Whether the response page holds the right answer to honest `req`.
    fn response_right(&self, req: &Req) -> bool {
        let (mut payload, mut got) = ([0u8; LEN], [0u8; LEN]);
        fill_payload(req.id, &mut payload);
        let _ = self.rsp.page().read(0, &mut got);
        (0..LEN).all(|j| got[j] == response_byte(req.id, &payload, j))
    }

    /// Sends `req` and returns the status of its answer.
    fn call(&mut self, req: &Req) -> Option<u32> {
        self.post(req).ok()?;
        self.answer().filter(|r| r.id == req.id).map(|r| r.status)
    }

    /// Posts an honest request and rewrites it until answered: returns the
    /// status and, for OK, whether the response bytes are right.
    fn rewritten(&mut self) -> Option<(u32, bool)> {
        let req = self.honest();
        let slot = self.req_slot_word();
        let mut garbage = [0u8; LEN];
        fill_payload(req.id ^ 0xffff_ffff, &mut garbage);
        let mut real = [0u8; LEN];
        fill_payload(req.id, &mut real);
        let honest_tail = u64::from(req.rsp_gref);
        let bad_tail = u64::from(self.req.gref().0) | u64::from(BAD_PAD) << 32;
        let answered_at = self.shared.rsp_prod.load(Ordering::Acquire);
        self.post(&req).ok()?;
        for i in 0..FLIPS {
            if self.shared.rsp_prod.load(Ordering::Acquire) != answered_at {
                break;
            }
            let rewrite = i % 2 == 0;
            let tail = if rewrite { bad_tail } else { honest_tail };
            self.shared.slots[slot].store(tail, Ordering::Relaxed);
            let _ = self
                .req
                .page()
                .write(0, if rewrite { &garbage } else { &real });
        }
        let rsp = self.answer().filter(|r| r.id == req.id)?;
        Some((
            rsp.status,
            rsp.status == STATUS_OK && self.response_right(&req),
        ))
    }

    /// The index in `SharedRing::slots` of the word holding `rsp_gref` and
    /// `pad` of the next request this end pushes: every request is
    /// published at once, so its slot is that of the published count.
    fn req_slot_word(&self) -> usize {
        let words = slot_words(size_of::<Req>().max(size_of::<Rsp>()));
        let prod = self.shared.req_prod.load(Ordering::Relaxed) as usize;
        (prod % Ring::SIZE as usize) * words + TAIL_WORD
    }
}

/// Takes grant `g` back, waiting up to `ms` for the peer to let go.
fn take_back(mut g: Grant, ms: u64) -> Result<Page, Error> {
    let give_up = Deadline::after_ms(ms);
    loop {
        match g.end() {
            Ok(p) => return Ok(p),
            Err((back, Error::Busy)) if !give_up.passed() => {
                g = back;
                pv_guest_sdk::yield_now();
            }
            Err((_, e)) => return Err(e),
        }
    }
}

/// Phase 2: each bad request and the status it must get.
fn bad_requests(r: &mut Rogue<'_>, other: GrantRef, c: &mut Checker) {
    type Spoil = fn(&mut Req, GrantRef, GrantRef);
    let cases: [(&str, Spoil, u32); 9] = [
        (
            "request page never granted",
            |q, _, _| q.req_gref = 500,
            STATUS_GRANT_FAILED,
        ),
        (
            "request page beyond the table",
            |q, _, _| q.req_gref = 100_000,
            STATUS_GRANT_FAILED,
        ),
        (
            "request page granted to another domain",
            |q, o, _| q.req_gref = o.0,
            STATUS_GRANT_FAILED,
        ),
        (
            "read-only response page",
            |q, _, ro| q.rsp_gref = ro.0,
            STATUS_GRANT_FAILED,
        ),
        (
            "response page never granted",
            |q, _, _| q.rsp_gref = 500,
            STATUS_GRANT_FAILED,
        ),
        ("length 0", |q, _, _| q.len = 0, STATUS_BAD_REQUEST),
        ("length 5000", |q, _, _| q.len = 5000, STATUS_BAD_REQUEST),
        (
            "non-zero pad",
            |q, _, _| q.pad = BAD_PAD,
            STATUS_BAD_REQUEST,
        ),
        (
            "payload not matching its checksum",
            |q, _, _| q.sum ^= 1,
            STATUS_BAD_SUM,
        ),
    ];
    let ro = r.req.gref();
    for (what, spoil, want) in cases {
        let mut req = r.honest();
        spoil(&mut req, other, ro);
        match r.call(&req) {
            Some(s) if s == want => {
                println!(
                    "ring-rogue: refused as expected: {what}: {}",
                    status_name(s)
                );
            }
            Some(s) => c.fail(format_args!("{what}: answered {}", status_name(s))),
            None => c.fail(format_args!("{what}: no answer")),
        }
    }
}

fn rogue(si: &StartInfo) {
    let mut c = Checker::new("ring-rogue");
    if let Err(e) = events::init() {
        return c.fail(format_args!("events: {e}"));
    }
    let Some(peer) = peer(si) else {
        return c.fail(format_args!("no peer= on the command line"));
    };
    let mut store = match Store::connect() {
        Ok(s) => s,
        Err(e) => return c.fail(format_args!("store: {e}")),
    };
    let port = match reserve_port(peer) {
        Ok(p) => p,
        Err(e) => return c.fail(format_args!("{e}")),
    };
    let grants = Page::new().and_then(|ring| {
        let ring = Grant::new(peer, ring, false)?;
        let req = Grant::new(peer, Page::new()?, true)?;
        let rsp = Grant::new(peer, Page::new()?, false)?;
        let other = Grant::new(DomainId(0), Page::new()?, false)?;
        Ok((ring, req, rsp, other))
    });
    let (ring_page, req, rsp, other) = match grants {
        Ok(g) => g,
        Err(e) => return c.fail(format_args!("granting pages: {e}")),
    };
    {
        let shared = ring_page.page().as_ring();
        // Initialised before the back end learns the reference.
        let ring = Ring::new(shared);
        if let Err(e) = front_handshake(&mut store, peer, ring_page.gref(), port) {
            return c.fail(format_args!("rendezvous: {e}"));
        }
        let mut r = Rogue {
            ring,
            shared,
            port,
            req: &req,
            rsp: &rsp,
            next_id: 0,
        };

        // 1. An honest request.
        let req0 = r.honest();
        c.expect_eq("honest request", r.call(&req0), Some(STATUS_OK));
        c.check("honest response bytes", r.response_right(&req0));

        // 2. Bad requests, then an honest one: the back end goes on.
        bad_requests(&mut r, other.gref(), &mut c);
        let req1 = r.honest();
        c.expect_eq(
            "honest request after bad ones",
            r.call(&req1),
            Some(STATUS_OK),
        );
        c.check("its response bytes", r.response_right(&req1));

        // 3. Requests rewritten after posting.
        let (mut first, mut refused, mut bad_sum, mut mixed) = (0, 0, 0, 0);
        for _ in 0..ROUNDS {
            match r.rewritten() {
                Some((STATUS_OK, true)) => first += 1,
                Some((STATUS_BAD_REQUEST, _)) => refused += 1,
                Some((STATUS_BAD_SUM, _)) => bad_sum += 1,
                Some((s, _)) => {
                    mixed += 1;
                    c.fail(format_args!(
                        "a rewritten request answered {}",
                        status_name(s)
                    ));
                }
                None => {
                    c.fail(format_args!("a rewritten request got no answer"));
                    break;
                }
            }
        }
        println!(
            "ring-rogue: rewrote {ROUNDS} posted requests: {first} answered as first posted, \
             {refused} refused as rewritten, {bad_sum} refused for a rewritten payload, {mixed} mixed"
        );
        c.expect_eq(
            "rewritten requests answered",
            first + refused + bad_sum,
            ROUNDS,
        );

        // 4. A request producer index far past the ring.
        let prod = r.shared.req_prod.load(Ordering::Relaxed);
        let huge = prod.wrapping_add(0x4000_0000);
        r.shared.req_prod.store(huge, Ordering::Release);
        println!("ring-rogue: claimed request index {huge:#x} (was {prod:#x})");
        if let Err(e) = events::send(port) {
            c.fail(format_args!("notify: {e}"));
        }
    }
    // The back end refuses the ring and unmaps everything: all comes back.
    let back = [
        ("ring page", take_back(ring_page, 10_000)),
        ("request page", take_back(req, 10_000)),
        ("response page", take_back(rsp, 10_000)),
        ("page of domain 0", take_back(other, 1_000)),
    ];
    let mut all = true;
    for (what, r) in back {
        if let Err(e) = r {
            all = false;
            c.fail(format_args!("{what} never came back: {e}"));
        }
    }
    if all {
        println!("ring-rogue: every page taken back after the back end refused the ring");
    }
    c.finish();
}
