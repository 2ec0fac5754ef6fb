//! ring-front: the front end of the shared-ring test. Sets up a ring with
//! its peer (`peer=`) through the configuration store (see
//! `test_guests::rings`), grants `DATA_PAGES` request
//! pages (read-only) and as many response pages, then sends `count=<n>`
//! requests (default 1000), each with a checksummed payload in a request
//! page, and checks every response: in order, none missing, status OK, the
//! response payload in its response page exactly what the back end must
//! write. At the end it takes every page back (`end_access`, refused while
//! the back end still maps one). Prints
//! `ring-front: PASS <n> requests in <t> us (<e> events sent)` or
//! `ring-front: FAIL ...`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec::Vec;

use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::grant::{Grant, Page};
use pv_guest_sdk::store::Store;
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::{StartInfo, events, println};
use test_guests::events::peer;
use test_guests::rings::{
    DATA_PAGES, Front, Req, Rsp, STATUS_OK, checksum, connect_front, fill_payload, payload_len,
    response_byte,
};

pv_guest_sdk::entry!(front);

/// The pages lent to the back end: request pages (read-only) and response
/// pages (read-write), `DATA_PAGES` of each.
struct Pages {
    req: Vec<Grant>,
    rsp: Vec<Grant>,
}

fn grant_pages(peer: DomainId) -> Result<Pages, pv_guest_sdk::Error> {
    let mut p = Pages {
        req: Vec::new(),
        rsp: Vec::new(),
    };
    for _ in 0..DATA_PAGES {
        p.req.push(Grant::new(peer, Page::new()?, true)?);
    }
    for _ in 0..DATA_PAGES {
        p.rsp.push(Grant::new(peer, Page::new()?, false)?);
    }
    Ok(p)
}

/// Writes request `id`'s payload into its page and pushes the request.
fn send(ring: &mut Front, pages: &Pages, id: u64, buf: &mut [u8]) -> Result<(), &'static str> {
    let k = (id % u64::from(DATA_PAGES)) as usize;
    let len = payload_len(id);
    let payload = &mut buf[..len];
    fill_payload(id, payload);
    pages.req[k]
        .page()
        .write(0, payload)
        .map_err(|_| "payload write")?;
    let req = Req {
        id,
        req_gref: pages.req[k].gref().0,
        len: len as u32,
        sum: checksum(payload),
        rsp_gref: pages.rsp[k].gref().0,
        pad: 0,
    };
    ring.push(&req).map_err(|_| "push refused")
}

/// Checks response `rsp`, which must answer request `id`.
fn check(rsp: &Rsp, pages: &Pages, id: u64, bufs: &mut [[u8; 4096]; 2]) -> Result<(), Wrong> {
    if rsp.id != id {
        return Err(Wrong::Order(rsp.id));
    }
    if rsp.status != STATUS_OK {
        return Err(Wrong::Status(rsp.status));
    }
    let len = payload_len(id);
    if rsp.len as usize != len {
        return Err(Wrong::Len(rsp.len));
    }
    let [req, got] = bufs;
    fill_payload(id, &mut req[..len]);
    let k = (id % u64::from(DATA_PAGES)) as usize;
    pages.rsp[k]
        .page()
        .read(0, &mut got[..len])
        .map_err(|_| Wrong::Len(rsp.len))?;
    if checksum(&got[..len]) != rsp.sum {
        return Err(Wrong::Sum);
    }
    if let Some(j) = (0..len).find(|&j| got[j] != response_byte(id, &req[..len], j)) {
        return Err(Wrong::Byte(j));
    }
    Ok(())
}

/// What was wrong with a response.
enum Wrong {
    Order(u64),
    Status(u32),
    Len(u32),
    Sum,
    Byte(usize),
}

impl core::fmt::Display for Wrong {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Order(got) => write!(f, "answers request {got} (lost or reordered)"),
            Self::Status(s) => write!(f, "status {s}"),
            Self::Len(l) => write!(f, "length {l}"),
            Self::Sum => f.write_str("payload does not match its checksum (corrupted)"),
            Self::Byte(j) => write!(f, "payload byte {j} differs (corrupted)"),
        }
    }
}

