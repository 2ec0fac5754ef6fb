//! The only AArch64 assembly of the SDK: the boot entry `_start`, the EL1
//! vector table and the `hvc` instruction.
//!
//! Entry state (docs/architecture.md, "Guest-physical memory map"): EL1h, MMU
//! and caches off, DAIF masked, `x0` = IPA of the start-info page, `x1` = RAM
//! size, PC = ELF entry. With the MMU off VA == IPA, so symbol addresses taken
//! with `adrp`/`add` are the IPAs the linker script placed them at.

use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTVCT_EL0, CPACR_EL1, DAIF, MPIDR_EL1, ReadWriteable, Readable, TPIDR_EL1,
};
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
    // This vCPU's index, kept where `vcpu_index` reads it in one
    // instruction (see there).
    mrs     x9, mpidr_el1
    and     x9, x9, #{aff0}
    msr     tpidr_el1, x9
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

    // Entry of a secondary vCPU started by `vcpu::start` (`vcpu_op up`):
    // EL1h, MMU off, DAIF masked, SP = its own stack, x0 = the closure. It
    // needs what `_start` gives the boot vCPU, bss and stack aside: FP/SIMD
    // untrapped and our vector table (both per-vCPU registers).
    .global __pv_secondary_start
    .type __pv_secondary_start, %function
    .balign 4
__pv_secondary_start:
    mov     x9, #{fpen}
    msr     cpacr_el1, x9
    adrp    x9, __pv_vectors
    add     x9, x9, :lo12:__pv_vectors
    msr     vbar_el1, x9
    isb
    mrs     x9, mpidr_el1
    and     x9, x9, #{aff0}
    msr     tpidr_el1, x9
    mov     x29, xzr
    mov     x30, xzr
    bl      __pv_rust_secondary
    // __pv_rust_secondary never returns; if it did, park the vCPU.
5:  wfi
    b       5b
    .size __pv_secondary_start, . - __pv_secondary_start

    // EL1 vector table (Arm ARM D1.10.2): 16 entries of 0x80 bytes, 2 KiB
    // aligned. Each entry passes its index to the common handler.
    .section .text.pv_vectors, "ax"
    .balign 0x800
    .global __pv_vectors
__pv_vectors:
    .irp idx, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 0x80
    // IRQs from EL1 (entries 1 and 5, SP_EL0 or SP_EL1 in use) are the
    // event-channel upcall: handled and returned from. Anything else is
    // fatal.
    .if \idx == 1
    b       __pv_irq
    .elseif \idx == 5
    b       __pv_irq
    .else
    mov     x0, #\idx
    b       __pv_vector_common
    .endif
    .endr

    // The upcall: save everything the Rust handler may clobber (the
    // caller-saved x registers; all of V0..V31, since only the low halves of
    // V8..V15 are callee-saved; FPCR/FPSR; ELR/SPSR, which any exception
    // taken inside the handler would overwrite), call `__pv_rust_irq`,
    // restore, return. The frame is 720 bytes, a multiple of 16, so SP stays
    // aligned.
