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
//! translates them. On a real board the same images run unchanged; with
//! [`enable_cycles`] the markers also read the cycle counter and
//! [`cycles_report`] gives cycles per operation.
#![no_std]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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

/// Whether the region markers also read the cycle counter ([`enable_cycles`]).
static CYCLES_ON: AtomicBool = AtomicBool::new(false);
/// Whether a region is open: some guests close regions that never opened
/// (bench-virq's interrupt handler, after its warm-up event).
static REGION_OPEN: AtomicBool = AtomicBool::new(false);
/// `PMCCNTR_EL0` at the open region's start.
static REGION_START: AtomicU64 = AtomicU64::new(0);
/// Cycles in the regions closed since the last [`cycles_report`].
static CYCLES: AtomicU64 = AtomicU64::new(0);

/// Makes the region markers read the cycle counter `PMCCNTR_EL0` too. Only
/// when the hypervisor lets guests read it (boot argument `hyp.guest_pmu=1`,
/// guests asked with `pmu=1` on their command line): otherwise the first
/// read traps and the hypervisor crashes this domain.
pub fn enable_cycles(on: bool) {
    CYCLES_ON.store(on, Ordering::Relaxed);
}

/// The cycle counter, after everything before it has executed.
#[inline(always)]
fn cycle_counter() -> u64 {
    #[cfg(target_arch = "aarch64")]
    {
        let cycles: u64;
        // SAFETY: reads a counter register (`aarch64-cpu` does not model
        // PMCCNTR_EL0); the `isb` only orders it after earlier instructions.
        // Callers have checked that the hypervisor does not trap the read.
        unsafe {
            core::arch::asm!(
                "isb",
                "mrs {}, pmccntr_el0",
                out(reg) cycles,
                options(nomem, nostack, preserves_flags)
            )
        };
        cycles
    }
    #[cfg(not(target_arch = "aarch64"))]
    0
}

/// Opens a measured region: the plugin counts from here.
#[inline(always)]
pub fn region_start() {
    // Before the marker, so the plugin's counts do not include this read.
    if CYCLES_ON.load(Ordering::Relaxed) {
        REGION_START.store(cycle_counter(), Ordering::Relaxed);
        REGION_OPEN.store(true, Ordering::Relaxed);
    }
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
    if CYCLES_ON.load(Ordering::Relaxed) && REGION_OPEN.swap(false, Ordering::Relaxed) {
        let start = REGION_START.load(Ordering::Relaxed);
        let total = CYCLES.load(Ordering::Relaxed);
        CYCLES.store(
            total + cycle_counter().wrapping_sub(start),
            Ordering::Relaxed,
        );
    }
}

/// Cycles measured in the regions closed since the last report, per one of
/// `iters` operations: `cycles=<total> iters=<n> cycles/iter=<total / n>`.
pub struct CyclesReport {
    total: u64,
    iters: u64,
}

impl core::fmt::Display for CyclesReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let per = self.total / self.iters.max(1);
        write!(
            f,
            "cycles={} iters={} cycles/iter={per}",
            self.total, self.iters
        )
    }
}

/// The cycles counted since the last call, over `iters` operations, and
/// starts counting afresh; `None` unless [`enable_cycles`] turned it on.
pub fn cycles_report(iters: u64) -> Option<CyclesReport> {
    CYCLES_ON.load(Ordering::Relaxed).then(|| CyclesReport {
        total: CYCLES.swap(0, Ordering::Relaxed),
        iters,
    })
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
