//! Running vCPUs: how EL2 is configured for guests, and moving a vCPU's
//! context on and off the CPU.
//!
//! The hypervisor is built soft-float, so its own code never touches the FP/SIMD
//! registers: a guest's FP state stays live in the registers across traps and
//! is only saved and loaded when the CPU switches to another vCPU.

use core::arch::{asm, global_asm};

use aarch64_cpu::registers::{
    AFSR0_EL1, AFSR1_EL1, AMAIR_EL1, CNTHCTL_EL2, CNTKCTL_EL1, CNTV_CTL_EL0, CNTV_CVAL_EL0,
    CNTVOFF_EL2, CONTEXTIDR_EL1, CPACR_EL1, CSSELR_EL1, ELR_EL1, ESR_EL1, FAR_EL1, HCR_EL2,
    ID_AA64MMFR0_EL1, MAIR_EL1, MDCR_EL2, MDSCR_EL1, PAR_EL1, ReadWriteable, Readable, SCTLR_EL1,
    SP_EL0, SP_EL1, SPSR_EL1, TCR_EL1, TPIDR_EL0, TPIDR_EL1, TPIDRRO_EL0, TTBR0_EL1, TTBR1_EL1,
    VBAR_EL1, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2, Writeable,
};

use core::sync::atomic::{AtomicBool, Ordering};

use super::sysreg::{
    PMCCFILTR_EL0, PMCNTENSET_EL0, PMCR_EL0, PmccfiltrEl0, PmcntensetEl0, PmcrEl0,
};
use crate::pagetable::STAGE2_LAYOUT;
use crate::vcpu::{El1Regs, FpHold, FpRegs, GuestRegs, VcpuContext};

/// `HCR_EL2` while guests run, the upcall lowered: every CPU's, set once
/// ([`init_cpu`]) and never changed but for `VI` ([`set_upcall`], which
/// writes it whole rather than read it back). Arm ARM D13.2.48: stage 2
/// on; EL1 is AArch64; physical IRQ,
/// FIQ and SError go to EL2 (guests only ever see virtual interrupts);
/// SMC traps (PV guests have no firmware); implementation-defined and
/// auxiliary control registers trap (their effects are not contained by
/// stage 2); so do writes to the virtual-memory controls (TVM), which the
/// trap puts straight into the vCPU's context, so that a switch need not
/// read them back (`vmctl.rs`); set/way invalidation is upgraded to clean+invalidate so a
/// guest cannot discard another domain's dirty lines; broadcast TLB and
/// barrier operations are inner shareable. DC: PV guests run with their
/// stage 1 off, which would make all their data accesses Device memory:
/// slow, and exclusives (spin locks, the grant-table compare-and-swap) on
/// Device memory are not guaranteed to work. With DC, stage 1 "off" means
/// Normal write-back; stage 2 still makes device MMIO Device (the stricter
/// attribute wins), so dom0's drivers are unaffected.
const HCR_GUEST: u64 = HCR_EL2::VM::Enable.value
    | HCR_EL2::RW::EL1IsAarch64.value
    | HCR_EL2::IMO::EnableVirtualIRQ.value
    | HCR_EL2::FMO::EnableVirtualFIQ.value
    | HCR_EL2::AMO::SET.value
    | HCR_EL2::TSC::EnableTrapEl1SmcToEl2.value
    | HCR_EL2::TIDCP::SET.value
    | HCR_EL2::TACR::SET.value
    | HCR_EL2::TVM::SET.value
    | HCR_EL2::SWIO::SET.value
    | HCR_EL2::FB::SET.value
    | HCR_EL2::BSU::InnerShareable.value
    | HCR_EL2::PTW::SET.value
    | HCR_EL2::DC::SET.value;

