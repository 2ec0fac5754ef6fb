//! ring-back: the back end of the shared-ring test. Connects to its peer's
//! ring (`peer=`, through the configuration store, see `test_guests::rings`)
//! and serves `count=<n>` requests
//! (default 1000): maps each request page read-only (once), copies the
//! payload out and checks its checksum on the copy, then writes the response
//! payload into the request's response page with batched grant copies.
//! Requests must arrive in order, none missing. With `remap=<k>` it drops
//! every mapping after each `k` requests and maps pages again as requests
//! name them, so mapping slots are reused for other pages (a stale stage-2
//! TLB entry would show the old page: a checksum error). At the end it unmaps
//! everything, so the front end can take its pages back. Prints
//! `ring-back: PASS <n> requests (<e> events sent, <m> maps, all dropped <r>
//! times)` or
//! `ring-back: FAIL ...`.
//!
//! With `tolerant` it faces a front end that may be hostile
//! (`ring-rogue`): requests may come in any order and a bad one (a length,
//! `pad` or grant it refuses, a payload that does not match its checksum, a
//! response grant it cannot copy into) is answered with its status and the
//! service goes on. Only a broken ring (a request index claiming more than
//! the ring holds: `RingError::Overflow`) ends it: the back end refuses the
//! ring, unmaps everything and prints `ring-back: PASS tolerant: <n> served,
//! <m> refused, then the ring was refused; everything unmapped`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::grant::{self, CopyBatch, GrantPtr, GrantRef, Mapping};
use pv_guest_sdk::ring::Fault;
use pv_guest_sdk::store::Store;
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{StartInfo, events, println};
use test_guests::events::peer;
use test_guests::rings::{
    Back, DATA_PAGES, Req, Rsp, STATUS_BAD_REQUEST, STATUS_BAD_SUM, STATUS_GRANT_FAILED, STATUS_OK,
    checksum, connect_back, response_byte, status_name,
};

pv_guest_sdk::entry!(back);

const PAGE: usize = 4096;

/// The request pages mapped so far, by grant reference.
struct Maps {
    peer: DomainId,
    maps: Vec<(u32, Mapping)>,
    /// Mappings made, all told.
    made: u64,
    /// Times every mapping was dropped.
    remaps: u64,
}

impl Maps {
    /// The mapping of request page `gref`, mapped read-only on first use.
    fn get(&mut self, gref: u32) -> Result<&Mapping, u32> {
        let i = match self.maps.iter().position(|(g, _)| *g == gref) {
            Some(i) => i,
            None if self.maps.len() < DATA_PAGES as usize => {
                let m =
                    grant::map(self.peer, GrantRef(gref), true).map_err(|_| STATUS_GRANT_FAILED)?;
                self.maps.push((gref, m));
                self.made += 1;
                self.maps.len() - 1
            }
            None => return Err(STATUS_BAD_REQUEST),
        };
        Ok(&self.maps[i].1)
    }
}

/// Serves `req` into `out` (a page of the arena). Returns the response
/// (status, and length and checksum of what `out` holds).
fn serve(req: &Req, maps: &mut Maps, out: &mut [u8]) -> Rsp {
    let mut rsp = Rsp {
        id: req.id,
        ..Rsp::default()
    };
    let len = req.len as usize;
    if len == 0 || len > PAGE || req.pad != 0 {
        rsp.status = STATUS_BAD_REQUEST;
        return rsp;
    }
    let mut payload = [0u8; PAGE];
    // One snapshot: the front end may rewrite its page at any time, and
    // only the copy is checked and used.
    let copied = maps.get(req.req_gref).and_then(|m| {
        m.read(0, &mut payload[..len])
            .map_err(|_| STATUS_GRANT_FAILED)
    });
    if let Err(status) = copied {
        rsp.status = status;
        return rsp;
    }
    let payload = &payload[..len];
    if checksum(payload) != req.sum {
        rsp.status = STATUS_BAD_SUM;
        return rsp;
    }
    for (j, b) in out[..len].iter_mut().enumerate() {
        *b = response_byte(req.id, payload, j);
    }
    rsp.status = STATUS_OK;
    rsp.len = req.len;
    rsp.sum = checksum(&out[..len]);
    rsp
}

/// What the back end did.
#[derive(Default)]
struct Stats {
    served: u64,
    refused: u64,
}

/// Refusals printed one by one (later ones are only counted).
const REFUSALS_SHOWN: u64 = 16;

