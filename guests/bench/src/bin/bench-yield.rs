//! bench-yield: domain switches on one CPU. Two domains run this image;
//! `role=measure` yields `iters=<n>` times between region markers,
//! `role=partner` (no markers) yields as many times, so every yield of the
//! measuring domain passes the CPU round the other runnable domains and back.
//! Both first yield `warmup=<w>` times (default 4) so that the partner and
//! dom0 are in their yield loops when the region opens.
#![cfg_attr(target_os = "none", no_std, no_main)]

use bench_guests::{region_start, region_stop};
use pv_guest_sdk::{StartInfo, println, yield_now};

pv_guest_sdk::entry!(bench_yield);

/// Measured yields when the command line does not say.
const DEFAULT_ITERS: u64 = 1000;
/// Yields before the region opens.
const DEFAULT_WARMUP: u64 = 4;

fn bench_yield(si: &StartInfo) {
    let cmdline = si.cmdline();
    let iters = cmdline.get_u64("iters").unwrap_or(DEFAULT_ITERS);
    let warmup = cmdline.get_u64("warmup").unwrap_or(DEFAULT_WARMUP);
    let measure = cmdline.get("role") == Some("measure");
    bench_guests::enable_cycles(si.cmdline().get_u64("pmu") == Some(1));
    if measure {
        println!("bench-yield: iterations={iters}");
    }
    for _ in 0..warmup {
        yield_now();
    }
    if measure {
        region_start();
    }
    for _ in 0..iters {
        yield_now();
    }
    if measure {
        region_stop();
        if let Some(c) = bench_guests::cycles_report(iters) {
            println!("bench-yield: {c}");
        }
        println!("bench-yield: done");
    }
}
