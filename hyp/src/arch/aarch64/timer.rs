//! The EL2 physical timer (`CNTHP_*_EL2`): the hypervisor's own one-shot
//! deadline on each CPU, used to preempt vCPUs and to fire guests' timers.
//! Guests read the counter but cannot touch this timer (`CNTHCTL_EL2`).

use core::arch::asm;

use aarch64_cpu::registers::{CNTHP_CTL_EL2, CNTPCT_EL0, Readable, Writeable};

/// The counter now (`CNTPCT_EL0`), in ticks of `CNTFRQ_EL0`.
pub fn now() -> u64 {
    // An ISB first so the read is not hoisted above earlier instructions
    // (Arm ARM D12.1.2, "reads of the counter ... may be speculative").
    // SAFETY: a barrier only.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
    CNTPCT_EL0.get()
}

/// [`now`] for a caller that executed a DSB since the event the read must
/// follow: no instruction after a DSB executes before it completes (Arm ARM,
/// DSB instruction), so the counter cannot be read earlier, and the ISB is
/// not needed. (The GIC acknowledge of the timer interrupt ends with one.)
#[inline(always)]
pub fn now_after_dsb() -> u64 {
    CNTPCT_EL0.get()
}

/// Fires this CPU's timer interrupt once the counter reaches `deadline`.
pub fn set_deadline(deadline: u64) {
    // SAFETY: CNTHP_CVAL_EL2 is the EL2 timer's compare value; writing it has
    // no effect beyond when this CPU's hypervisor timer fires.
    unsafe {
        asm!("msr cnthp_cval_el2, {}", in(reg) deadline, options(nomem, nostack, preserves_flags))
    };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Stops this CPU's timer (its interrupt line drops).
pub fn cancel() {
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR + CNTHP_CTL_EL2::IMASK::SET);
}
