//! The EL2 stage-1 identity map (VA == PA) and turning the MMU on.
//!
//! Tables come from a static pool in `.bss` (`TablePool`): the map is built on
//! the boot CPU with the MMU off, before the heap exists, and never changes
//! afterwards. RAM banks are Normal write-back inner-shareable, MMIO frames
//! the hypervisor uses are Device-nGnRE and execute-never; every other address
//! is unmapped, so a stray access faults.
//!
//! Secondaries program the same MAIR/TCR/TTBR0/SCTLR values, which the boot
//! CPU records (with its MMU still off, so they are in memory) in `Saved`.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use tock_registers::LocalRegisterCopy;
use tock_registers::interfaces::{Readable, Writeable};

use super::sysreg::{SCTLR_EL2_RES1, TCR_EL2_RES1};
use super::tlb;
use crate::addr::PhysRange;

pub use super::pagetable_stopgap::MapError;
use super::pagetable_stopgap::{IdentityMap, MemType};

/// Input-address size: 48 bits, so T0SZ = 64 - 48 and the walk starts at
/// level 0 with a 4K granule (Arm ARM D8.2, "Translation table walk").
const VA_BITS: u64 = 48;

static SAVED_MAIR: AtomicU64 = AtomicU64::new(0);
static SAVED_TCR: AtomicU64 = AtomicU64::new(0);
static SAVED_TTBR: AtomicU64 = AtomicU64::new(0);
static SAVED_SCTLR: AtomicU64 = AtomicU64::new(0);

/// Builds the identity map of `ram` (Normal) and `mmio` (Device) and turns the
/// MMU on for the calling (boot) CPU.
pub fn init_boot_cpu(ram: &[PhysRange], mmio: &[PhysRange]) -> Result<(), MapError> {
    let mut map = IdentityMap::new()?;
    for bank in ram {
        map.map(*bank, MemType::Normal)?;
    }
    for frame in mmio {
        map.map(*frame, MemType::Device)?;
    }
    let (pool_start, pool_len) = map.pool_range();
    // The tables were written with the MMU off; drop any stale cached copy of
    // them before the walker (which snoops the caches, TCR.IRGN0/ORGN0 = WB)
    // reads them (Arm ARM D8.2.9 / B2.5.9 on mismatched attributes).
    super::cache::clean_invalidate_to_poc(pool_start, pool_len);

    let mair = MAIR_EL2::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
        + MAIR_EL2::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
        + MAIR_EL2::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc;
    // PS: the output size is what the CPU implements, capped at 48 bits (52 needs
    // FEAT_LPA descriptors). ID_AA64MMFR0_EL1.PARange and TCR_EL2.PS share their
    // encoding (Arm ARM D23.2).
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange);
    let ps = pa_range.min(TCR_EL2::PS::Bits_48.value >> 16);
    let tcr = TCR_EL2::TG0::KiB_4
        + TCR_EL2::SH0::Inner
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::T0SZ.val(64 - VA_BITS)
        + TCR_EL2::PS.val(ps);
    let tcr = tcr.value | (TCR_EL2_RES1::RES1_23::SET + TCR_EL2_RES1::RES1_31::SET).value;
    let sctlr = (SCTLR_EL2::M::Enable
        + SCTLR_EL2::C::Cacheable
        + SCTLR_EL2::I::Cacheable
        + SCTLR_EL2::SA::Enable
        + SCTLR_EL2::A::Disable
        + SCTLR_EL2::EE::Little
        + SCTLR_EL2::WXN::Disable
        + SCTLR_EL2::EIS::SET
        + SCTLR_EL2::EOS::SET)
        .value
        | (SCTLR_EL2_RES1::RES1_4.val(0b11)
            + SCTLR_EL2_RES1::RES1_16::SET
            + SCTLR_EL2_RES1::RES1_18::SET
            + SCTLR_EL2_RES1::RES1_23::SET
            + SCTLR_EL2_RES1::RES1_28.val(0b11))
        .value;

    SAVED_MAIR.store(mair.value, Ordering::Relaxed);
    SAVED_TCR.store(tcr, Ordering::Relaxed);
    SAVED_TTBR.store(map.root() as u64, Ordering::Relaxed);
    SAVED_SCTLR.store(sctlr, Ordering::Relaxed);
    enable_this_cpu();
    Ok(())
}

/// Turns the MMU on for the calling CPU with the boot CPU's tables. Called by
/// secondaries (MMU off) and by the boot CPU itself.
pub fn enable_this_cpu() {
    MAIR_EL2.set(SAVED_MAIR.load(Ordering::Relaxed));
    TCR_EL2.set(SAVED_TCR.load(Ordering::Relaxed));
    TTBR0_EL2.set_baddr(SAVED_TTBR.load(Ordering::Relaxed));
    // Make the register writes and the tables visible to the walker, drop any
    // TLB entry left from before reset or by firmware, then enable translation
    // (Arm ARM D8.14 "TLB maintenance", K11 "Enabling the MMU").
    barrier::dsb(barrier::ISH);
    tlb::invalidate_el2_local();
    barrier::dsb(barrier::NSH);
    barrier::isb(barrier::SY);
    SCTLR_EL2.set(SAVED_SCTLR.load(Ordering::Relaxed));
    barrier::isb(barrier::SY);
}

/// Whether translation is on for this CPU.
pub fn is_enabled() -> bool {
    let sctlr = LocalRegisterCopy::<u64, SCTLR_EL2::Register>::new(SCTLR_EL2.get());
    sctlr.is_set(SCTLR_EL2::M)
}
