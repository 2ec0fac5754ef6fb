//! Data-cache maintenance by virtual address, for memory that is read by
//! observers with their MMU (and so their caches) off: the EL3 pen mailboxes,
//! the page tables, the values secondaries load before their MMU is on.

use core::arch::asm;

use aarch64_cpu::asm::barrier;
use tock_registers::interfaces::Readable;

use super::sysreg::{CTR_EL0, CtrEl0};

/// Smallest data cache line in bytes: CTR_EL0.DminLine is log2 of the line
/// size in 4-byte words (Arm ARM D23.2, CTR_EL0).
fn dcache_line() -> usize {
    4 << CtrEl0.read(CTR_EL0::DminLine)
}

/// Cleans `[start, start + len)` to the point of coherency, so that a
/// non-cacheable reader sees what this CPU wrote (Arm ARM D7.5.9, `DC CVAC`).
pub fn clean_to_poc(start: usize, len: usize) {
    let line = dcache_line();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: DC CVAC on any address we can access only writes back dirty
        // data; it changes no memory contents and cannot fault on mapped memory
        // (the caller passes memory it owns).
        unsafe { asm!("dc cvac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    barrier::dsb(barrier::SY);
}

/// Cleans and invalidates `[start, start + len)` to the point of coherency
/// (`DC CIVAC`): used on memory written with the MMU off before it is read
/// through the caches, so no stale line from before can shadow it.
pub fn clean_invalidate_to_poc(start: usize, len: usize) {
    let line = dcache_line();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: as for `clean_to_poc`; clean+invalidate keeps memory contents
        // (dirty lines are written back before being dropped).
        unsafe { asm!("dc civac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    barrier::dsb(barrier::SY);
}
