//! What the benchmark guests share: the region markers the `tern-bench` QEMU
//! plugin counts between, the compute kernel of `cpu-bound`, and how two
//! bench domains name each other ([`peer_id`]).
//!
//! This library does not use the SDK, so the bare EL1 image (`bench-bare`,
//! no hypervisor) links exactly the same kernel code as the `bench-cpu` guest.
//!
//! Markers are `HINT` instructions the architecture leaves unallocated
//! (`hint #0x7c` opens a region, `hint #0x7d` closes it): they execute as
//! NOPs on real hardware (Arm ARM C6.2, HINT) and on QEMU, and the plugin
//! (tools/qemu-plugin/tern-bench.c) recognises their encodings when it
//! translates them. On a real board the same images run unchanged.
#![no_std]

/// Rounds of [`compute`] in `cpu-bound`, the same in every mode (full and
/// `--short`), for the guest and the bare image alike, so the two counts
/// compare directly. About 16 million instructions.
pub const CPU_ROUNDS: u32 = 100;

/// Bytes the kernel fills and checksums per round.
const BLOCK_BYTES: usize = 4096;
/// Reflected CRC-32 polynomial (IEEE 802.3).
const CRC32_POLY: u32 = 0xEDB8_8320;
/// Seed of the xorshift generator: any non-zero value.
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Opens a measured region: the plugin counts from here.
#[inline(always)]
pub fn region_start() {
    // SAFETY: an unallocated HINT executes as a NOP (Arm ARM C6.2, HINT); it
    // reads and writes nothing. Not `nomem`, so the compiler keeps memory
    // accesses on their side of the marker.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("hint #0x7c", options(nostack, preserves_flags))
    };
}

/// Closes the measured region opened by [`region_start`].
#[inline(always)]
pub fn region_stop() {
    // SAFETY: as in `region_start`: a NOP hint, no effect on any state.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("hint #0x7d", options(nostack, preserves_flags))
    };
}

/// A `peer=` value relative to this domain's id `me` (`+k`, `-k`) or
/// absolute (`k`), decimal: how two bench domains find each other. dom0
/// creates the domains of a bundle with consecutive ids in archive order,
/// so `peer=+1` names the next one.
pub fn peer_id(v: &str, me: u32) -> Option<u32> {
    let parse = |s: &str| s.parse::<u32>().ok();
    if let Some(k) = v.strip_prefix('+') {
        me.checked_add(parse(k)?)
    } else if let Some(k) = v.strip_prefix('-') {
        me.checked_sub(parse(k)?)
    } else {
        parse(v)
    }
}

/// One step of xorshift64 (Marsaglia): the kernel's data source.
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Bitwise reflected CRC-32 of `bytes`, continuing from `crc`.
fn crc32(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            // Branch-free: the instruction count does not depend on the data.
            crc = (crc >> 1) ^ (CRC32_POLY & (crc & 1).wrapping_neg());
        }
    }
    crc
}

/// The `cpu-bound` workload: `rounds` times, fill a 4 KiB block from a
/// xorshift generator and fold it into a CRC-32. Integer only, no calls out,
/// no hypercalls: whatever the hypervisor adds around it is overhead.
#[inline(never)]
pub fn compute(rounds: u32) -> u32 {
    let mut block = [0u8; BLOCK_BYTES];
    let mut x = SEED;
    let mut crc = !0u32;
    for _ in 0..rounds {
        for word in block.chunks_exact_mut(8) {
            x = xorshift(x);
            word.copy_from_slice(&x.to_le_bytes());
        }
        crc = crc32(crc, core::hint::black_box(&block));
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC-32/ISO-HDLC check value of "123456789".
        assert_eq!(!crc32(!0, b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn peer_ids_are_relative_or_absolute() {
        assert_eq!(peer_id("+1", 3), Some(4));
        assert_eq!(peer_id("-1", 3), Some(2));
        assert_eq!(peer_id("7", 3), Some(7));
        assert_eq!(peer_id("-4", 3), None);
        assert_eq!(peer_id("+x", 3), None);
        assert_eq!(peer_id("+4294967295", 1), None);
    }

    #[test]
    fn compute_depends_on_the_rounds() {
        assert_ne!(compute(1), compute(2));
        assert_eq!(compute(3), compute(3));
    }
}
