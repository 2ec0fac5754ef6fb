//! bench-blk: `iters=<n>` 4 KiB reads of the domain's first virtual disk
//! through dom0's block back end (ring request, event, dom0's disk read,
//! grant copy into this domain, response, event), timed with the virtual
//! counter and between region markers. `scripts/bench.sh` sets the average
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
    println!("bench-blk: iterations={iters}");
    let mut disk = match BlockDevice::open(0) {
        Ok(d) => d,
        Err(e) => return println!("bench-blk: FAIL open: {e}"),
    };
    let mut page = alloc::vec![0u8; READ_BYTES];
    // One read first: the ring and the disk warm, outside the measurement.
    if let Err(e) = disk.read(0, &mut page) {
        return println!("bench-blk: FAIL read: {e}");
    }
    let t0 = time::now();
    region_start();
    for i in 0..iters {
        if let Err(e) = disk.read((i % BLOCKS) * READ_SECTORS, &mut page) {
            region_stop();
            return println!("bench-blk: FAIL read {i}: {e}");
        }
    }
    region_stop();
    let ns = (time::now() - t0) / iters.max(1);
    println!("bench-blk: 4 KiB read through the back end: {ns} ns average over {iters}");
    println!("bench-blk: done");
}