/// Serves requests: `count` of them in order, or in `tolerant` mode any
/// number, refusing bad ones (each answered with its status) until the
/// front end breaks the ring, which ends the service.
fn serve_all(
    ring: &mut Back,
    maps: &mut Maps,
    count: u64,
    remap: u64,
    tolerant: bool,
) -> Result<Stats, alloc::string::String> {
    use alloc::format;
    let mut arena = vec![0u8; DATA_PAGES as usize * PAGE];
    let mut batch: Vec<(Req, Rsp)> = Vec::with_capacity(DATA_PAGES as usize);
    let mut next = 0u64;
    let mut stats = Stats::default();
    while tolerant || next < count {
        batch.clear();
        while batch.len() < DATA_PAGES as usize {
            let req = match ring.take() {
                Ok(Some(req)) => req,
                Ok(None) => break,
                Err(e) if tolerant => {
                    // Nothing more can be trusted on this ring (the SDK
                    // refuses every further use): requests taken in this
                    // batch stay unanswered.
                    println!("ring-back: peer broke the ring: {e}; ring refused");
                    return Ok(stats);
                }
                Err(e) => return Err(format!("ring: {e}")),
            };
            if !tolerant && req.id != next {
                return Err(format!("request {} arrived, expected {next}", req.id));
            }
            next += 1;
            if remap != 0 && next > 1 && (next - 1).is_multiple_of(remap) {
                maps.remaps += 1;
                for (_, m) in maps.maps.drain(..) {
                    m.unmap().map_err(|e| format!("unmap: {e}"))?;
                }
            }
            let j = batch.len();
            let rsp = serve(&req, maps, &mut arena[j * PAGE..(j + 1) * PAGE]);
            if rsp.status != STATUS_OK && !tolerant {
                return Err(format!("request {}: status {}", req.id, rsp.status));
            }
            batch.push((req, rsp));
        }
        if batch.is_empty() {
            let patience = if next == 0 { 30_000 } else { 5_000 };
            match ring.wait(Some(Deadline::after_ms(patience).0)) {
                Ok(()) => {}
                // The final check before sleeping found the broken index.
                Err(Fault::Ring(e)) if tolerant => {
                    println!("ring-back: peer broke the ring: {e}; ring refused");
                    return Ok(stats);
                }
                Err(e) => return Err(format!("waiting for request {next}: {e}")),
            }
            continue;
        }
        let mut copies = CopyBatch::new();
        let mut slots = Vec::with_capacity(batch.len());
        for (j, (req, rsp)) in batch.iter().enumerate() {
            if rsp.status != STATUS_OK {
                slots.push(None);
                continue;
            }
            let src = &arena[j * PAGE..j * PAGE + rsp.len as usize];
            let dst = GrantPtr {
                domid: maps.peer,
                gref: GrantRef(req.rsp_gref),
                offset: 0,
            };
            slots.push(Some(
                copies
                    .to_grant(src, dst)
                    .map_err(|e| format!("copy: {e}"))?,
            ));
        }
        let failed = copies.run().map_err(|e| format!("grant copy: {e}"))?;
        if failed != 0 && !tolerant {
            let i = (0..batch.len()).find(|&i| copies.status(i).is_err());
            return Err(format!("{failed} grant copies failed (first: {i:?})"));
        }
        for ((req, rsp), slot) in batch.iter_mut().zip(&slots) {
            if slot.is_some_and(|c| copies.status(c).is_err()) {
                *rsp = Rsp {
                    id: req.id,
                    status: STATUS_GRANT_FAILED,
                    ..Rsp::default()
                };
            }
            if rsp.status == STATUS_OK {
                stats.served += 1;
            } else {
                stats.refused += 1;
                if stats.refused <= REFUSALS_SHOWN {
                    println!(
                        "ring-back: refused request {}: {}",
                        req.id,
                        status_name(rsp.status)
                    );
                }
            }
            ring.push(rsp).map_err(|e| format!("push: {e}"))?;
        }
        ring.publish().map_err(|e| format!("notify: {e}"))?;
    }
    Ok(stats)
}

fn back(si: &StartInfo) {
    let count = si.cmdline().get_u64("count").unwrap_or(1000);
    let remap = si.cmdline().get_u64("remap").unwrap_or(0);
    let tolerant = si.cmdline().has("tolerant");
    if let Err(e) = events::init() {
        println!("ring-back: FAIL events: {e}");
        return;
    }
    let Some(peer) = peer(si) else {
        println!("ring-back: FAIL no peer= on the command line");
        return;
    };
    let mut store = match Store::connect() {
        Ok(s) => s,
        Err(e) => {
            println!("ring-back: FAIL store: {e}");
            return;
        }
    };
    let mut ring = match connect_back(&mut store, peer) {
        Ok((r, _)) => r,
        Err(e) => {
            println!("ring-back: FAIL rendezvous: {e}");
            return;
        }
    };
    println!("ring-back: connected to domain {}", peer.0);
    let mut maps = Maps {
        peer,
        maps: Vec::new(),
        made: 0,
        remaps: 0,
    };
    let stats = match serve_all(&mut ring, &mut maps, count, remap, tolerant) {
        Ok(s) => s,
        Err(e) => {
            println!("ring-back: FAIL {e}");
            return;
        }
    };
    let events = ring.notifications();
    let (made, remaps) = (maps.made, maps.remaps);
    for (_, m) in maps.maps.drain(..) {
        if let Err(e) = m.unmap() {
            println!("ring-back: FAIL unmap: {e}");
            return;
        }
    }
    if let Err(e) = ring.close() {
        println!("ring-back: FAIL unmapping the ring: {e}");
        return;
    }
    if tolerant {
        println!(
            "ring-back: PASS tolerant: {} served, {} refused, then the ring was refused; everything unmapped",
            stats.served, stats.refused
        );
    } else {
        println!(
            "ring-back: PASS {count} requests ({events} events sent, {made} maps, all dropped {remaps} times)"
        );
    }
}
