//! System registers that `aarch64-cpu` does not model (or models without the
//! fields we need), declared with named fields like the crate's own.

use core::arch::asm;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// The ISS of an exception from a trapped MSR or MRS (`ESR_EL2.EC` 0x18,
    /// `TrappedMsrMrs`); Arm ARM D24.2.44 (ISS encoding for an exception from
    /// MSR, MRS, or System instruction execution in AArch64 state).
    pub ISS_SYSREG [
        /// `op0` of the register's encoding.
        OP0 OFFSET(20) NUMBITS(2) [],
        /// `op2`.
        OP2 OFFSET(17) NUMBITS(3) [],
        /// `op1`.
        OP1 OFFSET(14) NUMBITS(3) [],
        /// `CRn`.
        CRN OFFSET(10) NUMBITS(4) [],
        /// The general-purpose register transferred (31: XZR).
        RT OFFSET(5) NUMBITS(5) [],
        /// `CRm`.
        CRM OFFSET(1) NUMBITS(4) [],
        /// The direction.
        DIRECTION OFFSET(0) NUMBITS(1) [
            /// MSR: a write to the register.
            Write = 0,
            /// MRS: a read.
            Read = 1
        ]
    ],

    /// CPTR_EL2, Architectural Feature Trap Register (EL2), as laid out when
    /// HCR_EL2.E2H == 0; Arm ARM D23.2. (`aarch64-cpu` names only `TAM`.)
    pub CPTR_EL2 [
        /// Trap EL1 accesses to CPACR_EL1 to EL2.
        TCPAC OFFSET(31) NUMBITS(1) [],
        /// Trap activity monitor accesses.
        TAM OFFSET(30) NUMBITS(1) [],
        /// Trap trace register accesses.
        TTA OFFSET(20) NUMBITS(1) [],
        /// RES1 (bit 12 is `TSM` with SME, which then traps SME).
        RES1_12 OFFSET(12) NUMBITS(2) [],
        /// Trap Advanced SIMD and floating-point (EL0, EL1 and EL2).
        TFP OFFSET(10) NUMBITS(1) [],
        /// RES1.
        RES1_9 OFFSET(9) NUMBITS(1) [],
        /// Trap SVE (RES1 without SVE).
        TZ OFFSET(8) NUMBITS(1) [],
        /// RES1.
        RES1_0 OFFSET(0) NUMBITS(8) []
    ],

    /// CPTR_EL3, Architectural Feature Trap Register (EL3); Arm ARM D23.2.
    pub CPTR_EL3 [
        /// Trap accesses to CPACR_EL1/CPTR_EL2 from EL1/EL2 to EL3.
        TCPAC OFFSET(31) NUMBITS(1) [],
        /// Trap activity monitor accesses.
        TAM OFFSET(30) NUMBITS(1) [],
        /// Trap trace register accesses.
        TTA OFFSET(20) NUMBITS(1) [],
        /// Enable SME at lower ELs (when set).
        ESM OFFSET(12) NUMBITS(1) [],
        /// Trap Advanced SIMD and floating-point to EL3.
        TFP OFFSET(10) NUMBITS(1) [],
        /// Enable SVE at lower ELs (when set).
        EZ OFFSET(8) NUMBITS(1) []
    ],

    /// ICC_SRE_EL3, Interrupt Controller System Register Enable (EL3);
    /// GIC architecture spec (IHI 0069) 12.2.
    pub ICC_SRE_EL3 [
        /// Lower ELs may access ICC_SRE_EL1/EL2.
        Enable OFFSET(3) NUMBITS(1) [],
        /// Disable IRQ bypass.
        DIB OFFSET(2) NUMBITS(1) [],
        /// Disable FIQ bypass.
        DFB OFFSET(1) NUMBITS(1) [],
        /// Use the system register interface at EL3.
        SRE OFFSET(0) NUMBITS(1) []
    ],

    /// The ID_AA64PFR0_EL1 fields `aarch64-cpu` leaves out; Arm ARM D23.2.
    pub ID_AA64PFR0 [
        /// GIC system register interface.
        GIC OFFSET(24) NUMBITS(4) [
            None = 0b0000,
            V3 = 0b0001,
            V41 = 0b0011
        ]
    ],

    /// The RES1 bits of SCR_EL3 (bits 5:4 in AArch64; Arm ARM D23.2), which
    /// `aarch64-cpu`'s SCR_EL3 does not name.
    pub SCR_EL3_RES1 [
        RES1 OFFSET(4) NUMBITS(2) []
    ],

    /// The RES1 bits of SCTLR_EL2 when HCR_EL2.E2H == 0 (Arm ARM D23.2),
    /// which `aarch64-cpu`'s SCTLR_EL2 does not name.
    pub SCTLR_EL2_RES1 [
        RES1_4 OFFSET(4) NUMBITS(2) [],
        RES1_16 OFFSET(16) NUMBITS(1) [],
        RES1_18 OFFSET(18) NUMBITS(1) [],
        RES1_23 OFFSET(23) NUMBITS(1) [],
        RES1_28 OFFSET(28) NUMBITS(2) []
    ],

    /// The RES1 bits of TCR_EL2 when HCR_EL2.E2H == 0 (bits 31 and 23; Arm ARM
    /// D23.2), which `aarch64-cpu`'s TCR_EL2 does not name.
    pub TCR_EL2_RES1 [
        RES1_23 OFFSET(23) NUMBITS(1) [],
        RES1_31 OFFSET(31) NUMBITS(1) []
    ],

    /// CTR_EL0, Cache Type Register; Arm ARM D23.2.
    pub CTR_EL0 [
        /// log2 of the number of words in the smallest data cache line.
        DminLine OFFSET(16) NUMBITS(4) []
    ],

    /// PMCR_EL0, Performance Monitors Control Register; Arm ARM D23.5.
    pub PMCR_EL0 [
        /// The cycle counter overflows at 64 bits, not 32.
        LC OFFSET(6) NUMBITS(1) [],
        /// Writing 1 resets the cycle counter to zero.
        C OFFSET(2) NUMBITS(1) [],
        /// Enables the counters (with their PMCNTENSET_EL0 bits).
        E OFFSET(0) NUMBITS(1) []
    ],

    /// PMCNTENSET_EL0, Performance Monitors Count Enable Set; Arm ARM D23.5.
    pub PMCNTENSET_EL0 [
        /// Enables the cycle counter PMCCNTR_EL0.
        C OFFSET(31) NUMBITS(1) []
    ],

    /// PMCCFILTR_EL0, Performance Monitors Cycle Count Filter; Arm ARM D23.5.
    pub PMCCFILTR_EL0 [
        /// Also counts cycles spent at EL2 (Non-secure).
        NSH OFFSET(27) NUMBITS(1) []
    ]
}

