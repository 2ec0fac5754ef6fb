//! Exceptions from a lower EL (guests). The lead replaces these bodies with the
//! hypercall / fault dispatcher; the contract with `vectors.rs` is:
//! - `frame` holds the guest's x0..x30, ELR_EL2, SPSR_EL2, ESR_EL2, FAR_EL2;
//! - whatever the handler leaves in `frame.x`, `frame.elr`, `frame.spsr` is
//!   what the guest resumes with (`eret`) when the handler returns.

use super::vectors::{Report, TrapFrame};

/// Synchronous exception from EL1/EL0 (HVC, trapped instruction, stage-2 abort).
pub fn lower_sync(frame: &mut TrapFrame) {
    crate::logger::report(format_args!(
        "{}",
        Report {
            kind: "synchronous, lower EL",
            frame
        }
    ));
    super::halt_this_cpu()
}

/// IRQ taken to EL2 while a guest was running.
pub fn lower_irq(frame: &mut TrapFrame) {
    crate::logger::report(format_args!(
        "{}",
        Report {
            kind: "IRQ, lower EL",
            frame
        }
    ));
    super::halt_this_cpu()
}
