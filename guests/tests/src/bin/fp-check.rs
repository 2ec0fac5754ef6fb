//! fp-check: checks that the hypervisor keeps each domain's FP/SIMD
//! registers to itself. Each round fills V0..V31 (both 64-bit lanes) and
//! FPCR's rounding mode with a pattern from this domain's `seed=` and the
//! round number, yields the CPU (another domain doing the same runs
//! meanwhile on a one-CPU machine), and counts the registers that changed;
//! three stage-1 control registers likewise (see `round`).
//! Prints `fp-check: PASS <n> rounds` or `fp-check: FAIL ...`, then powers
//! off. Run two or more at once with different seeds (tests/tests/sched.rs).
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(fp_check);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    r#"
    .arch_extension fp
    .arch_extension simd
    .text
    .balign 4
    /* x0 = pattern base; x1 = FPCR value. Fills V0..V31 and FPCR, yields
       (sched_op yield: x0 = function id in x2, x1 = 0), then answers in x0
       how many of the 64 lanes and FPCR differ from what was written.
       x9 is scratch (caller-saved).
       Saves what AAPCS64 makes callee-saved (x19, x20, x21, d8..d15). */
    .global fp_check_round
fp_check_round:
    stp x29, x30, [sp, #-96]!
    stp x19, x20, [sp, #16]
    stp d8, d9, [sp, #32]
    stp d10, d11, [sp, #48]
    stp d12, d13, [sp, #64]
    stp d14, d15, [sp, #80]
    str x21, [sp, #-16]!
    mov x19, x0
    mov x21, x1
    msr fpcr, x21
    add x10, x19, #0
    dup v0.2d, x10
    mvn x11, x10
    mov v0.d[1], x11
    add x10, x19, #1
    dup v1.2d, x10
    mvn x11, x10
    mov v1.d[1], x11
    add x10, x19, #2
    dup v2.2d, x10
    mvn x11, x10
    mov v2.d[1], x11
    add x10, x19, #3
    dup v3.2d, x10
    mvn x11, x10
    mov v3.d[1], x11
    add x10, x19, #4
    dup v4.2d, x10
    mvn x11, x10
    mov v4.d[1], x11
    add x10, x19, #5
    dup v5.2d, x10
    mvn x11, x10
    mov v5.d[1], x11
    add x10, x19, #6
    dup v6.2d, x10
    mvn x11, x10
    mov v6.d[1], x11
    add x10, x19, #7
    dup v7.2d, x10
    mvn x11, x10
    mov v7.d[1], x11
    add x10, x19, #8
    dup v8.2d, x10
    mvn x11, x10
    mov v8.d[1], x11
    add x10, x19, #9
    dup v9.2d, x10
    mvn x11, x10
    mov v9.d[1], x11
    add x10, x19, #10
    dup v10.2d, x10
    mvn x11, x10
    mov v10.d[1], x11
    add x10, x19, #11
    dup v11.2d, x10
    mvn x11, x10
    mov v11.d[1], x11
    add x10, x19, #12
    dup v12.2d, x10
    mvn x11, x10
    mov v12.d[1], x11
    add x10, x19, #13
    dup v13.2d, x10
    mvn x11, x10
    mov v13.d[1], x11
    add x10, x19, #14
    dup v14.2d, x10
    mvn x11, x10
    mov v14.d[1], x11
    add x10, x19, #15
    dup v15.2d, x10
    mvn x11, x10
    mov v15.d[1], x11
    add x10, x19, #16
    dup v16.2d, x10
    mvn x11, x10
    mov v16.d[1], x11
    add x10, x19, #17
    dup v17.2d, x10
    mvn x11, x10
    mov v17.d[1], x11
    add x10, x19, #18
    dup v18.2d, x10
    mvn x11, x10
    mov v18.d[1], x11
    add x10, x19, #19
    dup v19.2d, x10
    mvn x11, x10
    mov v19.d[1], x11
    add x10, x19, #20
    dup v20.2d, x10
    mvn x11, x10
    mov v20.d[1], x11
    add x10, x19, #21
    dup v21.2d, x10
    mvn x11, x10
    mov v21.d[1], x11
    add x10, x19, #22
    dup v22.2d, x10
    mvn x11, x10
    mov v22.d[1], x11
    add x10, x19, #23
    dup v23.2d, x10
    mvn x11, x10
    mov v23.d[1], x11
    add x10, x19, #24
    dup v24.2d, x10
    mvn x11, x10
    mov v24.d[1], x11
    add x10, x19, #25
    dup v25.2d, x10
    mvn x11, x10
    mov v25.d[1], x11
    add x10, x19, #26
    dup v26.2d, x10
    mvn x11, x10
    mov v26.d[1], x11
    add x10, x19, #27
    dup v27.2d, x10
    mvn x11, x10
    mov v27.d[1], x11
    add x10, x19, #28
    dup v28.2d, x10
    mvn x11, x10
    mov v28.d[1], x11
    add x10, x19, #29
    dup v29.2d, x10
    mvn x11, x10
    mov v29.d[1], x11
    add x10, x19, #30
    dup v30.2d, x10
    mvn x11, x10
    mov v30.d[1], x11
    add x10, x19, #31
    dup v31.2d, x10
    mvn x11, x10
    mov v31.d[1], x11
    mov x9, x2
    mov x0, x2
    mov x1, #0
    mov x2, #0
    mov x3, #0
    mov x4, #0
    mov x5, #0
    mov x6, #0
    hvc #0
    /* The first FP/SIMD access after the yield (the lazy-FP trap when
       another domain ran meanwhile) with a call's id in x0: the vector
       tests x0 before the syndrome and takes such a trap the long way,
       which once crashed the guest. */
    mov x0, x9
    mov x20, #0
    add x10, x19, #0
    mvn x11, x10
    umov x12, v0.d[0]
    umov x13, v0.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #1
    mvn x11, x10
    umov x12, v1.d[0]
    umov x13, v1.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #2
    mvn x11, x10
    umov x12, v2.d[0]
    umov x13, v2.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #3
    mvn x11, x10
    umov x12, v3.d[0]
    umov x13, v3.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #4
    mvn x11, x10
    umov x12, v4.d[0]
    umov x13, v4.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #5
    mvn x11, x10
    umov x12, v5.d[0]
    umov x13, v5.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #6
    mvn x11, x10
    umov x12, v6.d[0]
    umov x13, v6.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #7
    mvn x11, x10
    umov x12, v7.d[0]
    umov x13, v7.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #8
    mvn x11, x10
    umov x12, v8.d[0]
    umov x13, v8.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #9
    mvn x11, x10
    umov x12, v9.d[0]
    umov x13, v9.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #10
    mvn x11, x10
    umov x12, v10.d[0]
    umov x13, v10.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #11
    mvn x11, x10
    umov x12, v11.d[0]
    umov x13, v11.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #12
    mvn x11, x10
    umov x12, v12.d[0]
    umov x13, v12.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #13
    mvn x11, x10
    umov x12, v13.d[0]
    umov x13, v13.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #14
    mvn x11, x10
    umov x12, v14.d[0]
    umov x13, v14.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #15
    mvn x11, x10
    umov x12, v15.d[0]
    umov x13, v15.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #16
    mvn x11, x10
    umov x12, v16.d[0]
    umov x13, v16.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #17
    mvn x11, x10
    umov x12, v17.d[0]
    umov x13, v17.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #18
    mvn x11, x10
    umov x12, v18.d[0]
    umov x13, v18.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #19
    mvn x11, x10
    umov x12, v19.d[0]
    umov x13, v19.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #20
    mvn x11, x10
    umov x12, v20.d[0]
    umov x13, v20.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #21
    mvn x11, x10
    umov x12, v21.d[0]
    umov x13, v21.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #22
    mvn x11, x10
    umov x12, v22.d[0]
    umov x13, v22.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #23
    mvn x11, x10
    umov x12, v23.d[0]
    umov x13, v23.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #24
    mvn x11, x10
    umov x12, v24.d[0]
    umov x13, v24.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #25
    mvn x11, x10
    umov x12, v25.d[0]
    umov x13, v25.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #26
    mvn x11, x10
    umov x12, v26.d[0]
    umov x13, v26.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #27
    mvn x11, x10
    umov x12, v27.d[0]
    umov x13, v27.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #28
    mvn x11, x10
    umov x12, v28.d[0]
    umov x13, v28.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #29
    mvn x11, x10
    umov x12, v29.d[0]
    umov x13, v29.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #30
    mvn x11, x10
    umov x12, v30.d[0]
    umov x13, v30.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    add x10, x19, #31
    mvn x11, x10
    umov x12, v31.d[0]
    umov x13, v31.d[1]
    cmp x12, x10
    cinc x20, x20, ne
    cmp x13, x11
    cinc x20, x20, ne
    mrs x12, fpcr
    cmp x12, x21
    cinc x20, x20, ne
    mov x0, x20
    ldr x21, [sp], #16
    ldp d14, d15, [sp, #80]
    ldp d12, d13, [sp, #64]
    ldp d10, d11, [sp, #48]
    ldp d8, d9, [sp, #32]
    ldp x19, x20, [sp, #16]
    ldp x29, x30, [sp], #96
    ret
"#
);

#[cfg(target_arch = "aarch64")]
unsafe extern "C" {
    fn fp_check_round(base: u64, fpcr: u64, yield_id: u64) -> u64;
}

/// FPCR's rounding-mode field (`RMode`, bits 23:22; Arm ARM C5.2.8): the
/// only FPCR bits every implementation keeps as written.
#[cfg(target_arch = "aarch64")]
const FPCR_RMODE_SHIFT: u32 = 22;

/// One round: the number of registers (lanes, and FPCR) that did not keep
/// their value across a yield. Three virtual-memory controls ride along
/// (`TTBR0_EL1`, `TTBR1_EL1`, `CONTEXTIDR_EL1`): the hypervisor traps the
/// guest's writes to them and keeps them in the vCPU's context instead of
/// reading them back at each switch, so a value lost there shows here.
/// With stage 1 off they translate nothing, so any value is harmless.
#[cfg(target_arch = "aarch64")]
fn round(base: u64, rmode: u64) -> u64 {
    let id = u64::from(pv_guest_sdk::abi::call::SCHED_OP);
    // Table addresses in bits 47:12 (ASID 0), a 32-bit PROCID: what every
    // implementation keeps as written.
    let ttbr0 = (base >> 8) << 12 & 0xffff_ffff_f000;
    let ttbr1 = ttbr0 ^ 0x8000_0000_0000;
    let procid = (base >> 8) as u32 as u64;
    // SAFETY: with the guest's stage 1 off (SCTLR_EL1.M clear, as the SDK
    // runs) the translation table bases and the context id take no part in
    // any access: writing them changes nothing but their values.
    unsafe {
        core::arch::asm!(
            "msr ttbr0_el1, {0}",
            "msr ttbr1_el1, {1}",
            "msr contextidr_el1, {2}",
            "isb",
            in(reg) ttbr0,
            in(reg) ttbr1,
            in(reg) procid,
            options(nostack, preserves_flags)
        );
    }
    // SAFETY: `fp_check_round` follows AAPCS64 (restores the callee-saved
    // registers it uses) and touches only registers and its own stack frame;
    // the yield is a hypercall without memory arguments.
    let mut bad = unsafe { fp_check_round(base, rmode << FPCR_RMODE_SHIFT, id) };
    let (t0, t1, c): (u64, u64, u64);
    // SAFETY: reads of three of this vCPU's own system registers.
    unsafe {
        core::arch::asm!(
            "mrs {0}, ttbr0_el1",
            "mrs {1}, ttbr1_el1",
            "mrs {2}, contextidr_el1",
            out(reg) t0,
            out(reg) t1,
            out(reg) c,
            options(nomem, nostack, preserves_flags)
        );
    }
    bad += u64::from(t0 != ttbr0) + u64::from(t1 != ttbr1) + u64::from(c != procid);
    bad
}

#[cfg(not(target_arch = "aarch64"))]
fn round(_base: u64, _rmode: u64) -> u64 {
    0
}

fn fp_check(si: &StartInfo) {
    let seed = si.cmdline().get_u64("seed").unwrap_or(1);
    let rounds = si.cmdline().get_u64("rounds").unwrap_or(200);
    for r in 0..rounds {
        // Distinct per domain and per round: the seed in the top half.
        let base = seed << 32 | r << 8;
        let bad = round(base, (seed + r) % 4);
        if bad != 0 {
            println!("fp-check: FAIL round {r}: {bad} registers changed across a yield");
            return;
        }
    }
    println!("fp-check: PASS {rounds} rounds");
}
