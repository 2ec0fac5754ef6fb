//! The only AArch64 assembly of the SDK: the boot entry `_start`, the EL1
//! vector table and the `hvc` instruction.
//!
//! Entry state (docs/architecture.md, "Guest-physical memory map"): EL1h, MMU
//! and caches off, DAIF masked, `x0` = IPA of the start-info page, `x1` = RAM
//! size, PC = ELF entry. With the MMU off VA == IPA, so symbol addresses taken
//! with `adrp`/`add` are the IPAs the linker script placed them at.

use aarch64_cpu::registers::CPACR_EL1;
use core::arch::{asm, global_asm};

// `_start` lives in `.text.boot`, which the SDK's linker script keeps first at
// the image's link address, so the ELF entry is the first byte of text.
//
// Order matters: FP/SIMD must be enabled before the first Rust instruction
// (the aarch64-unknown-none target has NEON on, so `memcpy` and friends may
// use q registers), and the stack and bss must be ready before Rust runs.
// x0/x1 (start info, RAM size) are left untouched until the call into Rust.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
    .type _start, %function
_start:
    // FP/SIMD: no trapping at EL1/EL0 (Arm ARM D19.2.30, CPACR_EL1.FPEN).
    mov     x9, #{fpen}
    msr     cpacr_el1, x9
    // Our own vector table, so a stray exception is reported, not a silent hang.
    adrp    x9, __pv_vectors
    add     x9, x9, :lo12:__pv_vectors
    msr     vbar_el1, x9
    isb
    // The boot stack is the RAM below the image (linker script).
    adrp    x9, __pv_stack_top
    add     x9, x9, :lo12:__pv_stack_top
    mov     sp, x9
    // Clear bss: the hypervisor's ELF loader zero-fills memsz > filesz too, but
    // a guest must not depend on how it was loaded. Bounds are 16-aligned by
    // the linker script.
    adrp    x9, __pv_bss_start
    add     x9, x9, :lo12:__pv_bss_start
    adrp    x10, __pv_bss_end
    add     x10, x10, :lo12:__pv_bss_end
1:  cmp     x9, x10
    b.hs    2f
    stp     xzr, xzr, [x9], #16
    b       1b
2:  mov     x29, xzr
    mov     x30, xzr
    bl      __pv_rust_start
    // __pv_rust_start never returns; if it did, park the vCPU.
3:  wfi
    b       3b
    .size _start, . - _start

    // EL1 vector table (Arm ARM D1.10.2): 16 entries of 0x80 bytes, 2 KiB
    // aligned. Each entry passes its index to the common handler.
    .section .text.pv_vectors, "ax"
    .balign 0x800
    .global __pv_vectors
__pv_vectors:
    .irp idx, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 0x80
    mov     x0, #\idx
    b       __pv_vector_common
    .endr

__pv_vector_common:
    // Any exception is fatal for an SDK guest. Switch to a dedicated stack so a
    // blown stack can still be reported.
    adrp    x9, __pv_exception_stack_top
    add     x9, x9, :lo12:__pv_exception_stack_top
    mov     sp, x9
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      __pv_rust_exception
4:  wfi
    b       4b
"#,
    fpen = const CPACR_EL1::FPEN::TrapNothing.value,
);

/// Issues `hvc #0` with the function id in `x0` and arguments in `x1`..`x6`,
/// returning `x0`..`x3`.
///
/// The calling convention (specs/hypercalls.md) preserves `x4`..`x30` and SP,
/// so only `x0`..`x3` are declared clobbered; `x4`..`x6` are inputs only.
#[inline(always)]
pub fn hvc(id: u64, args: [u64; 6]) -> [u64; 4] {
    let (r0, r1, r2, r3);
    // SAFETY: `hvc #0` traps to the hypervisor, which only reads the argument
    // registers and writes x0..x3 (declared below). Any guest memory the call
    // reads or writes is named by IPA in the arguments; callers that pass
    // buffers keep them borrowed across this call, and the hypervisor
    // validates every address against the guest's own RAM.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") id => r0,
            inout("x1") args[0] => r1,
            inout("x2") args[1] => r2,
            inout("x3") args[2] => r3,
            in("x4") args[3],
            in("x5") args[4],
            in("x6") args[5],
            options(nostack),
        );
    }
    [r0, r1, r2, r3]
}

/// Parks the calling vCPU forever (used only when the hypervisor failed to
/// honour a shutdown request).
pub fn halt() -> ! {
    loop {
        // SAFETY: `wfi` only waits for an interrupt; it touches no memory or
        // registers.
        unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}
