//! GICv3 CPU interface system registers that `aarch64-cpu` does not provide.
//!
//! `aarch64-cpu` has `ICC_SRE_EL2`, `ICH_HCR_EL2`, `ICH_VTR_EL2`, `ICH_LR<n>_EL2`
//! and a read-only `ICC_CTLR_EL1`; everything else the GIC drivers need is
//! declared here. Each register is written by its architectural encoding
//! (`S<op0>_<op1>_C<n>_C<m>_<op2>`, GICv3 spec IHI 0069 §12.1 lists them) so
//! that no assembler extension is needed; the comment beside each names it.
//!
//! The accessors implement `tock-registers`' `Readable`/`Writeable`, so fields
//! are read and written by name (`ICC_CTLR_EL1.modify(ICC_CTLR_EL1::EOImode::SET)`).
//! Unlike `aarch64-cpu` they do not claim `nomem`: acknowledging, ending and
//! generating interrupts must stay ordered against the memory accesses around
//! them, so every access is also a compiler barrier.

#![allow(non_camel_case_types)] // register names are spelt as in the Arm documentation

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields,
};

/// Declares a system register accessor: a unit struct, a constant of that type
/// named like the register and `Readable`/`Writeable` impls using `mrs`/`msr`.
macro_rules! gic_sysreg {
    ($(#[$doc:meta])* $name:ident, $encoding:literal, $fields:ty, rw) => {
        gic_sysreg!(@decl $(#[$doc])* $name);
        gic_sysreg!(@read $name, $encoding, $fields);
        gic_sysreg!(@write $name, $encoding, $fields);
    };
    ($(#[$doc:meta])* $name:ident, $encoding:literal, $fields:ty, ro) => {
        gic_sysreg!(@decl $(#[$doc])* $name);
        gic_sysreg!(@read $name, $encoding, $fields);
    };
    ($(#[$doc:meta])* $name:ident, $encoding:literal, $fields:ty, wo) => {
        gic_sysreg!(@decl $(#[$doc])* $name);
        gic_sysreg!(@write $name, $encoding, $fields);
    };
    (@decl $(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub const $name: reg::$name = reg::$name;
    };
    (@read $name:ident, $encoding:literal, $fields:ty) => {
        impl Readable for reg::$name {
            type T = u64;
            type R = $fields;
            #[inline]
            fn get(&self) -> u64 {
                let value;
                // SAFETY: reading a GIC CPU interface register has no effect on
                // memory safety; the drivers only call this once the interface is
                // enabled (ICC_SRE_EL2.SRE / ICC_SRE_EL3.SRE), so it does not trap.
                unsafe {
                    core::arch::asm!(
                        concat!("mrs {v}, ", $encoding),
                        v = out(reg) value,
                        options(nostack, preserves_flags),
                    );
                }
                value
            }
        }
    };
    (@write $name:ident, $encoding:literal, $fields:ty) => {
        impl Writeable for reg::$name {
            type T = u64;
            type R = $fields;
            #[inline]
            fn set(&self, value: u64) {
                // SAFETY: writing a GIC CPU interface register changes only
                // interrupt delivery state, never memory the compiler knows about.
                unsafe {
                    core::arch::asm!(
                        concat!("msr ", $encoding, ", {v}"),
                        v = in(reg) value,
                        options(nostack, preserves_flags),
                    );
                }
            }
        }
    };
}

/// Accessor types, one per register (the constants above are their only values).
pub mod reg {
    macro_rules! types {
        ($($name:ident),* $(,)?) => {
            $(
                #[doc = concat!("Accessor for `", stringify!($name), "`.")]
                #[derive(Clone, Copy, Debug)]
                pub struct $name;
            )*
        };
    }
    types!(
        ICC_PMR_EL1,
        ICC_BPR1_EL1,
        ICC_CTLR_EL1,
        ICC_IGRPEN1_EL1,
        ICC_IAR1_EL1,
        ICC_EOIR1_EL1,
        ICC_DIR_EL1,
        ICC_SGI1R_EL1,
        ICH_ELRSR_EL2,
    );
}

register_bitfields! {u64,
    /// Interrupt priority mask (IHI 0069 §12.2.24).
    pub ICC_PMR_EL1 [
        /// Only interrupts with a priority value lower than this are signalled.
        Priority OFFSET(0) NUMBITS(8) [],
    ],
    /// Binary point for Group 1 preemption (IHI 0069 §12.2.4).
    pub ICC_BPR1_EL1 [
        BinaryPoint OFFSET(0) NUMBITS(3) [],
    ],
    /// CPU interface control for the current Security state (IHI 0069 §12.2.7).
    pub ICC_CTLR_EL1 [
        ExtRange OFFSET(19) NUMBITS(1) [],
        RSS OFFSET(18) NUMBITS(1) [],
        A3V OFFSET(15) NUMBITS(1) [],
        SEIS OFFSET(14) NUMBITS(1) [],
        IDbits OFFSET(11) NUMBITS(3) [],
        PRIbits OFFSET(8) NUMBITS(3) [],
        PMHE OFFSET(6) NUMBITS(1) [],
        /// 1: a write to ICC_EOIR1_EL1 only drops the running priority and
        /// ICC_DIR_EL1 deactivates (split EOI).
        EOImode OFFSET(1) NUMBITS(1) [],
        CBPR OFFSET(0) NUMBITS(1) [],
    ],
    /// Group 1 interrupt enable for the current Security state (IHI 0069 §12.2.16).
    pub ICC_IGRPEN1_EL1 [
        Enable OFFSET(0) NUMBITS(1) [],
    ],
    /// Acknowledge / end-of-interrupt / deactivate value (IHI 0069 §12.2.14,
    /// §12.2.10, §12.2.9): the INTID of the interrupt.
    pub ICC_INTID [
        /// 24 bits wide; only the low 16 are implemented unless IDbits says more.
        INTID OFFSET(0) NUMBITS(24) [],
    ],
    /// Generate a Group 1 SGI for the current Security state (IHI 0069 §12.2.22).
    pub ICC_SGI1R_EL1 [
        Aff3 OFFSET(48) NUMBITS(8) [],
        RS OFFSET(44) NUMBITS(4) [],
        /// 1: to every PE but the sender; 0: to the PEs in TargetList.
        IRM OFFSET(40) NUMBITS(1) [],
        Aff2 OFFSET(32) NUMBITS(8) [],
        INTID OFFSET(24) NUMBITS(4) [],
        Aff1 OFFSET(16) NUMBITS(8) [],
        /// One bit per Aff0 value `RS * 16 + n`.
        TargetList OFFSET(0) NUMBITS(16) [],
    ],
    /// Empty list register status: bit n set when ICH_LR<n>_EL2 holds no
    /// interrupt (IHI 0069 §12.4.5).
    pub ICH_ELRSR_EL2 [
        Status OFFSET(0) NUMBITS(16) [],
    ],
}

gic_sysreg!(
    /// ICC_PMR_EL1 (S3_0_C4_C6_0).
    ICC_PMR_EL1, "S3_0_C4_C6_0", ICC_PMR_EL1::Register, rw
);
gic_sysreg!(
    /// ICC_BPR1_EL1 (S3_0_C12_C12_3).
    ICC_BPR1_EL1, "S3_0_C12_C12_3", ICC_BPR1_EL1::Register, rw
);
gic_sysreg!(
    /// ICC_CTLR_EL1 (S3_0_C12_C12_4); at EL2 this is the Non-secure copy.
    ICC_CTLR_EL1, "S3_0_C12_C12_4", ICC_CTLR_EL1::Register, rw
);
gic_sysreg!(
    /// ICC_IGRPEN1_EL1 (S3_0_C12_C12_7).
    ICC_IGRPEN1_EL1, "S3_0_C12_C12_7", ICC_IGRPEN1_EL1::Register, rw
);
gic_sysreg!(
    /// ICC_IAR1_EL1 (S3_0_C12_C12_0): reading acknowledges the highest
    /// priority pending Group 1 interrupt.
    ICC_IAR1_EL1, "S3_0_C12_C12_0", ICC_INTID::Register, ro
);
gic_sysreg!(
    /// ICC_EOIR1_EL1 (S3_0_C12_C12_1): priority drop (and deactivation when
    /// ICC_CTLR_EL1.EOImode is 0).
    ICC_EOIR1_EL1, "S3_0_C12_C12_1", ICC_INTID::Register, wo
);
gic_sysreg!(
    /// ICC_DIR_EL1 (S3_0_C12_C11_1): deactivation when EOImode is 1.
    ICC_DIR_EL1, "S3_0_C12_C11_1", ICC_INTID::Register, wo
);
gic_sysreg!(
    /// ICC_SGI1R_EL1 (S3_0_C12_C11_5).
    ICC_SGI1R_EL1, "S3_0_C12_C11_5", ICC_SGI1R_EL1::Register, wo
);
gic_sysreg!(
    /// ICH_ELRSR_EL2 (S3_4_C12_C11_5).
    ICH_ELRSR_EL2, "S3_4_C12_C11_5", ICH_ELRSR_EL2::Register, ro
);

/// Instruction synchronization barrier: makes a CPU interface register write
/// visible to the instructions that follow (IHI 0069 §12.1.6).
#[inline]
pub fn isb() {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
