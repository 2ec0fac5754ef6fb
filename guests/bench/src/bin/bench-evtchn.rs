//! bench-evtchn: inter-domain event round trips (kvm-unit-tests / Xen
//! "evtchn ping-pong"). Two domains run this image: `role=pong` reserves a
//! port for its peer and answers every event with one back; `role=ping`
//! connects to it and makes `iters=<n>` round trips between region markers
//! (after `warmup=<w>` unmeasured ones, default 8). One round trip: ping
//! sends, pong's handler runs and pong sends back, ping's handler runs.
//!
//! Waiting is block-until-event, the PV pattern: both sides send and wait
//! with the SDK's `events::send_and_wait`, which (upcall masked) dispatches
//! pending ports, checks, and sends and blocks in one call
//! (`sched_op send_wait`) when the answer is not there; the call returns
//! with the answer's port in a register (the hypervisor hands it over
//! instead of making it pending) and the SDK runs its handler. The
//! upcall IRQ stays masked, so handlers never run from the IRQ vector and
//! the path is the same on one CPU and on two.
//!
//! The peers find each other as evtchn-ping/-pong do: dom0 creates the
//! domains of a bundle with consecutive ids in archive order, so
//! `peer=+1`/`peer=-1` name the other one; pong's first port is 1.
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::sync::atomic::{AtomicU64, Ordering};

use bench_guests::{peer_id, region_start, region_stop};
use pv_guest_sdk::abi::Error;
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(bench_evtchn);

/// Measured round trips when the command line does not say.
const DEFAULT_ITERS: u64 = 1000;
/// Unmeasured round trips first: both sides are then in their loops.
const DEFAULT_WARMUP: u64 = 8;
/// The port pong reserves for ping: its first one.
const PONG_PORT: Port = Port(1);

/// Events this domain's handler has seen.
static SEEN: AtomicU64 = AtomicU64::new(0);

fn on_event(_: Port) {
    SEEN.fetch_add(1, Ordering::AcqRel);
}

fn bench_evtchn(si: &StartInfo) {
    let cmdline = si.cmdline();
    let iters = cmdline.get_u64("iters").unwrap_or(DEFAULT_ITERS);
    let warmup = cmdline.get_u64("warmup").unwrap_or(DEFAULT_WARMUP);
    let role = cmdline.get("role").unwrap_or("");
    let Some(peer) = cmdline
        .get("peer")
        .and_then(|v| peer_id(v, si.domain_id().0))
        .map(DomainId)
    else {
        println!("bench-evtchn: FAIL no usable peer= on the command line");
        return;
    };
    if let Err(e) = events::init() {
        println!("bench-evtchn: FAIL events init: {e}");
        return;
    }
    if !events::upcalls_live() {
        println!("bench-evtchn: FAIL the hypervisor delivers no event upcalls");
        return;
    }
    let port = match role {
        "ping" => connect(peer),
        "pong" => events::alloc_unbound(peer).and_then(|p| {
            if p == PONG_PORT {
                Ok(p)
            } else {
                Err(Error::Exists)
            }
        }),
        _ => {
            println!("bench-evtchn: FAIL role= must be ping or pong");
            return;
        }
    };
    let port = match port {
        Ok(p) => p,
        Err(e) => {
            println!("bench-evtchn: FAIL {role}: port to domain {}: {e}", peer.0);
            return;
        }
    };
    events::on(port, on_event);
    let total = warmup + iters;
    if role == "ping" {
        bench_guests::enable_cycles(si.cmdline().get_u64("pmu") == Some(1));
        println!("bench-evtchn: iterations={iters}");
        for n in 1..=warmup {
            round_trip(port, n);
        }
        region_start();
        // Half-open ranges here and below: an inclusive one's exhaustion
        // flag costs each measured pass a few instructions of the harness.
        for n in warmup + 1..total + 1 {
            round_trip(port, n);
        }
        region_stop();
        if let Some(c) = bench_guests::cycles_report(iters) {
            println!("bench-evtchn: {c}");
        }
        // Lets pong go (see below).
        send(port);
    } else {
        wait_for(1);
        // Answers event `n` and waits for the next; after its last answer
        // it stays blocked, as between round trips, until ping closed its
        // region: what pong does then (print, shut down) is not part of
        // the measurement.
        for n in 1..total + 1 {
            send_and_wait(port, n + 1);
        }
    }
    let seen = SEEN.load(Ordering::Acquire);
    let expected = if role == "pong" { total + 1 } else { total };
    if seen == expected {
        println!("bench-evtchn: {role} done, {seen} events");
    } else {
        println!("bench-evtchn: FAIL {role} saw {seen} events, expected {expected}");
    }
}

/// One round trip: the `n`-th event out and its answer back.
fn round_trip(port: Port, n: u64) {
    send_and_wait(port, n);
}

/// Sends, then blocks until the handler has seen `n` events: one hypercall
/// when the answer is not there yet (`sched_op send_wait`).
fn send_and_wait(port: Port, n: u64) {
    if let Err(e) = events::send_and_wait(port, || SEEN.load(Ordering::Acquire) >= n, None) {
        println!("bench-evtchn: FAIL send: {e}");
    }
}

/// Blocks until the handler has seen `n` events.
fn wait_for(n: u64) {
    events::wait_until(|| SEEN.load(Ordering::Acquire) >= n, None);
}

fn send(port: Port) {
    if let Err(e) = events::send(port) {
        println!("bench-evtchn: FAIL send: {e}");
    }
}

/// Connects to pong's port, yielding while pong has not reserved it yet
/// (it starts after us).
fn connect(peer: DomainId) -> Result<Port, Error> {
    loop {
        match events::bind_interdomain(peer, PONG_PORT) {
            Err(Error::NotFound | Error::NoSuchDomain) => pv_guest_sdk::yield_now(),
            r => return r,
        }
    }
}
