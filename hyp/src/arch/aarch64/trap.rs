//! Exceptions from a lower EL (guests). The contract with `vectors.rs`:
//! `frame` is the current vCPU's general registers in its context
//! (`run::PerCpu::regs`), where the vector saved the guest's registers
//! (which ones, each function says); whatever the handler leaves in
//! `frame.x`, and for [`lower_sync`] in `ELR_EL2`/`SPSR_EL2`, is what the CPU
//! enters with (`eret`) when the handler returns, unless a switch path
//! loaded another vCPU, which is entered from its own context instead.

use super::vectors::{Report, TrapFrame};
use crate::vcpu::GuestRegs;

/// Synchronous exception from EL1/EL0, first look: answers a discovery
/// hypercall (returns 0), anything else returns non-zero for [`lower_sync`].
/// `frame` holds the caller-saved registers (x0..x18, x29, x30).
#[inline(always)]
pub fn lower_sync_discovery(frame: &mut GuestRegs) -> u64 {
    super::run::guest_discovery(frame)
}

/// Synchronous exception from EL1/EL0 (HVC, trapped instruction, stage-2
/// abort). `frame` holds every general register but not PC/PSTATE (still in
/// ELR/SPSR); returns 0 to resume the guest, or the registers of the vCPU
/// to enter instead.
pub fn lower_sync(frame: &mut GuestRegs) -> u64 {
    super::run::guest_sync(frame)
}

/// IRQ taken to EL2 while a guest was running (time slice, guest timer,
/// reschedule IPI). The vector saved the caller-saved registers only;
/// returns 0 to resume the guest, or non-zero for [`lower_irq_switch`].
pub fn lower_irq() -> u64 {
    super::run::guest_irq()
}

/// Completes an IRQ that needs a scheduling decision; the vector saved
/// every register, PC and PSTATE included.
pub fn lower_irq_switch() {
    super::run::guest_irq_switch()
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
