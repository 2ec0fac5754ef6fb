//! bench-hvc: `iters=<n>` null hypercalls (`version`, which does no work
//! beyond its answer) between region markers: the plugin's counts divided by
//! `n` are the cost of one hypercall round trip (kvm-unit-tests
//! `arm/micro-bench` "hvc").
#![cfg_attr(target_os = "none", no_std, no_main)]

use bench_guests::{region_start, region_stop};
use pv_guest_sdk::abi::call;
use pv_guest_sdk::{StartInfo, hypercall, println};

pv_guest_sdk::entry!(bench_hvc);

/// Round trips when the command line does not say.
const DEFAULT_ITERS: u64 = 1000;

fn bench_hvc(si: &StartInfo) {
    let iters = si.cmdline().get_u64("iters").unwrap_or(DEFAULT_ITERS);
    bench_guests::enable_cycles(si.cmdline().get_u64("pmu") == Some(1));
    println!("bench-hvc: iterations={iters}");
    let mut failures = 0u64;
    region_start();
    for _ in 0..iters {
        // `raw`, not `version()`: only the trap round trip is measured, not
        // the decoding of the answer.
        let [status, ..] = hypercall::raw(call::VERSION, [0; 6]);
        failures += u64::from(status != 0);
    }
    region_stop();
    if let Some(c) = bench_guests::cycles_report(iters) {
        println!("bench-hvc: {c}");
    }
    println!("bench-hvc: done, {failures} failed calls");
}