/// Sends `count` requests and checks every response.
fn exchange(ring: &mut Front, pages: &Pages, count: u64) -> Result<(), alloc::string::String> {
    use alloc::format;
    let mut buf = [0u8; 4096];
    let mut bufs = [[0u8; 4096]; 2];
    let (mut sent, mut done) = (0u64, 0u64);
    while done < count {
        let before = sent;
        while sent < count && ring.outstanding() < DATA_PAGES {
            send(ring, pages, sent, &mut buf).map_err(|e| format!("request {sent}: {e}"))?;
            sent += 1;
        }
        if sent != before {
            // The event and the wait for responses in one hypercall
            // (`sched_op send_block`); at once if some are there already.
            ring.publish_and_wait(Some(Deadline::after_ms(5_000).0))
                .map_err(|e| format!("notify and wait for response {done}: {e}"))?;
        }
        let mut got = 0;
        while let Some(rsp) = ring.take().map_err(|e| format!("ring: {e}"))? {
            check(&rsp, pages, done, &mut bufs).map_err(|e| format!("response {done}: {e}"))?;
            done += 1;
            got += 1;
        }
        if got == 0 && sent == before {
            ring.wait(Some(Deadline::after_ms(5_000).0))
                .map_err(|e| format!("waiting for response {done}: {e}"))?;
        }
    }
    Ok(())
}

/// Takes every page back once the back end unmapped them.
fn revoke(ring: Front, pages: Pages) -> Result<(), &'static str> {
    let give_up = Deadline::after_ms(5_000);
    for mut g in pages.req.into_iter().chain(pages.rsp) {
        loop {
            match g.end() {
                Ok(_) => break,
                Err((back, _)) if !give_up.passed() => {
                    g = back;
                    pv_guest_sdk::yield_now();
                }
                Err(_) => return Err("a data page stayed mapped"),
            }
        }
    }
    while !give_up.passed() {
        // `close` consumes the ring; check first whether the back end
        // still maps it.
        let flags = pv_guest_sdk::grant::entry_flags(ring.gref());
        if flags
            .is_some_and(|f| f.bits() & pv_guest_sdk::abi::grant::GrantFlags::IN_USE.bits() == 0)
        {
            return ring
                .close()
                .map_err(|_| "the ring page could not be taken back");
        }
        pv_guest_sdk::yield_now();
    }
    Err("the ring page stayed mapped")
}

fn front(si: &StartInfo) {
    let count = si.cmdline().get_u64("count").unwrap_or(1000);
    if let Err(e) = events::init() {
        println!("ring-front: FAIL events: {e}");
        return;
    }
    let Some(peer) = peer(si) else {
        println!("ring-front: FAIL no peer= on the command line");
        return;
    };
    let mut store = match Store::connect() {
        Ok(s) => s,
        Err(e) => {
            println!("ring-front: FAIL store: {e}");
            return;
        }
    };
    let mut ring = match connect_front(&mut store, peer) {
        Ok(r) => r,
        Err(e) => {
            println!("ring-front: FAIL rendezvous: {e}");
            return;
        }
    };
    let pages = match grant_pages(peer) {
        Ok(p) => p,
        Err(e) => {
            println!("ring-front: FAIL granting data pages: {e}");
            return;
        }
    };
    println!(
        "ring-front: ring {} ({} slots) and {} data pages granted to domain {}",
        ring.gref().0,
        Front::SIZE,
        2 * DATA_PAGES,
        peer.0
    );
    let start = time::now();
    if let Err(e) = exchange(&mut ring, &pages, count) {
        println!("ring-front: FAIL {e}");
        return;
    }
    let us = (time::now() - start) / 1000;
    let events = ring.notifications();
    if let Err(e) = revoke(ring, pages) {
        println!("ring-front: FAIL {e}");
        return;
    }
    println!("ring-front: PASS {count} requests in {us} us ({events} events sent)");
}
