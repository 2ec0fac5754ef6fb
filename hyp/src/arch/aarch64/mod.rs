//! AArch64 implementation of the arch layer.
//!
//! Boot flow: `entry.rs` (Image header, relocation, bss, stack; EL3 pen) →
//! `early.rs` (EL3 hand-off via `el3.rs`, DTB, identity map via `mmu.rs`,
//! vectors) → `crate::boot::primary_main`. Secondaries: `secondary_entry`
//! (x0 = logical CPU index) → `early::secondary_early` → `crate::boot::secondary_main`.

mod cache;
pub mod cpu;
mod dom0_boot;
mod early;
pub mod el3;
mod entry;
mod fp;
pub mod gic_sysreg;
pub mod guest;
pub mod mmu;
mod physmem;
mod pirq;
pub mod psci;
pub mod run;
pub mod spin_table;
mod sysreg;
pub mod timer;
mod tlb;
pub mod trap;
pub mod vectors;
mod vmctl;

pub use cpu::{MAX_CPUS, entered_at_el3, halt, release_from_pen, uptime};
pub use early::{image_range, secondary_entry_address};
pub use vectors::TrapFrame;

/// The logical index of the calling CPU, if it has one yet (TPIDR_EL2 holds
/// index + 1, see `crate::percpu`).
pub fn cpu_index() -> Option<usize> {
    use aarch64_cpu::registers::{Readable, TPIDR_EL2};
    (TPIDR_EL2.get() as usize).checked_sub(1)
}

/// Prints `cpu <n> halted` and parks the calling CPU (other CPUs go on).
pub fn halt_this_cpu() -> ! {
    match cpu_index() {
        Some(n) => crate::logger::report(format_args!("cpu {n} halted\n")),
        None => crate::logger::report(format_args!("cpu ? halted\n")),
    }
    halt()
}
