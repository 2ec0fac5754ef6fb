//! A guest's writes to its virtual-memory control registers, which
//! `HCR_EL2.TVM` traps (Arm ARM D24.2.76, HCR_EL2): `SCTLR_EL1`,
//! `TTBR0_EL1`, `TTBR1_EL1`, `TCR_EL1`, `ESR_EL1`, `FAR_EL1`, `AFSR0_EL1`,
//! `AFSR1_EL1`, `MAIR_EL1`, `AMAIR_EL1` and `CONTEXTIDR_EL1`.
//!
//! Why trap them: a PV guest writes most of them once, when it sets up its
//! stage 1, while a vCPU switch would otherwise read all of them back on
//! every switch. Done here on the guest's behalf, a write also goes into the
//! vCPU's context, so for the seven that nothing but the guest changes the
//! context is always current and `tern_save_el1` skips them (`ESR_EL1`,
//! `FAR_EL1` and the implementation-defined `AFSR*_EL1` may also change on
//! an exception taken to EL1, so they are still saved). A guest that
//! rewrites `TTBR0_EL1` on every process switch would pay a trap each time:
//! nothing of the kind runs on tern yet.

use aarch64_cpu::registers::{
    AFSR0_EL1, AFSR1_EL1, AMAIR_EL1, CONTEXTIDR_EL1, ESR_EL1, FAR_EL1, MAIR_EL1, SCTLR_EL1,
    TCR_EL1, TTBR0_EL1, TTBR1_EL1, Writeable,
};
use tock_registers::LocalRegisterCopy;

use super::sysreg::ISS_SYSREG;
use crate::vcpu::El1Regs;

/// A register's encoding past `op0` = 3, `op1` = 0 (every register here
/// has those): (`CRn`, `CRm`, `op2`), as Arm ARM D23 lists them.
type Encoding = (u64, u64, u64);

const SCTLR: Encoding = (1, 0, 0);
const TTBR0: Encoding = (2, 0, 0);
const TTBR1: Encoding = (2, 0, 1);
const TCR: Encoding = (2, 0, 2);
const AFSR0: Encoding = (5, 1, 0);
const AFSR1: Encoding = (5, 1, 1);
const ESR: Encoding = (5, 2, 0);
const FAR: Encoding = (6, 0, 0);
const MAIR: Encoding = (10, 2, 0);
const AMAIR: Encoding = (10, 3, 0);
const CONTEXTIDR: Encoding = (13, 0, 1);

/// `op0` and `op1` of every register above.
const OP0: u64 = 3;
const OP1: u64 = 0;

/// The value the trapped `msr` whose syndrome is `iss` writes, from the
/// vCPU's general registers `x` (Rt 31 is XZR).
pub fn value(iss: u64, x: &[u64; 31]) -> u64 {
    let iss = LocalRegisterCopy::<u64, ISS_SYSREG::Register>::new(iss);
    x.get(iss.read(ISS_SYSREG::RT) as usize)
        .copied()
        .unwrap_or(0)
}

/// Does the trapped `msr` whose syndrome is `iss` (`TrappedMsrMrs`),
/// writing `v`, for the vCPU whose EL1 registers are `el1`: writes the
/// register and, where the context keeps it, `el1`. False, changing
/// nothing, for anything else (a read, another register): the guest's own
/// fault.
pub fn write(iss: u64, v: u64, el1: &mut El1Regs) -> bool {
    let iss = LocalRegisterCopy::<u64, ISS_SYSREG::Register>::new(iss);
    if iss.matches_all(ISS_SYSREG::DIRECTION::Read)
        || iss.read(ISS_SYSREG::OP0) != OP0
        || iss.read(ISS_SYSREG::OP1) != OP1
    {
        return false;
    }
    let encoding = (
        iss.read(ISS_SYSREG::CRN),
        iss.read(ISS_SYSREG::CRM),
        iss.read(ISS_SYSREG::OP2),
    );
    match encoding {
        SCTLR => {
            SCTLR_EL1.set(v);
            el1.sctlr = v;
        }
        TTBR0 => {
            TTBR0_EL1.set(v);
            el1.ttbr0 = v;
        }
        TTBR1 => {
            TTBR1_EL1.set(v);
            el1.ttbr1 = v;
        }
        TCR => {
            TCR_EL1.set(v);
            el1.tcr = v;
        }
        MAIR => {
            MAIR_EL1.set(v);
            el1.mair = v;
        }
        AMAIR => {
            AMAIR_EL1.set(v);
            el1.amair = v;
        }
        CONTEXTIDR => {
            CONTEXTIDR_EL1.set(v);
            el1.contextidr = v;
        }
        // Saved with the switch anyway.
        AFSR0 => AFSR0_EL1.set(v),
        AFSR1 => AFSR1_EL1.set(v),
        ESR => ESR_EL1.set(v),
        FAR => FAR_EL1.set(v),
        _ => return false,
    }
    true
}
