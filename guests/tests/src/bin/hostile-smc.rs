//! hostile-smc: asks the secure firmware to power the machine off (PSCI
//! `SYSTEM_OFF` through `smc`).
//!
//! specs/hypercalls.md: an `smc` from a guest is trapped by the hypervisor,
//! returns -1 (NOT_SUPPORTED) in `x0`, and execution resumes after it. So,
//! unlike the other hostile guests, surviving is the expected outcome here:
//! the guest prints `hostile-smc: PASS` if `x0` is -1 and the machine is still
//! up, `hostile-smc: FAIL ...` otherwise. A hypervisor that forwards the call
//! powers the machine off and the line never appears.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(hostile);

/// PSCI `SYSTEM_OFF` (Arm DEN0022, 5.1): SMC32 fast call 0x8400_0008.
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
/// SMCCC `NOT_SUPPORTED`.
const NOT_SUPPORTED: u64 = -1i64 as u64;

fn hostile(_si: &StartInfo) {
    println!("hostile-smc: smc #0 PSCI SYSTEM_OFF");
    let x0 = smc(PSCI_SYSTEM_OFF);
    if x0 == NOT_SUPPORTED {
        println!("hostile-smc: PASS (smc returned NOT_SUPPORTED)");
    } else {
        println!("hostile-smc: FAIL smc returned {x0:#x}, expected -1");
    }
}

#[cfg(target_arch = "aarch64")]
fn smc(function: u64) -> u64 {
    let x0;
    // SAFETY: `smc` traps to the hypervisor, which answers in x0 and must
    // not forward it. SMCCC lets the callee clobber x0..x17, all declared.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") function => x0,
            lateout("x1") _, lateout("x2") _, lateout("x3") _,
            lateout("x4") _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
            lateout("x8") _, lateout("x9") _, lateout("x10") _, lateout("x11") _,
            lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
            lateout("x16") _, lateout("x17") _,
            options(nostack),
        );
    }
    x0
}

/// Host stand-in: there is no `smc` to issue.
#[cfg(not(target_arch = "aarch64"))]
fn smc(_function: u64) -> u64 {
    NOT_SUPPORTED
}
