//! What firmware would do at EL3 before starting a hypervisor, for the case
//! where QEMU (`secure=on`, no firmware) enters `hyp` at EL3: make EL2 the
//! non-secure AArch64 hypervisor level, stop FP/SIMD traps to EL3, open the GIC
//! system-register interface to EL2, and leave the secure GIC set-up to the
//! GIC driver's hook; then drop to EL2h with every exception masked.
//!
//! Nothing is printed here: the UART is only set up at EL2.

use aarch64_cpu::registers::{ELR_EL3, ID_AA64PFR0_EL1, SCR_EL3, SPSR_EL3};
use tock_registers::interfaces::{Readable, Writeable};

use super::sysreg::{
    CPTR_EL3, CptrEl3, ICC_SRE_EL3, ID_AA64PFR0, IccSreEl3, IdAa64Pfr0, SCR_EL3_RES1,
};

/// Whether the CPU implements the GICv3+ system register interface
/// (ID_AA64PFR0_EL1.GIC, Arm ARM D23.2).
pub fn has_gic_sysregs() -> bool {
    IdAa64Pfr0.read(ID_AA64PFR0::GIC) != 0
}

/// Per-CPU EL3 register set-up; each CPU runs it on itself.
pub(super) fn setup_this_cpu() {
    // SCR_EL3 (Arm ARM D23.2): lower levels non-secure, EL2 AArch64, HVC
    // enabled. SMC is disabled: there is no EL3 runtime behind us, so an SMC
    // from EL2 must be UNDEFINED (an EL2 exception we can report) rather than a
    // jump into a missing EL3 vector table.
    let fields = SCR_EL3::NS::NonSecure
        + SCR_EL3::RW::NextELIsAarch64
        + SCR_EL3::HCE::HvcEnabled
        + SCR_EL3::SMD::SmcDisabled;
    SCR_EL3.set(fields.value | SCR_EL3_RES1::RES1.val(0b11).value);

    // CPTR_EL3: no FP/SIMD, trace, AMU or CPACR trap to EL3. SVE is enabled for
    // lower levels only if implemented (CPTR_EL3.EZ, Arm ARM D23.2).
    let sve = ID_AA64PFR0_EL1.read(ID_AA64PFR0_EL1::SVE) != 0;
    CptrEl3.write(if sve {
        CPTR_EL3::EZ::SET
    } else {
        CPTR_EL3::EZ::CLEAR
    });

    // ICC_SRE_EL3 (GIC spec IHI 0069, 12.2.x): use the system registers and let
    // EL2 use them too (Enable), with IRQ/FIQ bypass disabled.
    if has_gic_sysregs() {
        IccSreEl3.write(
            ICC_SRE_EL3::SRE::SET
                + ICC_SRE_EL3::DFB::SET
                + ICC_SRE_EL3::DIB::SET
                + ICC_SRE_EL3::Enable::SET,
        );
    }
}

/// Arranges for the next `eret` to enter EL2h at `resume` with D, A, I, F
/// masked (SPSR_EL3/ELR_EL3, Arm ARM D1.11 "Exception return").
pub(super) fn prepare_drop_to_el2(resume: usize) {
    SPSR_EL3.write(
        SPSR_EL3::D::Masked
            + SPSR_EL3::A::Masked
            + SPSR_EL3::I::Masked
            + SPSR_EL3::F::Masked
            + SPSR_EL3::M::EL2h,
    );
    ELR_EL3.set(resume as u64);
}

/// Secure GIC set-up for the whole system (boot CPU only, before any pen CPU
/// runs its own set-up): `crate::drivers::gic::secure_init`. `dtb` is the
/// device tree blob, if one was found. Nothing can be printed yet, so a failure
/// only shows later as interrupts that do not arrive.
pub(super) fn secure_gic_init_boot_cpu(dtb: Option<&[u8]>) {
    let Some(platform) = dtb.and_then(|d| crate::platform::Platform::parse(d).ok()) else {
        return;
    };
    let _ = crate::drivers::gic::secure_init(&platform);
}

/// Secure GIC set-up for the calling CPU (banked GICv2 registers).
pub(super) fn secure_gic_init_this_cpu() {
    crate::drivers::gic::secure_init_this_cpu();
}
