//! The EL2 stage-1 identity map (VA == PA) and turning the MMU on.
//!
//! The tables are built by `crate::pagetable` in a static pool in `.bss`
//! ([`BootTables`]): the map is built on the boot CPU with the MMU off, before
//! the heap and frame allocator exist. RAM banks are Normal write-back inner-shareable, MMIO frames
//! the hypervisor uses are Device-nGnRE and execute-never; every other address
//! is unmapped, so a stray access faults.
//!
//! Secondaries program the same MAIR/TCR/TTBR0/SCTLR values, which the boot
//! CPU records (with its MMU still off, so they are in memory) in `Saved`.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use tock_registers::LocalRegisterCopy;
use tock_registers::interfaces::{Readable, Writeable};

use super::sysreg::{SCTLR_EL2_RES1, TCR_EL2_RES1};
use super::tlb;
use crate::addr::{PAGE_SIZE, PhysAddr, PhysRange, VirtAddr};
pub use crate::pagetable::MapError;
use crate::pagetable::{
    Attributes, EL2_STAGE1_LAYOUT, ENTRIES_PER_TABLE, El2Table, MAIR_EL2_VALUE, TableMemory,
};

/// Tables in the boot pool: a handful per RAM bank and MMIO frame is plenty.
const POOL_TABLES: usize = 32;

#[repr(C, align(4096))]
struct Pool(UnsafeCell<[[u64; ENTRIES_PER_TABLE]; POOL_TABLES]>);

// SAFETY: the pool is only accessed through `BootTables`, which exists once
// (guarded by `TAKEN`) on the boot CPU before any other CPU runs Rust code.
unsafe impl Sync for Pool {}

static POOL: Pool = Pool(UnsafeCell::new([[0; ENTRIES_PER_TABLE]; POOL_TABLES]));
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Table memory for the EL2 identity map: a bump allocator over [`POOL`].
/// Tables are never freed (the boot map only grows).
pub struct BootTables {
    used: usize,
}

impl BootTables {
    /// The pool, once; `None` on a second call.
    fn take() -> Option<Self> {
        (!TAKEN.swap(true, Ordering::Relaxed)).then_some(Self { used: 0 })
    }

    fn base() -> usize {
        POOL.0.get() as usize
    }

    /// Whether `pa` is the start of a table inside the pool.
    fn owns(pa: PhysAddr) -> bool {
        let off = (pa.get() as usize).wrapping_sub(Self::base());
        off < POOL_TABLES * PAGE_SIZE as usize && off.is_multiple_of(PAGE_SIZE as usize)
    }
}

impl TableMemory for BootTables {
    fn alloc_tables(&mut self, count: usize) -> Option<PhysAddr> {
        let first = self.used.next_multiple_of(count);
        if first + count > POOL_TABLES {
            return None;
        }
        self.used = first + count;
        Some(PhysAddr((Self::base() + first * PAGE_SIZE as usize) as u64))
    }

    fn free_tables(&mut self, _pa: PhysAddr, _count: usize) {}

    fn table(&mut self, pa: PhysAddr) -> &mut [u64; ENTRIES_PER_TABLE] {
        assert!(Self::owns(pa), "table {pa} outside the boot pool");
        // SAFETY: `pa` is a table-aligned address inside `POOL` (checked above),
        // which this `BootTables` owns exclusively; VA == PA (MMU off or
        // identity mapped); `&mut self` makes the borrow unique.
        unsafe { &mut *(pa.get() as *mut [u64; ENTRIES_PER_TABLE]) }
    }

    fn table_ref(&self, pa: PhysAddr) -> &[u64; ENTRIES_PER_TABLE] {
        assert!(Self::owns(pa), "table {pa} outside the boot pool");
        // SAFETY: as in `table`; shared borrow tied to `&self`.
        unsafe { &*(pa.get() as *const [u64; ENTRIES_PER_TABLE]) }
    }
}

fn map_identity(
    table: &mut El2Table,
    mem: &mut BootTables,
    range: PhysRange,
    attrs: Attributes,
) -> Result<(), MapError> {
    let start = range.start.align_down(PAGE_SIZE);
    let end = range.end.align_up(PAGE_SIZE);
    table.map(
        mem,
        VirtAddr(start.get()),
        start,
        end.get() - start.get(),
        attrs,
    )
}

static SAVED_MAIR: AtomicU64 = AtomicU64::new(0);
static SAVED_TCR: AtomicU64 = AtomicU64::new(0);
static SAVED_TTBR: AtomicU64 = AtomicU64::new(0);
static SAVED_SCTLR: AtomicU64 = AtomicU64::new(0);

/// Builds the identity map of `ram` (Normal) and `mmio` (Device) and turns the
/// MMU on for the calling (boot) CPU.
pub fn init_boot_cpu(ram: &[PhysRange], mmio: &[PhysRange]) -> Result<(), MapError> {
    let Some(mut mem) = BootTables::take() else {
        return Err(MapError::OutOfMemory);
    };
    let mut table = El2Table::new(&mut mem)?;
    // RAM is executable: the image is in it. (Splitting text RX / data RW is
    // possible later with `set_permissions`.)
    for bank in ram {
        map_identity(&mut table, &mut mem, *bank, Attributes::RAM_RWX)?;
    }
    for frame in mmio {
        map_identity(&mut table, &mut mem, *frame, Attributes::DEVICE_RW)?;
    }
    let (pool_start, pool_len) = (BootTables::base(), core::mem::size_of_val(&POOL));
    // `map` leaves the ordering of table writes to the caller (dsb below).
    // The tables were written with the MMU off; drop any stale cached copy of
    // them before the walker (which snoops the caches, TCR.IRGN0/ORGN0 = WB)
    // reads them (Arm ARM D8.2.9 / B2.5.9 on mismatched attributes).
    super::cache::clean_invalidate_to_poc(pool_start, pool_len);

    // PS: the output size is what the CPU implements, capped at 48 bits (52 needs
    // FEAT_LPA descriptors). ID_AA64MMFR0_EL1.PARange and TCR_EL2.PS share their
    // encoding (Arm ARM D23.2).
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange);
    let ps = pa_range.min(TCR_EL2::PS::Bits_48.value >> 16);
    let tcr = TCR_EL2::TG0::KiB_4
        + TCR_EL2::SH0::Inner
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::T0SZ.val(u64::from(EL2_STAGE1_LAYOUT.t0sz()))
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

    SAVED_MAIR.store(MAIR_EL2_VALUE, Ordering::Relaxed);
    SAVED_TCR.store(tcr, Ordering::Relaxed);
    SAVED_TTBR.store(table.root().get(), Ordering::Relaxed);
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
