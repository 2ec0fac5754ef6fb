//! blk-hostile: a hostile block front end (tests/tests/blk.rs). Connects to
//! its first virtual disk by hand (its own ring page, so that it can
//! scribble on it), then sends requests dom0 must refuse: a grant it never
//! made, huge and just-past-the-end sectors, too many segments, an unknown
//! op, a segment past its page. Each must come back with its error status
//! (`blk-hostile: refused <what>: <status>`), and a good read must still
//! work. Then it claims a request index far past the ring: dom0 must stop
//! using the ring and say so with back-end state Closed (`blk-hostile: PASS
//! disconnected`).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use core::sync::atomic::Ordering;

use pv_guest_sdk::abi::blkif::{
    BlkifOp, BlkifRequest, BlkifResponse, BlkifSegment, BlkifStatus, DEVICE_KIND,
};
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::ring::Front;
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::{self, Page};
use pv_guest_sdk::store::{Device, FrontDetails, Store, XenbusState};
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(hostile);

fn fail(what: core::fmt::Arguments<'_>) {
    println!("blk-hostile: FAIL {what}");
}

/// Sends `req` and waits for its response's status.
fn call(
    ring: &mut Front<'_, BlkifRequest, BlkifResponse>,
    port: Port,
    req: &BlkifRequest,
) -> Option<BlkifStatus> {
    ring.push(req).ok()?;
    if ring.publish() {
        events::send(port).ok()?;
    }
    let deadline = Deadline::after_ms(10_000);
    loop {
        match ring.take() {
            Ok(Some(r)) if r.id == req.id => return BlkifStatus::from_raw(r.status),
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) => {}
        }
        if !events::wait_until(|| ring.final_check().unwrap_or(true), Some(deadline.0)) {
            return None;
        }
    }
}

fn hostile(si: &StartInfo) {
    let back = DomainId(0);
    let dev = Device {
        kind: DEVICE_KIND.into(),
        index: 0,
        front: si.domain_id(),
        back,
    };
    let mut s = match Store::connect() {
        Ok(s) => s,
        Err(e) => return fail(format_args!("store: {e}")),
    };
    let sectors: u64 = match s.read_string(&alloc::format!("{}/sectors", dev.back_dir())) {
        Ok(v) => v.trim().parse().unwrap_or(0),
        Err(e) => return fail(format_args!("sectors: {e}")),
    };
    // Pages that live for ever: the ring (ours to scribble on) and data.
    let (ring_page, data) = match (Page::new(), Page::new()) {
        (Ok(r), Ok(d)) => (r.leak(), d.leak()),
        _ => return fail(format_args!("no memory")),
    };
    let mut ring = Front::new(ring_page.as_ring());
    let granted = grant::grant_access(back, ring_page, false)
        .and_then(|r| Ok((r, grant::grant_access(back, data, false)?)))
        .and_then(|g| Ok((g, events::alloc_unbound(back)?)));
    let ((ring_ref, data_ref), port) = match granted {
        Ok(g) => g,
        Err(e) => return fail(format_args!("grant/port: {e}")),
    };
    let details = FrontDetails {
        ring_ref: ring_ref.0,
        event_channel: port.0,
    };
    if let Err(e) = s.front_connect(&dev, details, Deadline::after_ms(20_000)) {
        return fail(format_args!("handshake: {e}"));
    }
    println!("blk-hostile: connected to a disk of {sectors} sectors");

    let seg = |gref: u32, last_sect: u8| BlkifSegment {
        gref,
        first_sect: 0,
        last_sect,
        reserved: [0; 2],
    };
    let req = |id: u64, op: u8, sector: u64, nr: u8, s: BlkifSegment| {
        let mut r = BlkifRequest {
            id,
            sector,
            op,
            nr_segments: nr,
            ..BlkifRequest::default()
        };
        r.segments.fill(s);
        r
    };
    let read = BlkifOp::Read.raw();
    let good = seg(data_ref.0, 7);
    let cases = [
        (
            "a grant never made",
            req(1, read, 0, 1, seg(4000, 7)),
            BlkifStatus::BadRequest,
        ),
        (
            "a grant beyond the table",
            req(2, read, 0, 1, seg(u32::MAX, 7)),
            BlkifStatus::BadRequest,
        ),
        (
            "sector 2^64-2",
            req(3, read, u64::MAX - 1, 1, good),
            BlkifStatus::OutOfRange,
        ),
        (
            "sector 2^63",
            req(4, read, 1 << 63, 1, good),
            BlkifStatus::OutOfRange,
        ),
        (
            "the sector past the end",
            req(5, read, sectors, 1, good),
            BlkifStatus::OutOfRange,
        ),
        (
            "200 segments",
            req(6, read, 0, 200, good),
            BlkifStatus::BadRequest,
        ),
        (
            "0 segments",
            req(7, read, 0, 0, good),
            BlkifStatus::BadRequest,
        ),
        ("op 99", req(8, 99, 0, 1, good), BlkifStatus::BadRequest),
        (
            "a segment past its page",
            req(9, read, 0, 1, seg(data_ref.0, 8)),
            BlkifStatus::BadRequest,
        ),
    ];
    let mut refused = 0;
    for (what, r, want) in &cases {
        match call(&mut ring, port, r) {
            Some(got) if got == *want => {
                refused += 1;
                println!("blk-hostile: refused {what}: {}", got.name());
            }
            got => fail(format_args!("{what}: {got:?}, expected {want:?}")),
        }
    }
    match call(&mut ring, port, &req(10, read, 0, 1, good)) {
        Some(BlkifStatus::Okay) => {
            println!("blk-hostile: PASS {refused} refused, a good read served")
        }
        got => fail(format_args!("good read: {got:?}")),
    }

    // A request index far past the ring.
    ring_page
        .as_ring()
        .req_prod
        .store(0x4000_0000, Ordering::Release);
    let _ = events::send(port);
    let back_state = alloc::format!("{}/state", dev.back_dir());
    match s.wait_state(
        &back_state,
        |st| st == XenbusState::Closed,
        Deadline::after_ms(10_000),
    ) {
        Ok(_) => println!("blk-hostile: PASS disconnected (back end state Closed)"),
        Err(e) => fail(format_args!("not disconnected: {e}")),
    }
}
