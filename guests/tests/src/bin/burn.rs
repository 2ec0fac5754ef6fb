//! burn: a CPU-bound guest for the scheduler tests. It does units of integer
//! work, never blocking or yielding, until its virtual counter reaches
//! `ms=<n>` milliseconds (default 3000; the counter starts at 0 when the
//! domain is created), then prints `burn: <name> did <units> units` and
//! powers off.
//!
//! The tests measure the CPU time each burner got with dom0's `dom0.top`
//! report (the hypervisor's own accounting); the unit count is printed for
//! the record only, since on an emulator the work done per tick depends on
//! how busy the host is.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::abi::time::ns_to_ticks;
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(burn);

/// Rounds of work between two looks at the counter: short enough that the
/// deadline is met within microseconds.
const ROUNDS: u32 = 256;

/// One unit of work: `ROUNDS` steps of a xorshift generator.
fn unit(mut x: u64) -> u64 {
    for _ in 0..ROUNDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Keeps the loop from being folded away.
        x = core::hint::black_box(x);
    }
    x
}

fn burn(si: &StartInfo) {
    let ms = si.cmdline().get_u64("ms").unwrap_or(3000);
    let end = Deadline(ns_to_ticks(ms.saturating_mul(1_000_000), time::frequency()));
    println!("burn: {} burns until {ms} ms", si.name());
    let mut x = 0x9e37_79b9_7f4a_7c15;
    let mut units: u64 = 0;
    while !end.passed() {
        x = unit(x);
        units += 1;
    }
    println!("burn: {} did {units} units ({x:#x})", si.name());
}
