//! store-b: the configuration store test's second domain and the back end
//! of store-a's device (`peer=-1`). Checks its own keys and that it cannot
//! read store-a's, then runs the back-end handshake: maps the page store-a
//! granted and checks what it holds, binds store-a's port. It then watches
//! the node store-a granted it, kicks store-a, and checks that exactly one
//! event comes for store-a's one change: `store-b: PASS 1 event for 1
//! change by domain <a>`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use pv_guest_sdk::abi::grant::GrantRef;
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant;
use pv_guest_sdk::store::{Device, Error, Store, StoreError};
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{StartInfo, println};
use test_guests::events::peer;

pv_guest_sdk::entry!(store_b);

/// What store-a's granted page holds (see store-a).
const MAGIC: &[u8] = b"tern store handshake";

fn fail(what: core::fmt::Arguments<'_>) {
    println!("store-b: FAIL {what}");
}

fn store_b(si: &StartInfo) {
    let Some(front) = peer(si) else {
        return fail(format_args!("no peer= on the command line"));
    };
    let mut s = match Store::connect() {
        Ok(s) => s,
        Err(e) => return fail(format_args!("connect: {e}")),
    };
    let me = si.domain_id();
    match s.write("k", b"v").and_then(|()| s.read("k")) {
        Ok(v) if v == b"v" => println!("store-b: PASS own keys"),
        r => return fail(format_args!("own keys: {r:?}")),
    }
    let theirs = alloc::format!("/local/domain/{}/data/x", front.0);
    match s.read(&theirs) {
        Err(Error::Store(StoreError::Access)) => {
            println!("store-b: PASS reading {theirs}: EACCES")
        }
        r => return fail(format_args!("reading {theirs}: {r:?}")),
    }

    let dev = Device {
        kind: "ring".into(),
        index: 0,
        front,
        back: me,
    };
    let attached = s.back_connect(&dev, Deadline::after_ms(20_000), |d| {
        let map = grant::map(front, GrantRef(d.ring_ref), true)?;
        let mut got = [0u8; MAGIC.len()];
        map.read(0, &mut got)?;
        if got != MAGIC {
            println!("store-b: FAIL the granted page holds {got:?}");
        }
        let port = events::bind_interdomain(front, Port(d.event_channel))?;
        Ok((map, port, d))
    });
    let (_map, port, d) = match attached {
        Ok(a) => a,
        Err(e) => return fail(format_args!("back handshake: {e}")),
    };
    println!(
        "store-b: PASS handshake (ring-ref {}, port {})",
        d.ring_ref, d.event_channel
    );

    // One change of a node store-a granted: exactly one event.
    let shared = alloc::format!("/local/domain/{}/shared/v", front.0);
    if let Err(e) = s.watch(&shared, "peer") {
        return fail(format_args!("watch {shared}: {e}"));
    }
    match s.next_event(Some(Deadline::after_ms(5_000))) {
        Ok(Some(ev)) if ev.path == shared => {}
        r => return fail(format_args!("first event: {r:?}")),
    }
    if let Err(e) = events::send(port) {
        return fail(format_args!("kicking store-a: {e}"));
    }
    let mut events_seen = 0;
    loop {
        let wait = if events_seen == 0 { 20_000 } else { 1_000 };
        match s.next_event(Some(Deadline::after_ms(wait))) {
            Ok(Some(ev)) if ev.path == shared => events_seen += 1,
            Ok(Some(ev)) => return fail(format_args!("event for {}", ev.path)),
            Ok(None) => break,
            Err(e) => return fail(format_args!("waiting: {e}")),
        }
    }
    match s.read(&shared) {
        Ok(v) if v == b"1" && events_seen == 1 => {
            println!("store-b: PASS 1 event for 1 change by domain {}", front.0)
        }
        r => fail(format_args!("{events_seen} events, value {r:?}")),
    }
}
