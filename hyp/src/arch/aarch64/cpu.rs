//! Per-CPU state the entry code needs before Rust runs: stacks, the EL3
//! holding pen's mailboxes, the logical CPU index; and small CPU helpers.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, MPIDR_EL1};
use tock_registers::interfaces::{Readable, Writeable};

/// Most CPUs `hyp` brings up; per-CPU arrays are sized by it.
pub const MAX_CPUS: usize = 8;
/// Size of each CPU's hypervisor stack.
pub const STACK_SIZE: usize = 64 * 1024;
/// Size of the small stack a pen CPU uses for its EL3 set-up only.
pub const PEN_STACK_SIZE: usize = 4096;

/// A block of per-CPU stacks. Only ever touched through `sp` by the entry code.
#[repr(C, align(16))]
pub struct Stacks<const N: usize>(UnsafeCell<[[u8; N]; MAX_CPUS]>);

// SAFETY: each CPU uses only its own slot, selected by the entry code from its
// logical index (or pen slot); Rust code never takes references into it.
unsafe impl<const N: usize> Sync for Stacks<N> {}

/// Hypervisor stacks, indexed by logical CPU; `secondary_entry` picks slot x0.
pub static STACKS: Stacks<STACK_SIZE> = Stacks(UnsafeCell::new([[0; STACK_SIZE]; MAX_CPUS]));
/// Stacks of CPUs in the EL3 holding pen, indexed by MPIDR.Aff0.
pub static PEN_STACKS: Stacks<PEN_STACK_SIZE> =
    Stacks(UnsafeCell::new([[0; PEN_STACK_SIZE]; MAX_CPUS]));

/// Set by the boot CPU once the image is relocated (and its EL3 set-up done):
/// pen CPUs wait for it. In `.data`, not `.bss`: pen CPUs read it while the boot
/// CPU may still be clearing bss.
#[unsafe(link_section = ".data.pen_ready")]
pub static PEN_READY: AtomicU32 = AtomicU32::new(0);
/// Per pen slot: the address to jump to (0 = keep waiting).
pub static PEN_ENTRY: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per pen slot: the value passed in x0 (the logical CPU index).
pub static PEN_CONTEXT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

static ENTERED_AT_EL3: AtomicBool = AtomicBool::new(false);

/// Whether `hyp` was entered at EL3 (and did the firmware's part itself). The
/// GIC code needs this: without firmware, the secure GIC set-up is ours.
pub fn entered_at_el3() -> bool {
    ENTERED_AT_EL3.load(Ordering::Relaxed)
}

pub(super) fn set_entered_at_el3() {
    ENTERED_AT_EL3.store(true, Ordering::Relaxed);
}

/// This CPU's MPIDR_EL1 affinity fields (Aff3..Aff0, as the DT `reg` of a CPU).
pub fn mpidr() -> u64 {
    MPIDR_EL1.read(MPIDR_EL1::Aff3) << 32
        | MPIDR_EL1.read(MPIDR_EL1::Aff2) << 16
        | MPIDR_EL1.read(MPIDR_EL1::Aff1) << 8
        | MPIDR_EL1.read(MPIDR_EL1::Aff0)
}

/// Time since reset as (seconds, microseconds), from the generic timer.
pub fn uptime() -> (u64, u32) {
    let freq = CNTFRQ_EL0.get();
    let ticks = CNTPCT_EL0.get();
    if freq == 0 {
        return (0, 0);
    }
    let secs = ticks / freq;
    let micros = (ticks % freq) * 1_000_000 / freq;
    (secs, micros as u32)
}

/// Parks this CPU for good: exceptions masked, waiting for events forever.
pub fn halt() -> ! {
    aarch64_cpu::registers::DAIF.write(
        aarch64_cpu::registers::DAIF::D::Masked
            + aarch64_cpu::registers::DAIF::A::Masked
            + aarch64_cpu::registers::DAIF::I::Masked
            + aarch64_cpu::registers::DAIF::F::Masked,
    );
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Releases a CPU waiting in the EL3 holding pen (only used when `hyp` was
/// entered at EL3, where there is no PSCI firmware): it jumps to
/// `secondary_entry` with x0 = `cpu`. `pen_slot` is its MPIDR.Aff0.
///
/// The pen CPU polls with its MMU off, so the mailbox is cleaned to the point
/// of coherency after writing (Arm ARM D7.5, data cache maintenance).
pub fn release_from_pen(pen_slot: usize, cpu: usize) -> bool {
    if pen_slot >= MAX_CPUS || cpu >= MAX_CPUS {
        return false;
    }
    PEN_CONTEXT[pen_slot].store(cpu as u64, Ordering::Relaxed);
    super::cache::clean_to_poc(PEN_CONTEXT[pen_slot].as_ptr() as usize, 8);
    barrier::dsb(barrier::SY);
    PEN_ENTRY[pen_slot].store(super::secondary_entry_address(), Ordering::Release);
    super::cache::clean_to_poc(PEN_ENTRY[pen_slot].as_ptr() as usize, 8);
    barrier::dsb(barrier::SY);
    aarch64_cpu::asm::sev();
    true
}

/// Reads the 64-bit word at `addr`, for the `hyp.test=fault` self-test: the
/// address is expected to be unmapped, so this normally ends in the EL2
/// exception report and never returns.
pub fn probe_read(addr: crate::addr::PhysAddr) -> u64 {
    // SAFETY: a read has no side effect on RAM; if `addr` is unmapped the
    // resulting data abort is reported and this CPU halts, which is the point.
    unsafe { core::ptr::read_volatile(addr.get() as *const u64) }
}
