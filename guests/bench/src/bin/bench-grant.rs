//! bench-grant: grant tables and shared rings between two domains on one
//! CPU. Two domains run this image:
//!
//! - `role=front` (created first, `peer=+1`) reserves its first event port
//!   for the back end, creates a ring of `u64` requests and responses (the
//!   ring page is its first grant) and grants one data page read-write (its
//!   second grant). It measures `ring-roundtrip`: `iters=<n>` round trips
//!   (after `warmup=<w>` unmeasured ones, default 8), each a request pushed
//!   and published (an event to the back end), the back end's answer, and
//!   the response taken; both sides block in `sched_op block` in between
//!   (`FrontRing::wait` / `BackRing::wait`, the PV pattern). Then it sends
//!   one last request, [`MEASURE_GRANTS`], and blocks until it is answered.
//! - `role=back` (`peer=-1`) binds the port and maps the ring, answers every
//!   request with its id, and on [`MEASURE_GRANTS`] measures, while the
//!   front end is blocked, `grant-map-unmap` (`iters` times: map the data
//!   page read-only, unmap it) and `grant-copy-4k` (`iters` times: one
//!   `grant_op copy` of the whole data page into a page of its own), then
//!   answers.
//!
//! Three sets of measured regions, in this order: ring, map/unmap, copy (one
//! region each). Console: `bench-grant: iterations=<n>` (front) and
//! `bench-grant: <role> done` when a side finished without a fault.
#![cfg_attr(target_os = "none", no_std, no_main)]

use bench_guests::{peer_id, region_start, region_stop};
use pv_guest_sdk::abi::Error;
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::evtchn::PortState;
use pv_guest_sdk::abi::grant::{CopyFlags, CopyPtr, GrantCopy};
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::{self, Grant, GrantRef, Page};
use pv_guest_sdk::ring::{BackRing, FrontRing};
use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(bench_grant);

/// Measured iterations of each benchmark when the command line does not say.
const DEFAULT_ITERS: u64 = 1000;
/// Unmeasured ring round trips first: both sides are then in their loops.
const DEFAULT_WARMUP: u64 = 8;
/// The front end's first event port, reserved for the back end.
const FRONT_PORT: Port = Port(1);
/// The ring page: the front end's first grant.
const RING_GREF: GrantRef = GrantRef(0);
/// The data page: the front end's second grant.
const DATA_GREF: GrantRef = GrantRef(1);
/// Bytes of a page.
const PAGE_BYTES: u16 = 4096;
/// The request that asks the back end to measure the grant operations.
const MEASURE_GRANTS: u64 = u64::MAX;

type Front = FrontRing<u64, u64>;
type Back = BackRing<u64, u64>;

/// What went wrong, for the FAIL line.
type Failure = &'static str;

fn bench_grant(si: &StartInfo) {
    let cmdline = si.cmdline();
    let iters = cmdline.get_u64("iters").unwrap_or(DEFAULT_ITERS);
    let warmup = cmdline.get_u64("warmup").unwrap_or(DEFAULT_WARMUP);
    let role = cmdline.get("role").unwrap_or("");
    bench_guests::enable_cycles(cmdline.get_u64("pmu") == Some(1));
    let Some(peer) = cmdline
        .get("peer")
        .and_then(|v| peer_id(v, si.domain_id().0))
        .map(DomainId)
    else {
        println!("bench-grant: FAIL no usable peer= on the command line");
        return;
    };
    if let Err(e) = events::init() {
        println!("bench-grant: FAIL events init: {e}");
        return;
    }
    let result = match role {
        "front" => front(peer, iters, warmup),
        "back" => back(peer, iters),
        _ => Err("role= must be front or back"),
    };
    match result {
        Ok(()) => println!("bench-grant: {role} done"),
        Err(why) => println!("bench-grant: FAIL {role}: {why}"),
    }
}

fn front(peer: DomainId, iters: u64, warmup: u64) -> Result<(), Failure> {
    let port = loop {
        match events::alloc_unbound(peer) {
            Ok(p) => break p,
            // The back end is created after this domain.
            Err(Error::NoSuchDomain) => pv_guest_sdk::yield_now(),
            Err(_) => return Err("alloc_unbound failed"),
        }
    };
    if port != FRONT_PORT {
        return Err("the reserved port is not the first one");
    }
    let mut ring = Front::new(peer, port).map_err(|_| "cannot create and grant the ring")?;
    let page = Page::new().map_err(|_| "no memory for the data page")?;
    let data = Grant::new(peer, page, false).map_err(|_| "cannot grant the data page")?;
    if ring.gref() != RING_GREF || data.gref() != DATA_GREF {
        return Err("the grants are not the first two references");
    }
    data.page()
        .write(0, &[0x5a; PAGE_BYTES as usize])
        .map_err(|_| "data page write")?;
    // The back end binds the port after it mapped the ring.
    loop {
        match events::status(port) {
            Ok(s) if s.state == PortState::Interdomain => break,
            Ok(_) => pv_guest_sdk::yield_now(),
            Err(_) => return Err("port status failed"),
        }
    }
    println!("bench-grant: iterations={iters}");
    for id in 0..warmup {
        round_trip(&mut ring, id)?;
    }
    region_start();
    for id in warmup..warmup + iters {
        round_trip(&mut ring, id)?;
    }
    region_stop();
    if let Some(c) = bench_guests::cycles_report(iters) {
        println!("bench-grant: ring-roundtrip {c}");
    }
    // Blocked until the back end measured the grant operations.
    round_trip(&mut ring, MEASURE_GRANTS)?;
    drop(data);
    Ok(())
}

