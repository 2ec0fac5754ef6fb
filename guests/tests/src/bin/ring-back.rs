//! ring-back: the back end of the shared-ring test. Connects to its peer's
//! ring (`peer=`, see `test_guests::rings`) and serves `count=<n>` requests
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
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::grant::{self, CopyBatch, GrantPtr, GrantRef, Mapping};
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{StartInfo, events, println};
use test_guests::events::peer;
use test_guests::rings::{
    Back, DATA_PAGES, Req, Rsp, STATUS_BAD_REQUEST, STATUS_BAD_SUM, STATUS_GRANT_FAILED, STATUS_OK,
    checksum, connect_back, response_byte,
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
    if len == 0 || len > PAGE {
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

/// Serves `count` requests in order.
fn serve_all(
    ring: &mut Back,
    maps: &mut Maps,
    count: u64,
    remap: u64,
) -> Result<(), alloc::string::String> {
    use alloc::format;
    let mut arena = vec![0u8; DATA_PAGES as usize * PAGE];
    let mut batch: Vec<(Req, Rsp)> = Vec::with_capacity(DATA_PAGES as usize);
    let mut next = 0u64;
    while next < count {
        batch.clear();
        while batch.len() < DATA_PAGES as usize {
            let Some(req) = ring.take().map_err(|e| format!("ring: {e}"))? else {
                break;
            };
            if req.id != next {
                return Err(format!("request {} arrived, expected {next}", req.id));
            }
            next += 1;
            if remap != 0 && req.id != 0 && req.id.is_multiple_of(remap) {
                maps.remaps += 1;
                for (_, m) in maps.maps.drain(..) {
                    m.unmap().map_err(|e| format!("unmap: {e}"))?;
                }
            }
            let j = batch.len();
            let rsp = serve(&req, maps, &mut arena[j * PAGE..(j + 1) * PAGE]);
            if rsp.status != STATUS_OK {
                return Err(format!("request {}: status {}", req.id, rsp.status));
            }
            batch.push((req, rsp));
        }
        if batch.is_empty() {
            let patience = if next == 0 { 30_000 } else { 5_000 };
            ring.wait(Some(Deadline::after_ms(patience).0))
                .map_err(|e| format!("waiting for request {next}: {e}"))?;
            continue;
        }
        let mut copies = CopyBatch::new();
        for (j, (req, rsp)) in batch.iter().enumerate() {
            let src = &arena[j * PAGE..j * PAGE + rsp.len as usize];
            let dst = GrantPtr {
                domid: maps.peer,
                gref: GrantRef(req.rsp_gref),
                offset: 0,
            };
            copies
                .to_grant(src, dst)
                .map_err(|e| format!("copy: {e}"))?;
        }
        let failed = copies.run().map_err(|e| format!("grant copy: {e}"))?;
        if failed != 0 {
            let i = (0..batch.len()).find(|&i| copies.status(i).is_err());
            return Err(format!("{failed} grant copies failed (first: {i:?})"));
        }
        for (_, rsp) in &batch {
            ring.push(rsp).map_err(|e| format!("push: {e}"))?;
        }
        ring.publish().map_err(|e| format!("notify: {e}"))?;
    }
    Ok(())
}

fn back(si: &StartInfo) {
    let count = si.cmdline().get_u64("count").unwrap_or(1000);
    let remap = si.cmdline().get_u64("remap").unwrap_or(0);
    if let Err(e) = events::init() {
        println!("ring-back: FAIL events: {e}");
        return;
    }
    let Some(peer) = peer(si) else {
        println!("ring-back: FAIL no peer= on the command line");
        return;
    };
    let mut ring = match connect_back(peer) {
        Ok(r) => r,
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
    if let Err(e) = serve_all(&mut ring, &mut maps, count, remap) {
        println!("ring-back: FAIL {e}");
        return;
    }
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
    println!(
        "ring-back: PASS {count} requests ({events} events sent, {made} maps, all dropped {remaps} times)"
    );
}
