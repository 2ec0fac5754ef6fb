//! `dom0.blk-bench`: dom0's own reads of its first disk, the "direct" side
//! of the `blk-read-4k` benchmark (scripts/bench.sh).

use pv_guest_sdk::println;

use super::disk::BlockDevice;

/// Distinct 4 KiB blocks `bench_direct` cycles through (bench-blk's `BLOCKS`).
const BENCH_BLOCKS: u64 = 64;
/// Sectors per 4 KiB block.
const BENCH_SECTORS: u64 = 8;

/// `dom0.blk-bench`: times `reads` 4 KiB reads of the first disk straight
/// from dom0 (no ring, no grant copy), to set against a front end's reads
/// through the back end (blk-io's `data` mode prints those). The same 64
/// blocks as bench-blk reads, each read once first, outside the region that
/// `region` opens and closes: both sides then measure warm reads (the host's
/// first touch of a block can take tens of microseconds under `sleep=on`).
pub fn bench_direct(reads: u64, region: fn(bool)) {
    let Some(first) = super::service::disk_names().into_iter().next() else {
        return println!("dom0: blk-bench: no disk");
    };
    super::service::with_disk(&first, |blk| run(blk, reads, region));
}

fn run(blk: &mut dyn BlockDevice, reads: u64, region: fn(bool)) {
    let mut page = alloc::vec![0u8; 4096];
    for b in 0..BENCH_BLOCKS {
        if blk.read(b * BENCH_SECTORS, &mut page).is_err() {
            return println!("dom0: blk-bench: read failed");
        }
    }
    region(true);
    // Each read's time, for the median (as bench-blk reports it).
    let mut each = alloc::vec![0u64; usize::try_from(reads).unwrap_or(0)];
    let t0 = pv_guest_sdk::time::now();
    let mut last = t0;
    for i in 0..reads {
        if blk
            .read((i % BENCH_BLOCKS) * BENCH_SECTORS, &mut page)
            .is_err()
        {
            region(false);
            return println!("dom0: blk-bench: read failed");
        }
        let now = pv_guest_sdk::time::now();
        if let Some(slot) = each.get_mut(i as usize) {
            *slot = now - last;
        }
        last = now;
    }
    region(false);
    let ns = (last - t0) / reads.max(1);
    println!("dom0: blk-bench: 4 KiB read straight from the disk: {ns} ns average over {reads}");
    each.sort_unstable();
    let median = each.get(each.len() / 2).copied().unwrap_or(0);
    println!("dom0: blk-bench: median read {median} ns");
}
