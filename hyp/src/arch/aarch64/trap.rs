//! Exceptions from a lower EL (guests). The contract with `vectors.rs`:
//! `frame` holds the guest's x0..x30, ELR_EL2, SPSR_EL2, ESR_EL2, FAR_EL2, and
//! whatever the handler leaves in `frame.x`, `frame.elr`, `frame.spsr` is what
//! the CPU enters with (`eret`) when the handler returns, unless a switch path
//! loaded another vCPU, which is entered from its own context instead.

use super::vectors::{Report, TrapFrame};

/// Synchronous exception from EL1/EL0, first look: answers a discovery
/// hypercall (returns 0), anything else returns non-zero for [`lower_sync`].
#[inline(always)]
pub fn lower_sync_discovery(frame: &mut TrapFrame) -> u64 {
    super::run::guest_discovery(frame)
}

/// Synchronous exception from EL1/EL0 (HVC, trapped instruction, stage-2
/// abort). `frame` holds every general register but not ELR/SPSR; returns 0
/// to resume the guest, or the registers of the vCPU to enter instead.
pub fn lower_sync(frame: &mut TrapFrame) -> u64 {
    super::run::guest_sync(frame)
}

/// IRQ taken to EL2 while a guest was running (time slice, guest timer,
/// reschedule IPI). `frame` holds the caller-saved registers only; returns 0
/// to resume the guest, or non-zero for [`lower_irq_switch`].
pub fn lower_irq(frame: &mut TrapFrame) -> u64 {
    super::run::guest_irq(frame)
}

/// Completes an IRQ that needs a scheduling decision; `frame` is whole.
pub fn lower_irq_switch(frame: &mut TrapFrame) {
    super::run::guest_irq_switch(frame)
}

/// A guest exception with no guest on this CPU: a hypervisor bug. Report, halt.
pub fn unexpected_guest(frame: &TrapFrame) -> ! {
    crate::logger::report(format_args!(
        "{}",
        Report {
            kind: "synchronous, lower EL, no vCPU",
            frame
        }
    ));
    super::halt_this_cpu()
}