/// Configures this CPU's EL2 controls for running paravirtualized guests.
/// Called once per CPU before its first guest entry; `slot` is its per-CPU
/// slot (as for [`load`]).
pub fn init_cpu(slot: usize) {
    HCR_EL2.set(HCR_GUEST);
    // Stage-2 geometry comes from the table builder's layout; the output size
    // from what the CPU implements (D13.2.151 VTCR_EL2).
    let ps = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101);
    VTCR_EL2.write(
        VTCR_EL2::T0SZ.val(u64::from(STAGE2_LAYOUT.t0sz()))
            + VTCR_EL2::SL0::Granule4KBLevel1
            + VTCR_EL2::IRGN0::NormalWBRAWA
            + VTCR_EL2::ORGN0::NormalWBRAWA
            + VTCR_EL2::SH0::Inner
            + VTCR_EL2::TG0::Granule4KB
            + VTCR_EL2::PS.val(ps)
            + VTCR_EL2::VS::Bits8,
    );
    // Guests read the counter (physical and virtual) but not the physical
    // timer, which belongs to the hypervisor (D13.2.28 CNTHCTL_EL2).
    CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::CLEAR);
    CNTVOFF_EL2.set(0);
    // Debug and performance-monitor registers trap: a PV guest has no use for
    // them and they can observe other domains (D13.2.76 MDCR_EL2). With
    // `hyp.guest_pmu=1` (benchmarks on real hardware) the counters are
    // readable, but PMCR_EL0 still traps: a guest cannot reconfigure them.
    let guest_pmu = GUEST_PMU.load(Ordering::Relaxed);
    MDCR_EL2.modify(
        if guest_pmu {
            MDCR_EL2::TPM::CLEAR
        } else {
            MDCR_EL2::TPM::SET
        } + MDCR_EL2::TPMCR::SET
            + MDCR_EL2::TDA::SET
            + MDCR_EL2::TDOSA::SET
            + MDCR_EL2::TDRA::SET,
    );
    if guest_pmu {
        start_cycle_counter();
    }
    // Not switched with the vCPUs: with `TDA` set a guest can neither read
    // nor write it (its access traps and stops it), so zero (no software
    // step, no debug exceptions at EL1) holds for every guest.
    MDSCR_EL1.set(0);
    super::fp::init_cpu(slot);
    // SAFETY: `isb` only synchronizes the context changes above.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Whether guests may read the PMU counters (`hyp.guest_pmu=1`); set once
/// on the boot CPU before any CPU runs [`init_cpu`].
static GUEST_PMU: AtomicBool = AtomicBool::new(false);

/// Lets guests read the PMU cycle counter (or not, the default: a free-running
/// cycle counter is a timing side channel between domains).
pub fn allow_guest_pmu(on: bool) {
    GUEST_PMU.store(on, Ordering::Relaxed);
    if on {
        // A warning: it weakens isolation between domains.
        log::warn!("pmu: guests may read the cycle counter (hyp.guest_pmu=1)");
    }
}

/// Starts this CPU's 64-bit cycle counter from zero, counting at EL2 too so
/// that a guest's figure includes the hypervisor's share of its work.
fn start_cycle_counter() {
    PmccfiltrEl0.write(PMCCFILTR_EL0::NSH::SET);
    PmcrEl0.modify(PMCR_EL0::LC::SET + PMCR_EL0::C::SET + PMCR_EL0::E::SET);
    PmcntensetEl0.write(PMCNTENSET_EL0::C::SET);
}

/// Sets the running vCPU's virtual counter offset (`CNTVOFF_EL2`): each
/// domain's virtual time starts at zero when it is created.
pub fn set_virtual_time_offset(offset: u64) {
    CNTVOFF_EL2.set(offset);
}

/// Raises (`true`) or lowers the virtual IRQ of the running vCPU: the event
/// upcall (`HCR_EL2.VI`, Arm ARM D13.2.48). The guest takes it at EL1 as an
/// ordinary IRQ when it unmasks interrupts.
pub fn set_upcall(pending: bool) {
    let vi = if pending { HCR_EL2::VI::SET.value } else { 0 };
    HCR_EL2.set(HCR_GUEST | vi);
}

/// `VTTBR_EL2` for a domain: its VMID and stage-2 root (D13.2.152).
pub fn vttbr(vmid: u16, root: u64) -> u64 {
    (VTTBR_EL2::VMID.val(u64::from(vmid)) + VTTBR_EL2::BADDR.val(root >> 1)).value
}