/// One request out and its response back.
fn round_trip(ring: &mut Front, id: u64) -> Result<(), Failure> {
    ring.push(&id).map_err(|_| "push refused")?;
    ring.publish_and_wait(None)
        .map_err(|_| "notify or wait failed")?;
    loop {
        match ring.take() {
            Ok(Some(rsp)) if rsp == id => return Ok(()),
            Ok(Some(_)) => return Err("response out of order"),
            Ok(None) => ring.wait(None).map_err(|_| "wait failed")?,
            Err(_) => return Err("bad response index"),
        }
    }
}

fn back(peer: DomainId, iters: u64) -> Result<(), Failure> {
    let port = loop {
        match events::bind_interdomain(peer, FRONT_PORT) {
            Ok(p) => break p,
            Err(Error::NotFound | Error::NoSuchDomain) => pv_guest_sdk::yield_now(),
            Err(_) => return Err("bind_interdomain failed"),
        }
    };
    let mut ring = loop {
        match Back::new(peer, RING_GREF, port) {
            Ok(b) => break b,
            Err(_) => pv_guest_sdk::yield_now(),
        }
    };
    ring.wait(None).map_err(|_| "wait failed")?;
    loop {
        while let Some(req) = ring.take().map_err(|_| "bad request index")? {
            if req == MEASURE_GRANTS {
                measure_map(peer, iters)?;
                measure_copy(peer, iters)?;
                ring.push(&req).map_err(|_| "push refused")?;
                ring.publish().map_err(|_| "notify failed")?;
                return ring.close().map_err(|_| "ring unmap failed");
            }
            ring.push(&req).map_err(|_| "push refused")?;
        }
        // The responses out and the next request awaited: one hypercall
        // when the front end must be told.
        ring.publish_and_wait(None)
            .map_err(|_| "notify or wait failed")?;
    }
}

/// `grant-map-unmap`: map the data page read-only and unmap it, `iters`
/// times, in one region.
fn measure_map(peer: DomainId, iters: u64) -> Result<(), Failure> {
    let mut failed = 0u64;
    region_start();
    for _ in 0..iters {
        match grant::map(peer, DATA_GREF, true) {
            Ok(m) => failed += u64::from(m.unmap().is_err()),
            Err(_) => failed += 1,
        }
    }
    region_stop();
    if let Some(c) = bench_guests::cycles_report(iters) {
        println!("bench-grant: grant-map-unmap {c}");
    }
    if failed == 0 {
        Ok(())
    } else {
        Err("a map or unmap failed")
    }
}

/// `grant-copy-4k`: one `grant_op copy` of the whole data page into a page
/// of this domain, `iters` times, in one region. The operation is built
/// once, as a driver copying into a fixed buffer would.
fn measure_copy(peer: DomainId, iters: u64) -> Result<(), Failure> {
    let dst = Page::new().map_err(|_| "no memory for the copy target")?;
    let op = GrantCopy {
        src: CopyPtr {
            domid: peer.0,
            gref: DATA_GREF.0,
            offset: 0,
        },
        dst: CopyPtr {
            domid: 0,
            gref: 0,
            offset: dst.ipa(),
        },
        len: PAGE_BYTES,
        flags: CopyFlags::SRC_GREF.bits(),
        status: 0,
    };
    let mut ops = [op];
    let mut failed = 0u64;
    region_start();
    for _ in 0..iters {
        // SAFETY: the only local end is `dst`, a whole page this function
        // owns until it returns; `PageBuf` is made of atomics, so the
        // hypervisor writing it breaks no Rust reference's assumptions.
        let r = unsafe { grant::copy(&mut ops) };
        failed += u64::from(!matches!(r, Ok(0)));
    }
    region_stop();
    if let Some(c) = bench_guests::cycles_report(iters) {
        println!("bench-grant: grant-copy-4k {c}");
    }
    let mut byte = [0u8; 1];
    dst.read(usize::from(PAGE_BYTES) - 1, &mut byte)
        .map_err(|_| "copy target read")?;
    if failed != 0 {
        Err("a grant copy failed")
    } else if byte[0] != 0x5a {
        Err("the copy did not bring the front end's bytes")
    } else {
        Ok(())
    }
}
