//! blk-io: the block device tests' well-behaved front end
//! (tests/tests/blk.rs), on its first virtual disk (`BlockDevice::open(0)`).
//! `mode=` picks what it does:
//!
//! - `data`: if the disk does not hold the pattern yet, writes 4 MiB of it
//!   (`fill_sector`, the same as dom0's blk-test and the host's), flushes,
//!   prints `PASS wrote <n> sectors checksum <fnv1a>` and waits to be
//!   destroyed; if it does, reads the 4 MiB back, compares, prints `PASS read
//!   back <n> sectors checksum <fnv1a>`, then times 4 KiB reads.
//! - `ro`: a read-only disk: reads work (and hold the pattern), a write is
//!   refused with the back end's `read_only` status.
//! - `kill`: writes 32 KiB blocks round after round for ever, each tagged
//!   with its write position, printing `acked through <pos>` every few
//!   blocks: the test destroys it in the middle.
//! - `check`: reads what `kill` left and prints the position every
//!   acknowledged write up to which is on the disk.
//! - `busy`: `rounds=` rounds of write, read back, compare.
//! - `roundtrip`: writes `sectors=` sectors (default 2048) of the pattern
//!   from sector 0, flushes, reads them back, compares, and prints `PASS
//!   round trip <n> sectors checksum <fnv1a>` (tests/tests/rpi4.rs then
//!   finds the bytes in the SD image).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::vec;
use pv_guest_sdk::blk::{BlkError, BlkifStatus, BlockDevice};
use pv_guest_sdk::{StartInfo, println, time};

pv_guest_sdk::entry!(blk_io);

const SECTOR: usize = 512;
/// Sectors `data` writes: 4 MiB.
const DATA_SECTORS: u64 = 8192;
/// Sectors of one `kill` block (one request of the back end).
const BLOCK_SECTORS: u64 = 64;
/// Blocks of a `kill` round.
const BLOCKS: u64 = 64;

/// The pattern of tests/tests/devices.rs and dom0's blk-test.
fn fill_sector(sector: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = if i < 8 {
            sector.to_le_bytes()[i]
        } else {
            (sector
                .wrapping_mul(0x9e37_79b9)
                .wrapping_add((i as u64).wrapping_mul(0x85eb_ca6b))
                >> 11) as u8
        };
    }
}

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn fail(what: core::fmt::Arguments<'_>) {
    println!("blk-io: FAIL {what}");
}

fn blk_io(si: &StartInfo) {
    let mut disk = match BlockDevice::open(0) {
        Ok(d) => d,
        Err(e) => return fail(format_args!("open: {e}")),
    };
    println!(
        "blk-io: disk of {} sectors ({}-byte sectors), {}",
        disk.capacity(),
        disk.sector_size(),
        if disk.read_only() {
            "read-only"
        } else {
            "read-write"
        }
    );
    let r = match si.cmdline().get("mode") {
        Some("data") => data(&mut disk),
        Some("ro") => read_only(&mut disk),
        Some("kill") => kill(&mut disk),
        Some("check") => check(&mut disk),
        Some("busy") => busy(&mut disk, si.cmdline().get_u64("rounds").unwrap_or(100)),
        Some("roundtrip") => roundtrip(&mut disk, si.cmdline().get_u64("sectors").unwrap_or(2048)),
        m => return fail(format_args!("mode {m:?}")),
    };
    if let Err(e) = r {
        fail(format_args!("{e}"));
    }
}

fn pattern(first: u64, sectors: u64) -> alloc::vec::Vec<u8> {
    let mut v = vec![0u8; sectors as usize * SECTOR];
    for (k, s) in v.chunks_exact_mut(SECTOR).enumerate() {
        fill_sector(first + k as u64, s);
    }
    v
}

fn wait_forever() -> Result<(), BlkError> {
    loop {
        time::sleep_ns(1_000_000_000);
    }
}

fn data(disk: &mut BlockDevice) -> Result<(), BlkError> {
    let want = pattern(0, DATA_SECTORS);
    let sum = fnv1a(0xcbf2_9ce4_8422_2325, &want);
    let mut first = vec![0u8; SECTOR];
    disk.read(0, &mut first)?;
    if first[..] != want[..SECTOR] {
        disk.write(0, &want)?;
        disk.flush()?;
        println!("blk-io: PASS wrote {DATA_SECTORS} sectors checksum {sum:016x}");
        return wait_forever();
    }
    let mut got = vec![0u8; want.len()];
    disk.read(0, &mut got)?;
    let got_sum = fnv1a(0xcbf2_9ce4_8422_2325, &got);
    if got != want {
        let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
        fail(format_args!("read back differs at byte {at}"));
        return Ok(());
    }
    println!("blk-io: PASS read back {DATA_SECTORS} sectors checksum {got_sum:016x}");
    // A 4 KiB read through the back end, timed.
    const READS: u64 = 1000;
    let mut page = vec![0u8; 4096];
    let t0 = time::now();
    for i in 0..READS {
        disk.read((i % 64) * 8, &mut page)?;
    }
    let ns = (time::now() - t0) / READS;
    println!("blk-io: 4 KiB read through the back end: {ns} ns average over {READS}");
    Ok(())
}

