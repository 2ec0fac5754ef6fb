//! The architectural state of a virtual CPU, as plain data.
//!
//! The hypervisor keeps a guest's whole EL1 context here while the vCPU is not on
//! a physical CPU. Saving and loading the system registers is Arm-specific
//! (`arch::aarch64::vcpu`); this module only says what the state is, so the
//! scheduler, domain control and (later) save/restore and live migration can
//! handle it on any host. Every field is plain old data so a domain's state can
//! be serialized as it stands.

use tern_abi::domctl::VcpuEntry;

/// `SPSR_EL2.M[3:0]` value for EL1 using `SP_EL1` (Arm ARM C5.2.19, "M[3:0]").
const SPSR_MODE_EL1H: u64 = 0b0101;
/// `SPSR_EL2.{D,A,I,F}`: all four exception masks set (bits 9:6).
const SPSR_DAIF_MASKED: u64 = 0b1111 << 6;

/// The entry `PSTATE` of every vCPU (`specs/memory-map.md`): EL1h, `DAIF` masked.
pub const ENTRY_PSTATE: u64 = SPSR_MODE_EL1H | SPSR_DAIF_MASKED;

/// General-purpose state that the exception vectors save on every trap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct GuestRegs {
    /// `x0`..`x30`.
    pub x: [u64; 31],
    /// The guest's PC (`ELR_EL2` while trapped).
    pub pc: u64,
    /// The guest's PSTATE (`SPSR_EL2` while trapped).
    pub pstate: u64,
}

/// The EL1 (and EL0) system registers a PV guest owns. The guest runs its
/// own stage-1 MMU, vectors and timers' virtual counterparts. The last
/// seven, the virtual-memory controls, come after the rest on purpose: the
/// guest's writes to them trap (`HCR_EL2.TVM`) and go into the context at
/// once, so a switch saves only the fields before them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct El1Regs {
    /// `VBAR_EL1`.
    pub vbar: u64,
    /// `CPACR_EL1`: FP/SIMD access for the guest.
    pub cpacr: u64,
    /// `SP_EL0`.
    pub sp_el0: u64,
    /// `SP_EL1`.
    pub sp_el1: u64,
    /// `ELR_EL1`.
    pub elr: u64,
    /// `SPSR_EL1`.
    pub spsr: u64,
    /// `ESR_EL1`.
    pub esr: u64,
    /// `FAR_EL1`.
    pub far: u64,
    /// `AFSR0_EL1`.
    pub afsr0: u64,
    /// `AFSR1_EL1`.
    pub afsr1: u64,
    /// `PAR_EL1`.
    pub par: u64,
    /// `TPIDR_EL0`.
    pub tpidr_el0: u64,
    /// `TPIDRRO_EL0`.
    pub tpidrro_el0: u64,
    /// `TPIDR_EL1`.
    pub tpidr_el1: u64,
    /// `CNTKCTL_EL1`.
    pub cntkctl: u64,
    /// `CNTV_CTL_EL0`: the guest's virtual timer.
    pub cntv_ctl: u64,
    /// `CNTV_CVAL_EL0`.
    pub cntv_cval: u64,
    /// `CSSELR_EL1`.
    pub csselr: u64,
    /// `SCTLR_EL1`: the guest's MMU and cache enables. Reset value is applied on entry.
    pub sctlr: u64,
    /// `TTBR0_EL1`.
    pub ttbr0: u64,
    /// `TTBR1_EL1`.
    pub ttbr1: u64,
    /// `TCR_EL1`.
    pub tcr: u64,
    /// `MAIR_EL1`.
    pub mair: u64,
    /// `AMAIR_EL1`.
    pub amair: u64,
    /// `CONTEXTIDR_EL1`.
    pub contextidr: u64,
}

/// FP/SIMD state (`V0`..`V31`, `FPSR`, `FPCR`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct FpRegs {
    /// `V0`..`V31`.
    pub v: [u128; 32],
    /// `FPSR`.
    pub fpsr: u64,
    /// `FPCR`.
    pub fpcr: u64,
}

/// Where a vCPU's FP/SIMD state may still be in a CPU's registers: the
/// arch layer's bookkeeping for switching it lazily
/// (`arch/aarch64/fp.rs`). Not part of the state: a reset value only costs
/// one reload, so any write of the context resets it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpHold {
    /// The copy of its state a CPU's registers may hold (0: none), unique
    /// over the hypervisor's life.
    pub token: u64,
    /// For how many more runs it is put on a CPU that holds its state with
    /// FP/SIMD enabled, untrapped: set by a run that trapped, counted down
    /// by each run that did not.
    pub eager: u8,
}

/// Everything needed to resume a vCPU on any physical CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct VcpuContext {
    /// General-purpose registers, PC and PSTATE.
    pub gp: GuestRegs,
    /// EL1/EL0 system registers.
    pub el1: El1Regs,
    /// FP/SIMD registers.
    pub fp: FpRegs,
}

impl VcpuContext {
    /// The architectural entry state of `specs/memory-map.md`: EL1h, MMU and
    /// caches off, `DAIF` masked, the given PC, SP and `x0`..`x3`, every other
    /// register zero.
    pub fn at_entry(entry: &VcpuEntry, sctlr_reset: u64) -> Self {
        let mut ctx = Self::default();
        ctx.gp.pc = entry.pc;
        ctx.gp.pstate = ENTRY_PSTATE;
        ctx.gp.x[..4].copy_from_slice(&entry.x);
        ctx.el1.sp_el1 = entry.sp;
        ctx.el1.sctlr = sctlr_reset;
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_state_is_el1h_masked() {
        let e = VcpuEntry {
            pc: 0x4008_0000,
            sp: 0x4100_0000,
            x: [1, 2, 3, 4],
        };
        let c = VcpuContext::at_entry(&e, 0x30d0_0800);
        assert_eq!(c.gp.pc, 0x4008_0000);
        assert_eq!(c.gp.pstate, 0x3c5);
        assert_eq!(&c.gp.x[..5], &[1, 2, 3, 4, 0]);
        assert_eq!(c.el1.sp_el1, 0x4100_0000);
        assert_eq!(c.el1.sctlr, 0x30d0_0800);
        assert_eq!(c.fp, FpRegs::default());
    }
}
