//! evtchn-pong: the server half of the inter-domain event test. Reserves
//! port 1 for its peer (`peer=`, see `test_guests::events`), then answers
//! each event from the peer with one event back, `count=<n>` times (default
//! 1000). An event that arrives before the previous one was answered is a
//! duplicate. Prints `evtchn-pong: PASS <n> events` or `evtchn-pong: FAIL ...`.
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::sync::atomic::{AtomicU64, Ordering};

use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{StartInfo, println};
use test_guests::events::{PONG_PORT, can_run, peer};

pv_guest_sdk::entry!(pong);

static RECEIVED: AtomicU64 = AtomicU64::new(0);

fn on_event(_: Port) {
    RECEIVED.fetch_add(1, Ordering::AcqRel);
}

fn pong(si: &StartInfo) {
    let count = si.cmdline().get_u64("count").unwrap_or(1000);
    if let Err(e) = events::init() {
        println!("evtchn-pong: FAIL init: {e}");
        return;
    }
    if !can_run(si, "evtchn-pong") {
        return;
    }
    let Some(peer) = peer(si) else {
        println!("evtchn-pong: FAIL no peer= on the command line");
        return;
    };
    let port = match events::alloc_unbound(peer) {
        Ok(p) if p == PONG_PORT => p,
        Ok(p) => {
            println!(
                "evtchn-pong: FAIL reserved port {} (expected {})",
                p.0, PONG_PORT.0
            );
            return;
        }
        Err(e) => {
            println!("evtchn-pong: FAIL alloc_unbound({}): {e}", peer.0);
            return;
        }
    };
    events::on(port, on_event);
    if events::upcalls_live() {
        pv_guest_sdk::enable_irqs();
    }
    println!(
        "evtchn-pong: port {} reserved for domain {}",
        port.0, peer.0
    );
    for n in 1..=count {
        // The first event may take a while: the peer has to start.
        let patience = if n == 1 { 30_000 } else { 5_000 };
        let d = Deadline::after_ms(patience);
        if !events::wait_until(|| RECEIVED.load(Ordering::Acquire) >= n, Some(d.0)) {
            println!("evtchn-pong: FAIL event {n} never came (lost)");
            return;
        }
        let got = RECEIVED.load(Ordering::Acquire);
        if got != n {
            println!("evtchn-pong: FAIL {got} events before answering {n} (duplicate)");
            return;
        }
        if let Err(e) = events::send(port) {
            println!("evtchn-pong: FAIL send {n}: {e}");
            return;
        }
    }
    // Nothing more may arrive: the peer sends exactly `count`.
    events::wait_until(|| false, Some(Deadline::after_ms(50).0));
    let got = RECEIVED.load(Ordering::Acquire);
    if got == count {
        println!("evtchn-pong: PASS {count} events");
    } else {
        println!("evtchn-pong: FAIL {got} events, expected {count}");
    }
}