fn read_only(disk: &mut BlockDevice) -> Result<(), BlkError> {
    let mut buf = vec![0u8; 4096];
    disk.read(0, &mut buf)?;
    if buf != pattern(0, 8) {
        fail(format_args!("the read-only disk does not hold the pattern"));
    }
    match disk.write(0, &buf) {
        Err(BlkError::Status(BlkifStatus::ReadOnly)) if disk.read_only() => {
            println!("blk-io: PASS read-only: read 8 sectors, write refused (read_only)")
        }
        r => fail(format_args!("write to a read-only disk: {r:?}")),
    }
    Ok(())
}

/// A `kill` block: every sector starts with the write position and the
/// sector's index in the block, then the pattern of both.
fn kill_block(pos: u64, buf: &mut [u8]) {
    for (j, s) in buf.chunks_exact_mut(SECTOR).enumerate() {
        fill_sector(pos * BLOCK_SECTORS + j as u64, s);
        s[..8].copy_from_slice(&pos.to_le_bytes());
        s[8..16].copy_from_slice(&(j as u64).to_le_bytes());
    }
}

fn kill(disk: &mut BlockDevice) -> Result<(), BlkError> {
    let mut buf = vec![0u8; (BLOCK_SECTORS as usize) * SECTOR];
    let mut pos = 0u64;
    loop {
        kill_block(pos, &mut buf);
        disk.write((pos % BLOCKS) * BLOCK_SECTORS, &buf)?;
        if pos % 8 == 7 {
            println!("blk-io: kill acked through {pos}");
        }
        pos += 1;
    }
}

fn check(disk: &mut BlockDevice) -> Result<(), BlkError> {
    let mut buf = vec![0u8; (BLOCK_SECTORS as usize) * SECTOR];
    let mut want = vec![0u8; buf.len()];
    // The first position not on the disk is at least the smallest next
    // write of any block.
    let (mut durable, mut corrupt, mut zero) = (u64::MAX, 0u32, 0u32);
    for b in 0..BLOCKS {
        disk.read(b * BLOCK_SECTORS, &mut buf)?;
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&buf[..8]);
        let pos = u64::from_le_bytes(tag);
        let latest = if buf.iter().all(|&x| x == 0) {
            zero += 1;
            None
        } else {
            kill_block(pos, &mut want);
            if pos % BLOCKS != b || buf != want {
                corrupt += 1;
                None
            } else {
                Some(pos)
            }
        };
        // Every write of block b up to `latest` is there; the next one
        // (latest + BLOCKS, or b for a block never written) is not.
        let next = latest.map_or(b, |p| p + BLOCKS);
        durable = durable.min(next);
    }
    let through = durable as i64 - 1;
    println!("blk-io: check durable through {through}, {corrupt} corrupt, {zero} never written");
    Ok(())
}

fn busy(disk: &mut BlockDevice, rounds: u64) -> Result<(), BlkError> {
    let sectors = 128u64;
    let mut back = vec![0u8; sectors as usize * SECTOR];
    for r in 0..rounds {
        let data = pattern(r * 1_000_003, sectors);
        let at = (r * sectors) % disk.capacity().saturating_sub(sectors).max(1);
        disk.write(at, &data)?;
        disk.read(at, &mut back)?;
        if back != data {
            fail(format_args!("busy round {r}: read back differs"));
            return Ok(());
        }
    }
    println!("blk-io: PASS busy {rounds} rounds");
    Ok(())
}

fn roundtrip(disk: &mut BlockDevice, sectors: u64) -> Result<(), BlkError> {
    let data = pattern(0, sectors);
    disk.write(0, &data)?;
    disk.flush()?;
    let mut back = vec![0u8; data.len()];
    disk.read(0, &mut back)?;
    if back != data {
        let at = back
            .iter()
            .zip(&data)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        fail(format_args!("round trip: read back differs at byte {at}"));
        return Ok(());
    }
    let sum = fnv1a(0xcbf2_9ce4_8422_2325, &back);
    println!("blk-io: PASS round trip {sectors} sectors checksum {sum:016x}");
    Ok(())
}
