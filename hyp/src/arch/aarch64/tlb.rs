//! TLB maintenance instructions (Arm ARM C5.5 "A64 system instructions for TLB
//! maintenance"); `aarch64-cpu` has no wrappers for them.

use core::arch::asm;

/// Invalidates every EL2 stage-1 TLB entry on this CPU (`TLBI ALLE2`). The
/// caller orders it with DSB/ISB.
pub fn invalidate_el2_local() {
    // SAFETY: TLB invalidation only drops cached translations; it cannot make
    // memory accessible that the tables do not map.
    unsafe { asm!("tlbi alle2", options(nostack, preserves_flags)) };
}