/// Removes every stage-1 and stage-2 TLB and walk-cache entry tagged with
/// `vmid`, on every CPU in the inner-shareable domain (Arm ARM D8.16,
/// `TLBI VMALLS12E1IS` acts on the VMID in `VTTBR_EL2`, so it is switched to
/// `vmid` for the operation).
pub fn flush_vmid(vmid: u16) {
    let saved = VTTBR_EL2.get();
    VTTBR_EL2.set(vttbr(vmid, 0));
    // SAFETY: TLB maintenance and barriers only; `VTTBR_EL2` is restored
    // before any guest runs again.
    unsafe {
        asm!(
            "isb",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
    VTTBR_EL2.set(saved);
}

/// Makes new stage-2 entries visible to the table walkers of every CPU
/// before a guest can use them (Arm ARM D8.16.1: `DSB ISHST` after writing
/// translation table entries).
pub fn stage2_barrier() {
    // SAFETY: a barrier only.
    unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
}

/// Removes stage-2 TLB entries of `vmid` for `pages` pages from `ipa` on
/// every CPU (`TLBI IPAS2E1IS` per page, then `TLBI VMALLE1IS` for stage-1
/// entries that cached the combined walk, Arm ARM D8.16.5), or every entry of
/// the VMID when `range` is `None`.
pub fn flush_stage2(vmid: u16, range: Option<(u64, u64)>) {
    let Some((ipa, pages)) = range else {
        flush_vmid(vmid);
        return;
    };
    let saved = VTTBR_EL2.get();
    VTTBR_EL2.set(vttbr(vmid, 0));
    // SAFETY: TLB maintenance and barriers only; `VTTBR_EL2` is restored
    // before any guest runs again.
    unsafe {
        asm!("dsb ishst", "isb", options(nostack, preserves_flags));
        for p in 0..pages {
            // The operand is IPA[47:12] in bits [35:0].
            let page = (ipa >> crate::addr::PAGE_SHIFT) + p;
            asm!("tlbi ipas2e1is, {}", in(reg) page, options(nostack, preserves_flags));
        }
        asm!(
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        );
    }
    VTTBR_EL2.set(saved);
}

/// Puts `ctx` on this CPU: EL1 system registers and stage 2. The general
/// registers, PC and PSTATE are not copied: the exception return restores
/// them from `ctx.gp` itself ([`enter`]); FP/SIMD is loaded at its first
/// use (`fp.rs`). `slot`: this CPU's per-CPU slot (`TPIDR_EL2`, its index
/// + 1).
#[inline(always)]
pub fn load(ctx: &mut VcpuContext, hold: &mut FpHold, slot: usize, vttbr: u64, vmpidr: u64) {
    load_el1(&ctx.el1);
    super::fp::loaded(slot, &ctx.fp, hold);
    VTTBR_EL2.set(vttbr);
    VMPIDR_EL2.set(vmpidr);
    // SAFETY: `isb` only synchronizes the register writes above.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Takes the running vCPU's state off this CPU (`slot` as for [`load`])
/// into its context's `el1` and `fp`. Its general registers, PC and
/// PSTATE are there already: the exception entry saved them into the
/// context (`vectors.rs`).
pub fn save(el1: &mut El1Regs, fp: &mut FpRegs, hold: &mut FpHold, slot: usize) {
    // SAFETY: reads the EL1 registers, writes the fields of `*el1` before
    // the virtual-memory controls through a valid, 8-byte aligned `&mut`
    // (the offsets checked below); clobbers only x1..x4 (caller-saved).
    unsafe { tern_save_el1(el1) };
    super::fp::save(slot, fp, hold);
}

#[inline(always)]
fn load_el1(r: &El1Regs) {
    SCTLR_EL1.set(r.sctlr);
    TTBR0_EL1.set(r.ttbr0);
    TTBR1_EL1.set(r.ttbr1);
    TCR_EL1.set(r.tcr);
    MAIR_EL1.set(r.mair);
    AMAIR_EL1.set(r.amair);
    VBAR_EL1.set(r.vbar);
    CONTEXTIDR_EL1.set(r.contextidr);
    CPACR_EL1.set(r.cpacr);
    SP_EL0.set(r.sp_el0);
    SP_EL1.set(r.sp_el1);
    ELR_EL1.set(r.elr);
    SPSR_EL1.set(r.spsr);
    ESR_EL1.set(r.esr);
    FAR_EL1.set(r.far);
    AFSR0_EL1.set(r.afsr0);
    AFSR1_EL1.set(r.afsr1);
    PAR_EL1.set(r.par);
    TPIDR_EL0.set(r.tpidr_el0);
    TPIDRRO_EL0.set(r.tpidrro_el0);
    TPIDR_EL1.set(r.tpidr_el1);
    CNTKCTL_EL1.set(r.cntkctl);
    CNTV_CVAL_EL0.set(r.cntv_cval);
    CNTV_CTL_EL0.set(r.cntv_ctl);
    CSSELR_EL1.set(r.csselr);
}

global_asm!(
    r#"
    .arch_extension fp
    .arch_extension simd
    .section .text.fpsimd, "ax"
    /* x0 = &FpRegs: V0..V31 at 0..0x200, FPSR at 0x200, FPCR at 0x208. */
    .global tern_fp_save
tern_fp_save:
    stp q0, q1, [x0, #0x000]
    stp q2, q3, [x0, #0x020]
    stp q4, q5, [x0, #0x040]
    stp q6, q7, [x0, #0x060]
    stp q8, q9, [x0, #0x080]
    stp q10, q11, [x0, #0x0a0]
    stp q12, q13, [x0, #0x0c0]
    stp q14, q15, [x0, #0x0e0]
    stp q16, q17, [x0, #0x100]
    stp q18, q19, [x0, #0x120]
    stp q20, q21, [x0, #0x140]
    stp q22, q23, [x0, #0x160]
    stp q24, q25, [x0, #0x180]
    stp q26, q27, [x0, #0x1a0]
    stp q28, q29, [x0, #0x1c0]
    stp q30, q31, [x0, #0x1e0]
    mrs x1, fpsr
    mrs x2, fpcr
    add x0, x0, #0x200
    stp x1, x2, [x0]
    ret

    .global tern_fp_load
tern_fp_load:
    ldp q0, q1, [x0, #0x000]
    ldp q2, q3, [x0, #0x020]
    ldp q4, q5, [x0, #0x040]
    ldp q6, q7, [x0, #0x060]
    ldp q8, q9, [x0, #0x080]
    ldp q10, q11, [x0, #0x0a0]
    ldp q12, q13, [x0, #0x0c0]
    ldp q14, q15, [x0, #0x0e0]
    ldp q16, q17, [x0, #0x100]
    ldp q18, q19, [x0, #0x120]
    ldp q20, q21, [x0, #0x140]
    ldp q22, q23, [x0, #0x160]
    ldp q24, q25, [x0, #0x180]
    ldp q26, q27, [x0, #0x1a0]
    ldp q28, q29, [x0, #0x1c0]
    ldp q30, q31, [x0, #0x1e0]
    add x0, x0, #0x200
    ldp x1, x2, [x0]
    msr fpsr, x1
    msr fpcr, x2
    ret

    /* x0 = &mut El1Regs: the running vCPU's EL1 registers, in field
       order, but for the virtual-memory controls at the end, which the
       context holds already (HCR_EL2.TVM traps their writes). `mrs`/`stp`
       pairs, no call. */
    .section .text.save_el1, "ax"
    .global tern_save_el1
tern_save_el1:
    mrs x1, vbar_el1
    mrs x2, cpacr_el1
    mrs x3, sp_el0
    mrs x4, sp_el1
    stp x1, x2, [x0, #0x00]
    stp x3, x4, [x0, #0x10]
    mrs x1, elr_el1
    mrs x2, spsr_el1
    mrs x3, esr_el1
    mrs x4, far_el1
    stp x1, x2, [x0, #0x20]
    stp x3, x4, [x0, #0x30]
    mrs x1, afsr0_el1
    mrs x2, afsr1_el1
    mrs x3, par_el1
    mrs x4, tpidr_el0
    stp x1, x2, [x0, #0x40]
    stp x3, x4, [x0, #0x50]
    mrs x1, tpidrro_el0
    mrs x2, tpidr_el1
    mrs x3, cntkctl_el1
    mrs x4, cntv_ctl_el0
    stp x1, x2, [x0, #0x60]
    stp x3, x4, [x0, #0x70]
    mrs x1, cntv_cval_el0
    mrs x2, csselr_el1
    stp x1, x2, [x0, #0x80]
    ret

    /* x0 = &GuestRegs (x0..x30, PC at 0xf8, PSTATE at 0x100): load
       ELR/SPSR and every GPR from it and enter the guest. Also the tail of
       the vectors' switch paths (vectors.rs), with the EL2 stack reset. */
    .section .text.guest_entry, "ax"
    .global tern_enter_guest
tern_enter_guest:
    ldp x2, x3, [x0, #0xf8]
    msr elr_el2, x2
    msr spsr_el2, x3
    ldp x2, x3, [x0, #0x10]
    ldp x4, x5, [x0, #0x20]
    ldp x6, x7, [x0, #0x30]
    ldp x8, x9, [x0, #0x40]
    ldp x10, x11, [x0, #0x50]
    ldp x12, x13, [x0, #0x60]
    ldp x14, x15, [x0, #0x70]
    ldp x16, x17, [x0, #0x80]
    ldp x18, x19, [x0, #0x90]
    ldp x20, x21, [x0, #0xa0]
    ldp x22, x23, [x0, #0xb0]
    ldp x24, x25, [x0, #0xc0]
    ldp x26, x27, [x0, #0xd0]
    ldp x28, x29, [x0, #0xe0]
    ldr x30, [x0, #0xf0]
    ldp x0, x1, [x0, #0x00]
    eret
"#,
);

const _: () = assert!(core::mem::offset_of!(FpRegs, fpsr) == 0x200);
const _: () = assert!(core::mem::offset_of!(FpRegs, fpcr) == 0x208);
const _: () = assert!(core::mem::offset_of!(GuestRegs, pc) == 0xf8);
const _: () = assert!(core::mem::offset_of!(GuestRegs, pstate) == 0x100);
// `tern_save_el1` writes the EL1 registers in this order, 8 bytes apart,
// up to the virtual-memory controls, which end the struct.
const _: () = {
    use core::mem::offset_of;
    let order = [
        offset_of!(El1Regs, vbar),
        offset_of!(El1Regs, cpacr),
        offset_of!(El1Regs, sp_el0),
        offset_of!(El1Regs, sp_el1),
        offset_of!(El1Regs, elr),
        offset_of!(El1Regs, spsr),
        offset_of!(El1Regs, esr),
        offset_of!(El1Regs, far),
        offset_of!(El1Regs, afsr0),
        offset_of!(El1Regs, afsr1),
        offset_of!(El1Regs, par),
        offset_of!(El1Regs, tpidr_el0),
        offset_of!(El1Regs, tpidrro_el0),
        offset_of!(El1Regs, tpidr_el1),
        offset_of!(El1Regs, cntkctl),
        offset_of!(El1Regs, cntv_ctl),
        offset_of!(El1Regs, cntv_cval),
        offset_of!(El1Regs, csselr),
        offset_of!(El1Regs, sctlr),
        offset_of!(El1Regs, ttbr0),
        offset_of!(El1Regs, ttbr1),
        offset_of!(El1Regs, tcr),
        offset_of!(El1Regs, mair),
        offset_of!(El1Regs, amair),
        offset_of!(El1Regs, contextidr),
    ];
    assert!(core::mem::size_of::<El1Regs>() == order.len() * 8);
    let mut i = 0;
    while i < order.len() {
        assert!(order[i] == i * 8);
        i += 1;
    }
};

unsafe extern "C" {
    fn tern_save_el1(el1: *mut El1Regs);
    fn tern_fp_save(regs: *mut FpRegs);
    fn tern_fp_load(regs: *const FpRegs);
    fn tern_enter_guest(regs: *const GuestRegs) -> !;
}

pub(super) fn fp_save(fp: &mut FpRegs) {
    // SAFETY: writes exactly `size_of::<FpRegs>()` bytes through a valid,
    // 16-byte aligned `&mut`; clobbers only x1, x2 (caller-saved).
    unsafe { tern_fp_save(fp) }
}

pub(super) fn fp_load(fp: &FpRegs) {
    // SAFETY: reads a valid `FpRegs`; the hypervisor is soft-float, so
    // overwriting V0..V31/FPSR/FPCR disturbs no hypervisor state.
    unsafe { tern_fp_load(fp) }
}

/// Enters the guest whose general registers `regs` holds (the rest of its
/// context loaded with [`load`]); the current stack stays below as this
/// CPU's EL2 stack for the guest's traps.
pub fn enter(regs: &GuestRegs) -> ! {
    // SAFETY: `regs` is a vCPU's saved state (its PC a guest PC, its PSTATE
    // an EL1 state the vCPU's own trap saved or `VcpuContext::at_entry`
    // set), and stage 2 and the EL1 registers are loaded, so the `eret`
    // lands in the guest; nothing after this call runs.
    unsafe { tern_enter_guest(regs) }
}
