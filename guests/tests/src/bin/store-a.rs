//! store-a: the configuration store test's first domain and the front end
//! of a split device with store-b (`peer=+1`). Checks that it can write and
//! read its own keys and cannot read store-b's, grants store-b read access
//! to one node, runs the front-end handshake (a granted page and a port),
//! then writes the granted node once store-b says (an event) that it
//! watches it. Last it watches `data/watched` and reports each event, for
//! the QEMU test, which changes that node through dom0's shell: `store-a:
//! event <k> value <v>`; after `count=` events and a quiet second it
//! prints `store-a: PASS <n> events for <n> changes`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use core::sync::atomic::{AtomicBool, Ordering};

use pv_guest_sdk::abi::store::Access;
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::{Grant, Page};
use pv_guest_sdk::store::{Device, Error, FrontDetails, Store, StoreError, StorePerm};
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{StartInfo, println};
use test_guests::events::peer;

pv_guest_sdk::entry!(store_a);

/// What the granted page holds, for store-b to check.
pub const MAGIC: &[u8] = b"tern store handshake";

static KICKED: AtomicBool = AtomicBool::new(false);

fn on_kick(_: Port) {
    KICKED.store(true, Ordering::Release);
}

fn fail(what: core::fmt::Arguments<'_>) {
    println!("store-a: FAIL {what}");
}

fn store_a(si: &StartInfo) {
    let Some(back) = peer(si) else {
        return fail(format_args!("no peer= on the command line"));
    };
    let count = si.cmdline().get_u64("count").unwrap_or(3);
    let mut s = match Store::connect() {
        Ok(s) => s,
        Err(e) => return fail(format_args!("connect: {e}")),
    };
    let me = si.domain_id();
    println!("store-a: connected as domain {} ({})", me.0, s.home());

    // Own keys, relative and absolute.
    let own = s
        .write("data/x", b"hello")
        .and_then(|()| s.read(&alloc::format!("{}/data/x", s.home())));
    match own {
        Ok(v) if v == b"hello" => println!("store-a: PASS own keys"),
        r => return fail(format_args!("own keys: {r:?}")),
    }
    match s.read_string("name") {
        Ok(n) if n == si.name() => {}
        r => return fail(format_args!("name: {r:?}")),
    }
    // Another domain's home.
    let theirs = alloc::format!("/local/domain/{}/name", back.0);
    match s.read(&theirs) {
        Err(Error::Store(StoreError::Access)) => {
            println!("store-a: PASS reading {theirs}: EACCES")
        }
        r => return fail(format_args!("reading {theirs}: {r:?}")),
    }
    // A node store-b may read.
    let perms = [
        StorePerm {
            dom: me.0,
            access: Access::None,
        },
        StorePerm {
            dom: back.0,
            access: Access::Read,
        },
    ];
    if let Err(e) = s
        .write("shared/v", b"0")
        .and_then(|()| s.set_perms("shared/v", &perms))
    {
        return fail(format_args!("granting shared/v: {e}"));
    }

    // The front end's side of a device: a page and a port for store-b.
    let grant = match Page::new().and_then(|p| {
        p.write(0, MAGIC)?;
        Grant::new(back, p, true)
    }) {
        Ok(g) => g,
        Err(e) => return fail(format_args!("granting a page: {e}")),
    };
    let port = match events::alloc_unbound(back) {
        Ok(p) => p,
        Err(e) => return fail(format_args!("alloc_unbound: {e}")),
    };
    events::on(port, on_kick);
    let dev = Device {
        kind: "ring".into(),
        index: 0,
        front: me,
        back,
    };
    let details = FrontDetails {
        ring_ref: grant.gref().0,
        event_channel: port.0,
    };
    if let Err(e) = s.front_connect(&dev, details, Deadline::after_ms(20_000)) {
        return fail(format_args!("front handshake: {e}"));
    }
    println!(
        "store-a: PASS handshake (ring-ref {}, port {})",
        details.ring_ref, port.0
    );
    // store-b kicks once it watches shared/v; then one change.
    if !events::wait_until(
        || KICKED.load(Ordering::Acquire),
        Some(Deadline::after_ms(20_000).0),
    ) {
        return fail(format_args!("no event from store-b"));
    }
    if let Err(e) = s.write("shared/v", b"1") {
        return fail(format_args!("writing shared/v: {e}"));
    }

    // Changes made by dom0's shell.
    if let Err(e) = s.watch("data/watched", "w") {
        return fail(format_args!("watch: {e}"));
    }
    match s.next_event(Some(Deadline::after_ms(5_000))) {
        Ok(Some(ev)) if ev.path == "data/watched" && ev.token == "w" => {}
        r => return fail(format_args!("first event: {r:?}")),
    }
    println!("store-a: watching data/watched");
    let mut seen = 0;
    loop {
        // The test waits for each report before the next change; after the
        // last one, a quiet second shows that no event came twice.
        let wait = if seen == count { 1_000 } else { 60_000 };
        match s.next_event(Some(Deadline::after_ms(wait))) {
            Ok(Some(ev)) => {
                seen += 1;
                let v = s.read_string("data/watched").unwrap_or_default();
                println!("store-a: event {seen} {} value {v}", ev.path);
                if seen > count {
                    return fail(format_args!("{seen} events for {count} changes"));
                }
            }
            Ok(None) if seen == count => break,
            Ok(None) => return fail(format_args!("{seen} events for {count} changes")),
            Err(e) => return fail(format_args!("waiting for events: {e}")),
        }
    }
    println!("store-a: PASS {seen} events for {count} changes");
    drop(grant);
}
