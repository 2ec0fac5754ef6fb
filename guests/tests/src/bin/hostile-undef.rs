//! hostile-undef: executes a permanently undefined instruction (`udf`).
//!
//! The exception is taken at the guest's own EL1, so the SDK's vector table
//! reports it ("unexpected synchronous exception from EL1: Unknown ...") and
//! shuts the domain down with reason `crash`; the hypervisor must be
//! unaffected.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(hostile);

fn hostile(_si: &StartInfo) {
    println!("hostile-undef: executing udf #0");
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `udf` raises an undefined-instruction exception; it touches no
    // memory or registers, and the SDK's handler never returns here.
    unsafe {
        core::arch::asm!("udf #0", options(nomem, nostack))
    };
    test_guests::still_alive("hostile-undef");
}