__pv_irq:
    sub     sp, sp, #720
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #160]
    mrs     x0, spsr_el1
    mrs     x1, fpcr
    stp     x0, x1, [sp, #176]
    mrs     x0, fpsr
    stp     x0, xzr, [sp, #192]
    stp     q0, q1, [sp, #208]
    stp     q2, q3, [sp, #240]
    stp     q4, q5, [sp, #272]
    stp     q6, q7, [sp, #304]
    stp     q8, q9, [sp, #336]
    stp     q10, q11, [sp, #368]
    stp     q12, q13, [sp, #400]
    stp     q14, q15, [sp, #432]
    stp     q16, q17, [sp, #464]
    stp     q18, q19, [sp, #496]
    stp     q20, q21, [sp, #528]
    stp     q22, q23, [sp, #560]
    stp     q24, q25, [sp, #592]
    stp     q26, q27, [sp, #624]
    stp     q28, q29, [sp, #656]
    stp     q30, q31, [sp, #688]
    bl      __pv_rust_irq
    ldp     q0, q1, [sp, #208]
    ldp     q2, q3, [sp, #240]
    ldp     q4, q5, [sp, #272]
    ldp     q6, q7, [sp, #304]
    ldp     q8, q9, [sp, #336]
    ldp     q10, q11, [sp, #368]
    ldp     q12, q13, [sp, #400]
    ldp     q14, q15, [sp, #432]
    ldp     q16, q17, [sp, #464]
    ldp     q18, q19, [sp, #496]
    ldp     q20, q21, [sp, #528]
    ldp     q22, q23, [sp, #560]
    ldp     q24, q25, [sp, #592]
    ldp     q26, q27, [sp, #624]
    ldp     q28, q29, [sp, #656]
    ldp     q30, q31, [sp, #688]
    ldp     x0, xzr, [sp, #192]
    msr     fpsr, x0
    ldp     x0, x1, [sp, #176]
    msr     spsr_el1, x0
    msr     fpcr, x1
    ldp     x30, x0, [sp, #160]
    msr     elr_el1, x0
    ldp     x18, x29, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #720
    eret

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
    aff0 = const MPIDR_EL1::Aff0.mask,
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

/// [`hvc`] for a call whose arguments end at `x2`: `x3`..`x6` go in as they
/// are, since the hypervisor ignores the registers a call does not list
/// (specs/hypercalls.md, "Arguments"), which saves zeroing them.
pub fn hvc_short(id: u64, args: [u64; 2]) -> [u64; 4] {
    let (r0, r1, r2, r3);
    // SAFETY: as for `hvc`: the hypervisor only reads the argument registers
    // and writes x0..x3 (declared below), and validates any IPA it is given.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") id => r0,
            inout("x1") args[0] => r1,
            inout("x2") args[1] => r2,
            out("x3") r3,
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

/// Runs `f` with IRQs (the event upcall) masked on this vCPU, restoring the
/// previous mask afterwards. Used where thread code shares state with the
/// upcall handler of the same vCPU.
pub fn without_irqs<R>(f: impl FnOnce() -> R) -> R {
    let saved = DAIF.get();
    // SAFETY: `msr daifset` sets PSTATE.I and nothing else. Not `nomem`: the
    // asm is a compiler barrier, so none of `f`'s memory accesses is moved
    // ahead of the mask.
    unsafe {
        asm!(
            "msr daifset, #{i}",
            i = const DAIFSET_I,
            options(nostack, preserves_flags)
        )
    };
    let r = f();
    // SAFETY: restores the mask bits read above; a compiler barrier too, so
    // none of `f`'s memory accesses is moved past the unmask.
    unsafe {
        asm!(
            "msr daif, {saved}",
            saved = in(reg) saved,
            options(nostack, preserves_flags)
        )
    };
    r
}

/// The `PSTATE.I` bit of the immediate of `msr daifset`/`daifclr` (Arm ARM,
/// "MSR (immediate)": D, A, I, F are its bits 3 to 0), not its place in
/// `DAIF`.
const DAIFSET_I: u32 = 1 << 1;

/// Unmasks IRQs: from now on the upcall interrupts whatever runs.
pub fn enable_irqs() {
    DAIF.modify(DAIF::I::Unmasked);
}

/// The virtual counter, `CNTVCT_EL0` (Arm ARM D11.2.4), read after an `isb`
/// so it is not sampled ahead of earlier instructions.
pub fn counter() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTVCT_EL0.get()
}

/// The counter frequency, `CNTFRQ_EL0`, in ticks per second.
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// This vCPU's index: the hypervisor puts it in `MPIDR_EL1.Aff0`
/// (specs/hypercalls.md, `vcpu_op up`), and both entry paths above copy it
/// to `TPIDR_EL1` (which the SDK uses for nothing else), so that the event
/// paths read it without masking it out of the affinity fields.
pub fn vcpu_index() -> usize {
    TPIDR_EL1.get() as usize
}

unsafe extern "C" {
    /// The secondary vCPU entry trampoline (assembly above).
    fn __pv_secondary_start();
}

/// The IPA where a secondary vCPU started by `vcpu::start` enters (VA ==
/// IPA with the MMU off).
pub fn secondary_entry() -> u64 {
    (__pv_secondary_start as *const ()) as usize as u64
}
