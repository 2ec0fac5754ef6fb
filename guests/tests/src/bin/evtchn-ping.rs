//! evtchn-ping: the client half of the inter-domain event test. Connects to
//! port 1 of its peer (`peer=`, see `test_guests::events`), then sends
//! `count=<n>` events (default 1000), each only after the peer answered the
//! previous one, and checks that exactly one answer comes back for each.
//! Prints `evtchn-ping: PASS <n> round trips in <t> us` or
//! `evtchn-ping: FAIL ...`.
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::sync::atomic::{AtomicU64, Ordering};

use pv_guest_sdk::abi::Error;
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::{StartInfo, println};
use test_guests::events::{PONG_PORT, can_run, peer};

pv_guest_sdk::entry!(ping);

static ANSWERS: AtomicU64 = AtomicU64::new(0);

fn on_answer(_: Port) {
    ANSWERS.fetch_add(1, Ordering::AcqRel);
}

/// Connects to the peer's reserved port, retrying while the peer has not
/// reserved it yet (it may start after us).
fn connect(peer: pv_guest_sdk::abi::domctl::DomainId) -> Result<Port, Error> {
    let give_up = Deadline::after_ms(30_000);
    loop {
        match events::bind_interdomain(peer, PONG_PORT) {
            Ok(p) => return Ok(p),
            Err(Error::NotFound | Error::NoSuchDomain) if !give_up.passed() => {
                pv_guest_sdk::yield_now();
            }
            Err(e) => return Err(e),
        }
    }
}

fn ping(si: &StartInfo) {
    let count = si.cmdline().get_u64("count").unwrap_or(1000);
    if let Err(e) = events::init() {
        println!("evtchn-ping: FAIL init: {e}");
        return;
    }
    if !can_run(si, "evtchn-ping") {
        return;
    }
    let Some(peer) = peer(si) else {
        println!("evtchn-ping: FAIL no peer= on the command line");
        return;
    };
    let port = match connect(peer) {
        Ok(p) => p,
        Err(e) => {
            println!(
                "evtchn-ping: FAIL bind_interdomain({}, {}): {e}",
                peer.0, PONG_PORT.0
            );
            return;
        }
    };
    events::on(port, on_answer);
    if events::upcalls_live() {
        pv_guest_sdk::enable_irqs();
    }
    println!(
        "evtchn-ping: port {} connected to domain {} port {}",
        port.0, peer.0, PONG_PORT.0
    );
    let start = time::now();
    for n in 1..=count {
        if let Err(e) = events::send(port) {
            println!("evtchn-ping: FAIL send {n}: {e}");
            return;
        }
        let d = Deadline::after_ms(5_000);
        if !events::wait_until(|| ANSWERS.load(Ordering::Acquire) >= n, Some(d.0)) {
            println!("evtchn-ping: FAIL answer {n} never came (lost)");
            return;
        }
        let got = ANSWERS.load(Ordering::Acquire);
        if got != n {
            println!("evtchn-ping: FAIL {got} answers after {n} events (duplicate)");
            return;
        }
    }
    let us = (time::now() - start) / 1000;
    events::wait_until(|| false, Some(Deadline::after_ms(50).0));
    let got = ANSWERS.load(Ordering::Acquire);
    if got == count {
        println!("evtchn-ping: PASS {count} round trips in {us} us");
    } else {
        println!("evtchn-ping: FAIL {got} answers, expected {count}");
    }
}
