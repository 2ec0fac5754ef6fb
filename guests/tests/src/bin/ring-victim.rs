//! ring-victim: an honest front end facing a hostile back end
//! (`ring-hostile`, its `peer=`). Sets up a ring through the store as
//! `ring-front` does and
//! grants: reference 1 = a page read-only to the peer, 2 = a page to
//! domain 0 (not to the peer), 3 = a page read-write to the peer. Then it
//! sends the peer commands (`test_guests::rings::Cmd`) one at a time:
//! 1. `MapAndHold`: the peer maps reference 1; revoking it must now be
//!    refused (`Busy`), with the hypervisor's `reading` bit in the entry;
//! 2. `Probe`: the peer tries what it was not given (and reports);
//! 3. `Scribble`: the peer scribbles on the ring's indices and claims a huge
//!    response index; this end must detect it and stop using the ring;
//!    the peer then writes through its read-only mapping and is crashed.
//!
//! Once the peer is gone every page comes back (`end_access` succeeds), and
//! page 1 still holds what was written into it. Prints
//! `ring-victim: PASS (<n> checks)` or `ring-victim: FAIL ...` lines.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::abi::Error;
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::grant::GrantFlags;
use pv_guest_sdk::grant::{self, Grant, GrantRef, Page};
use pv_guest_sdk::ring::{Fault, RingError};
use pv_guest_sdk::store::Store;
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{StartInfo, events, println};
use test_guests::Checker;
use test_guests::events::peer;
use test_guests::rings::{Cmd, Front, Req, STATUS_OK, connect_front, fill_payload};

pv_guest_sdk::entry!(victim);

/// Sends command `cmd` as request `id` and waits for its response.
fn command(ring: &mut Front, id: u64, cmd: Cmd) -> Result<u32, Fault> {
    let req = Req {
        id,
        pad: cmd as u32,
        ..Req::default()
    };
    ring.push(&req)?;
    ring.publish()?;
    loop {
        if let Some(rsp) = ring.take()? {
            return Ok(rsp.status);
        }
        ring.wait(Some(Deadline::after_ms(10_000).0))?;
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

fn in_use(r: GrantRef) -> bool {
    grant::entry_flags(r).is_some_and(|f| f.bits() & GrantFlags::IN_USE.bits() != 0)
}

fn victim(si: &StartInfo) {
    let mut c = Checker::new("ring-victim");
    if let Err(e) = events::init() {
        println!("ring-victim: FAIL events: {e}");
        return;
    }
    let Some(peer) = peer(si) else {
        println!("ring-victim: FAIL no peer= on the command line");
        return;
    };
    let mut store = match Store::connect() {
        Ok(s) => s,
        Err(e) => {
            println!("ring-victim: FAIL store: {e}");
            return;
        }
    };
    let mut ring = match connect_front(&mut store, peer) {
        Ok(r) => r,
        Err(e) => {
            println!("ring-victim: FAIL rendezvous: {e}");
            return;
        }
    };
    let pattern = {
        let mut b = [0u8; 4096];
        fill_payload(7, &mut b);
        b
    };
    let grants = Page::new().and_then(|p| {
        p.write(0, &pattern)?;
        let ro = Grant::new(peer, p, true)?;
        let other = Grant::new(DomainId(0), Page::new()?, false)?;
        let rw = Grant::new(peer, Page::new()?, false)?;
        Ok((ro, other, rw))
    });
    let (ro, other, rw) = match grants {
        Ok(g) => g,
        Err(e) => {
            println!("ring-victim: FAIL granting pages: {e}");
            return;
        }
    };
    c.expect_eq(
        "grant references",
        (ro.gref(), other.gref(), rw.gref()),
        (GrantRef(1), GrantRef(2), GrantRef(3)),
    );

    // 1. The peer maps page 1 and holds it: revoking is refused.
    match command(&mut ring, 0, Cmd::MapAndHold) {
        Ok(s) => c.expect_eq("MapAndHold status", s, STATUS_OK),
        Err(e) => c.fail(format_args!("MapAndHold: {e}")),
    }
    c.check("reading bit set while mapped", in_use(ro.gref()));
    let ro = match ro.end() {
        Ok(_) => {
            c.fail(format_args!("end_access of a mapped grant succeeded"));
            return;
        }
        Err((g, e)) => {
            println!("ring-victim: end_access of a grant the peer maps: {e} (refused)");
            c.expect_eq("end_access while mapped", e, Error::Busy);
            g
        }
    };

    // 2. The peer probes grants it was not given.
    match command(&mut ring, 1, Cmd::Probe) {
        Ok(s) => c.expect_eq("probes the peer saw allowed", s, 0),
        Err(e) => c.fail(format_args!("Probe: {e}")),
    }

    // 3. The peer scribbles on the indices: the ring must be refused.
    match command(&mut ring, 2, Cmd::Scribble) {
        Err(Fault::Ring(e)) => {
            println!("ring-victim: peer broke the ring: {e}; ring closed");
            c.expect_eq("error", e, RingError::Overflow);
            c.expect_eq("after", ring.take().err(), Some(RingError::Broken));
        }
        other => c.fail(format_args!(
            "Scribble: expected an overflow, got {other:?}"
        )),
    }

    // The peer crashes on its write through the read-only mapping; its
    // mappings go with it and every page comes back.
    match take_back(ro, 30_000) {
        Ok(p) => {
            println!("ring-victim: page 1 taken back after the peer died");
            let mut now = [0u8; 4096];
            let _ = p.read(0, &mut now);
            c.check("page 1 unchanged by the read-only mapper", now == pattern);
        }
        Err(e) => c.fail(format_args!("page 1 never came back: {e}")),
    }
    c.check("ring page released", !in_use(ring.gref()));
    c.check("ring page taken back", ring.close().is_ok());
    c.check("page 2 taken back", take_back(other, 1_000).is_ok());
    c.check("page 3 taken back", take_back(rw, 1_000).is_ok());
    c.finish();
}
