//! ipi-pingpong: inter-processor interrupts between two vCPUs of one
//! domain. vCPU 0 binds an IPI to vCPU 1 ("ping") and one to itself
//! ("pong"), starts vCPU 1 with `pv_guest_sdk::vcpu::start`, and makes
//! `count=<n>` round trips (default 1000): vCPU 1 answers each ping with one
//! pong. Each side checks that every event arrives exactly once, on the vCPU
//! it was bound to; when vCPU 1's closure returns the SDK takes it down,
//! which vCPU 0 checks too, before starting it once more (and checking that
//! starting a vCPU that is up, or that the domain lacks, fails). Prints `ipi-pingpong: PASS <n> round trips ...`
//! or `ipi-pingpong: FAIL ...`.
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pv_guest_sdk::abi::Error;
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::vcpu::{self, Ipi};
use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(ipi_pingpong);

/// Pings vCPU 1 received, pongs vCPU 0 received.
static PINGS: AtomicU64 = AtomicU64::new(0);
static PONGS: AtomicU64 = AtomicU64::new(0);
/// Set when a handler ran on the wrong vCPU.
static WRONG_VCPU: AtomicBool = AtomicBool::new(false);
/// Set by vCPU 1 when it failed (it printed why).
static RESPONDER_FAILED: AtomicBool = AtomicBool::new(false);
/// How long one side waits for the other's event before calling it lost.
const PATIENCE_MS: u64 = 5_000;

fn on_ping(_: Port) {
    if pv_guest_sdk::vcpu_index() != 1 {
        WRONG_VCPU.store(true, Ordering::Release);
    }
    PINGS.fetch_add(1, Ordering::AcqRel);
}

fn on_pong(_: Port) {
    if pv_guest_sdk::vcpu_index() != 0 {
        WRONG_VCPU.store(true, Ordering::Release);
    }
    PONGS.fetch_add(1, Ordering::AcqRel);
}

/// vCPU 1: answers `count` pings, each with one pong.
fn responder(pong: Ipi, count: u64) {
    for n in 1..=count {
        let d = Deadline::after_ms(PATIENCE_MS);
        if !events::wait_until(|| PINGS.load(Ordering::Acquire) >= n, Some(d.0)) {
            println!("ipi-pingpong: FAIL vCPU 1: ping {n} never came (lost)");
            RESPONDER_FAILED.store(true, Ordering::Release);
            return;
        }
        let got = PINGS.load(Ordering::Acquire);
        if got != n {
            println!("ipi-pingpong: FAIL vCPU 1: {got} pings before answering {n} (duplicate)");
            RESPONDER_FAILED.store(true, Ordering::Release);
            return;
        }
        if let Err(e) = pong.send() {
            println!("ipi-pingpong: FAIL vCPU 1: send pong {n}: {e}");
            RESPONDER_FAILED.store(true, Ordering::Release);
            return;
        }
    }
}

fn ipi_pingpong(si: &StartInfo) {
    let count = si.cmdline().get_u64("count").unwrap_or(1000);
    if si.vcpus() < 2 {
        println!("ipi-pingpong: FAIL needs 2 vCPUs, has {}", si.vcpus());
        return;
    }
    if let Err(e) = events::init() {
        println!("ipi-pingpong: FAIL init: {e}");
        return;
    }
    let (ping, pong) = match (Ipi::new(1, on_ping), Ipi::new(0, on_pong)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            println!("ipi-pingpong: FAIL bind_ipi: {e}");
            return;
        }
    };
    if let Err(e) = vcpu::start(1, move || responder(pong, count)) {
        println!("ipi-pingpong: FAIL start vCPU 1: {e}");
        return;
    }
    println!(
        "ipi-pingpong: vCPU 1 up; ping port {}, pong port {}",
        ping.port().0,
        pong.port().0
    );
    let start = time::now();
    for n in 1..=count {
        if let Err(e) = ping.send() {
            println!("ipi-pingpong: FAIL send ping {n}: {e}");
            return;
        }
        let d = Deadline::after_ms(PATIENCE_MS);
        if !events::wait_until(|| PONGS.load(Ordering::Acquire) >= n, Some(d.0)) {
            println!("ipi-pingpong: FAIL pong {n} never came (lost)");
            return;
        }
        let got = PONGS.load(Ordering::Acquire);
        if got != n {
            println!("ipi-pingpong: FAIL {got} pongs after {n} pings (duplicate)");
            return;
        }
    }
    let us = (time::now() - start) / 1000;
    let mut ok = wait_down();
    if WRONG_VCPU.load(Ordering::Acquire) {
        println!("ipi-pingpong: FAIL a handler ran on the wrong vCPU");
        ok = false;
    }
    if RESPONDER_FAILED.load(Ordering::Acquire) {
        println!("ipi-pingpong: FAIL (vCPU 1 said why)");
        ok = false;
    }
    let (pings, pongs) = (PINGS.load(Ordering::Acquire), PONGS.load(Ordering::Acquire));
    if pings != count || pongs != count {
        println!("ipi-pingpong: FAIL {pings} pings, {pongs} pongs, expected {count}");
        ok = false;
    }
    ok &= restart(si.vcpus() as usize);
    if ok {
        println!("ipi-pingpong: PASS {count} round trips between vCPU 0 and vCPU 1 in {us} us");
    }
}

/// Waits for vCPU 1 to be down (its closure returned); false if it stays up.
fn wait_down() -> bool {
    let d = Deadline::after_ms(PATIENCE_MS);
    while vcpu::is_up(1) != Ok(false) && !d.passed() {
        time::sleep_ms(1);
    }
    let down = vcpu::is_up(1) == Ok(false);
    if !down {
        println!("ipi-pingpong: FAIL vCPU 1 still up after its closure returned");
    }
    down
}

/// Set by the second run of vCPU 1.
static AGAIN: AtomicBool = AtomicBool::new(false);

/// A vCPU that went down starts again (on the stack it had), and starting
/// one that is up, or one the domain does not have, fails.
fn restart(vcpus: usize) -> bool {
    let mut ok = true;
    let mut expect = |what: &str, got: Result<(), Error>, want: Result<(), Error>| {
        if got != want {
            println!("ipi-pingpong: FAIL {what}: expected {want:?}, got {got:?}");
            ok = false;
        }
    };
    expect(
        "start a vCPU the domain lacks",
        vcpu::start(vcpus, || {}),
        Err(Error::NotFound),
    );
    expect(
        "start vCPU 1 again",
        vcpu::start(1, || {
            // Stays up until vCPU 0 has tried to start it a second time.
            while !AGAIN.load(Ordering::Acquire) {
                core::hint::spin_loop();
            }
        }),
        Ok(()),
    );
    expect(
        "start vCPU 1 while it is up",
        vcpu::start(1, || {}),
        Err(Error::InvalidState),
    );
    AGAIN.store(true, Ordering::Release);
    ok && wait_down()
}
