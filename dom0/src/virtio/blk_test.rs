//! `dom0.blk-test`: writes a known pattern to regions of the first writable
//! virtio-blk disk (1 MiB at its start, a few sectors in its middle, its
//! last sectors), flushes, reads everything back, compares, and prints
//! `dom0: blk-test: PASS ... checksum <hex>` (FNV-1a 64 of what was read,
//! region after region) or `dom0: blk-test: FAIL ...`. A read-only disk, if
//! there is one, must refuse a write. The host test recomputes the pattern
//! and checks the image file.

use alloc::vec;
use alloc::vec::Vec;

use pv_guest_sdk::println;

use super::blk::{Blk, BlkError, SECTOR};

/// Smallest disk the test uses: 4 MiB.
pub const MIN_SECTORS: u64 = 8192;

/// The byte pattern of `sector`: its number (little endian) in the first
/// eight bytes, then a mix of sector and offset, so that a misplaced or
/// stale sector shows.
pub fn fill_sector(sector: u64, out: &mut [u8]) {
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

/// The pattern of `count` sectors from `first` on.
pub fn pattern(first: u64, count: u64) -> Vec<u8> {
    let mut v = vec![0u8; count as usize * SECTOR];
    for (k, s) in v.chunks_exact_mut(SECTOR).enumerate() {
        fill_sector(first + k as u64, s);
    }
    v
}

/// FNV-1a 64 over `bytes`, continuing from `hash`.
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// FNV-1a 64's starting value.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The regions written on a disk of `capacity` sectors: (first, count).
pub fn regions(capacity: u64) -> [(u64, u64); 3] {
    [(0, 2048), (4099, 5), (capacity - 8, 8)]
}

fn check_disk(disk: &mut Blk) -> Result<(u64, u64), alloc::string::String> {
    let cap = disk.capacity();
    let mut written = 0;
    for (first, count) in regions(cap) {
        disk.write(first, &pattern(first, count))
            .map_err(|e| alloc::format!("write {first}+{count}: {e}"))?;
        written += count;
    }
    disk.flush().map_err(|e| alloc::format!("flush: {e}"))?;
    let mut sum = FNV_OFFSET;
    for (first, count) in regions(cap) {
        let mut back = vec![0u8; count as usize * SECTOR];
        disk.read(first, &mut back)
            .map_err(|e| alloc::format!("read {first}+{count}: {e}"))?;
        if back != pattern(first, count) {
            return Err(alloc::format!("read {first}+{count}: data differs"));
        }
        sum = fnv1a(sum, &back);
    }
    Ok((written, sum))
}

/// Runs the test on `disks`; prints the result.
pub fn run(disks: &mut [Blk]) {
    for disk in disks.iter_mut().filter(|d| d.read_only()) {
        match disk.write(0, &pattern(0, 1)) {
            Err(BlkError::ReadOnly) => println!(
                "dom0: blk-test: read-only disk {:#x} refused a write",
                disk.base()
            ),
            other => {
                return println!(
                    "dom0: blk-test: FAIL read-only disk {:#x} answered a write with {other:?}",
                    disk.base()
                );
            }
        }
    }
    let Some(disk) = disks
        .iter_mut()
        .find(|d| !d.read_only() && d.capacity() >= MIN_SECTORS)
    else {
        return println!("dom0: blk-test: FAIL no writable disk of at least {MIN_SECTORS} sectors");
    };
    let how = if disk.interrupt_driven() {
        "interrupts"
    } else {
        "polling"
    };
    match check_disk(disk) {
        Ok((written, sum)) => println!(
            "dom0: blk-test: PASS disk {:#x} ({how}) capacity {} sectors, wrote and read back {written} sectors, checksum {sum:016x}",
            disk.base(),
            disk.capacity()
        ),
        Err(e) => println!("dom0: blk-test: FAIL disk {:#x}: {e}", disk.base()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_names_its_sector_and_differs_between_sectors() {
        let p = pattern(4099, 2);
        assert_eq!(p.len(), 2 * SECTOR);
        assert_eq!(&p[..8], &4099u64.to_le_bytes());
        assert_eq!(&p[SECTOR..SECTOR + 8], &4100u64.to_le_bytes());
        assert_ne!(&p[8..SECTOR], &p[SECTOR + 8..]);
        // Not constant within a sector either.
        assert!(p[8..SECTOR].windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn fnv1a_known_values() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            fnv1a(fnv1a(FNV_OFFSET, b"foo"), b"bar"),
            fnv1a(FNV_OFFSET, b"foobar")
        );
    }

    #[test]
    fn regions_fit_the_smallest_disk() {
        let r = regions(MIN_SECTORS);
        assert!(r.iter().all(|&(f, c)| f + c <= MIN_SECTORS));
        assert!(r[0].1 * SECTOR as u64 >= 1 << 20);
        assert_eq!(r[2], (MIN_SECTORS - 8, 8));
    }
}
