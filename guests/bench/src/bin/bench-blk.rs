//! bench-blk: `iters=<n>` 4 KiB reads of the domain's first virtual disk
//! through dom0's block back end (ring request, event, dom0's disk read,
//! copy into this domain's granted page through a grant map, response,
//! event), timed with the virtual counter and between region markers. `scripts/bench.sh` sets the average
//! against dom0 reading the same disk directly (`dom0.blk-bench`):
//! `blk-read-4k`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use bench_guests::{region_start, region_stop};
use pv_guest_sdk::blk::BlockDevice;
use pv_guest_sdk::{StartInfo, println, time};

pv_guest_sdk::entry!(bench_blk);

/// Reads when the command line does not say.
const DEFAULT_ITERS: u64 = 1000;
/// Bytes per read: one page.
const READ_BYTES: usize = 4096;
/// Sectors per read (512-byte sectors).
const READ_SECTORS: u64 = 8;
/// Distinct blocks read in turn, as dom0's `bench_direct` does.
const BLOCKS: u64 = 64;

fn bench_blk(si: &StartInfo) {
    let iters = si.cmdline().get_u64("iters").unwrap_or(DEFAULT_ITERS);
    bench_guests::enable_cycles(si.cmdline().get_u64("pmu") == Some(1));
    println!("bench-blk: iterations={iters}");
    let mut disk = match BlockDevice::open(0) {
        Ok(d) => d,
        Err(e) => return println!("bench-blk: FAIL open: {e}"),
    };
    let mut page = alloc::vec![0u8; READ_BYTES];
    // Every block read once first, outside the measurement: the ring, the
    // back end's persistent grants and the host's cache are then warm, as
    // for dom0's direct reads it is set against (dom0 reads the same blocks
    // first too).
    for b in 0..BLOCKS {
        if let Err(e) = disk.read(b * READ_SECTORS, &mut page) {
            return println!("bench-blk: FAIL read: {e}");
        }
    }
    // Each read's time, for the median: with disk waits in real time, one
    // host hiccup (QEMU descheduled for milliseconds) moves the average.
    let mut each = alloc::vec![0u64; usize::try_from(iters).unwrap_or(0)];
    let t0 = time::now();
    let mut last = t0;
    region_start();
    for i in 0..iters {
        if let Err(e) = disk.read((i % BLOCKS) * READ_SECTORS, &mut page) {
            region_stop();
            return println!("bench-blk: FAIL read {i}: {e}");
        }
        let now = time::now();
        if let Some(slot) = each.get_mut(i as usize) {
            *slot = now - last;
        }
        last = now;
    }
    region_stop();
    if let Some(c) = bench_guests::cycles_report(iters) {
        println!("bench-blk: {c}");
    }
    let ns = (last - t0) / iters.max(1);
    println!("bench-blk: 4 KiB read through the back end: {ns} ns average over {iters}");
    each.sort_unstable();
    let median = each.get(each.len() / 2).copied().unwrap_or(0);
    let slowest = each.last().copied().unwrap_or(0);
    println!("bench-blk: median read {median} ns, slowest {slowest} ns");
    println!("bench-blk: done");
}
