//! Starting a secondary CPU by the device tree's "spin-table" enable method
//! (Linux Documentation/arch/arm64/booting.rst, "spin-table"; used by the
//! Raspberry Pi firmware's armstub): the CPU waits in firmware with its MMU off,
//! polling a 64-bit `cpu-release-addr` after each `wfe`; writing an entry
//! address there and sending an event releases it.
//!
//! Unlike PSCI CPU_ON, the method passes no argument, so the CPU cannot learn
//! its logical index from x0. It enters at [`spin_table_entry`], which loads
//! the index from [`SPIN_TABLE_CPU`] and continues at `secondary_entry`. One
//! CPU is released at a time (`smp` waits for each), so one variable suffices.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;

use super::cache::clean_to_poc;
use crate::addr::PhysAddr;
use crate::percpu::CpuIndex;

/// Logical index of the CPU being released; read by [`spin_table_entry`]
/// with its MMU and caches off, so it is cleaned to the point of coherency.
#[unsafe(no_mangle)]
static SPIN_TABLE_CPU: AtomicU64 = AtomicU64::new(0);

global_asm!(
    r#"
    .section .text.spin_table_entry, "ax"
    .global spin_table_entry
spin_table_entry:
    /* MMU off, PC-relative: the image is position independent. */
    adrp    x0, {cpu}
    ldr     x0, [x0, :lo12:{cpu}]
    b       secondary_entry
"#,
    cpu = sym SPIN_TABLE_CPU,
);

unsafe extern "C" {
    /// The trampoline above; only its address is used.
    static spin_table_entry: u8;
}

/// Releases the CPU spinning on `release_addr` into the hypervisor as logical
/// CPU `cpu`.
///
/// # Safety
/// `release_addr` must be the `cpu-release-addr` of a CPU still held by the
/// firmware's spin table (8-byte aligned, mapped), and no other CPU may be
/// between its release and its arrival in `secondary_entry`.
pub unsafe fn release(release_addr: PhysAddr, cpu: CpuIndex) {
    SPIN_TABLE_CPU.store(cpu.get() as u64, Ordering::Relaxed);
    clean_to_poc(SPIN_TABLE_CPU.as_ptr() as usize, 8);
    let entry = &raw const spin_table_entry as u64;
    let mailbox = release_addr.get() as *mut u64;
    // SAFETY: the caller's contract: `release_addr` is the CPU's mailbox,
    // aligned and mapped; the firmware reads it only after our `sev`.
    unsafe { mailbox.write_volatile(entry) };
    // The waiting CPU reads with its caches off: make both writes reach memory
    // before waking it (booting.rst asks for the clean to PoC).
    clean_to_poc(release_addr.get() as usize, 8);
    barrier::dsb(barrier::SY);
    aarch64_cpu::asm::sev();
}