macro_rules! sysreg {
    ($(#[$doc:meta])* $name:ident, $reg:ty, $asm_name:literal, rw) => {
        sysreg!($(#[$doc])* $name, $reg, $asm_name, ro);
        impl Writeable for $name {
            type T = u64;
            type R = $reg;
            #[inline]
            fn set(&self, value: u64) {
                // SAFETY: writing this register is only done from code that runs at
                // the register's exception level (callers check CurrentEL), and
                // the written value is built from the register's named fields.
                unsafe { asm!(concat!("msr ", $asm_name, ", {}"), in(reg) value, options(nomem, nostack)) };
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $reg:ty, $asm_name:literal, ro) => {
        $(#[$doc])*
        pub struct $name;
        impl Readable for $name {
            type T = u64;
            type R = $reg;
            #[inline]
            fn get(&self) -> u64 {
                let value;
                // SAFETY: reading an ID or control register has no side effect.
                unsafe { asm!(concat!("mrs {}, ", $asm_name), out(reg) value, options(nomem, nostack)) };
                value
            }
        }
    };
}

sysreg!(
    /// Accessor for CPTR_EL2.
    CptrEl2, CPTR_EL2::Register, "cptr_el2", rw
);
sysreg!(
    /// Accessor for CPTR_EL3 (EL3 only).
    CptrEl3, CPTR_EL3::Register, "cptr_el3", rw
);
sysreg!(
    /// Accessor for ICC_SRE_EL3 (EL3 only; encoded by number so the assembler
    /// does not need the GICv3 feature).
    IccSreEl3, ICC_SRE_EL3::Register, "S3_6_C12_C12_5", rw
);
sysreg!(
    /// Accessor for CTR_EL0.
    CtrEl0, CTR_EL0::Register, "ctr_el0", ro
);
sysreg!(
    /// Accessor for the GIC field of ID_AA64PFR0_EL1.
    IdAa64Pfr0, ID_AA64PFR0::Register, "id_aa64pfr0_el1", ro
);
sysreg!(
    /// Accessor for PMCR_EL0.
    PmcrEl0, PMCR_EL0::Register, "pmcr_el0", rw
);
sysreg!(
    /// Accessor for PMCNTENSET_EL0.
    PmcntensetEl0, PMCNTENSET_EL0::Register, "pmcntenset_el0", rw
);
sysreg!(
    /// Accessor for PMCCFILTR_EL0.
    PmccfiltrEl0, PMCCFILTR_EL0::Register, "pmccfiltr_el0", rw
);
