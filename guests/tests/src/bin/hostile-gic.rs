//! hostile-gic: reads the GIC distributor (QEMU `virt`: 0x0800_0000, or
//! `addr=`). The device window is unmapped for a domU, so this must fault.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(hostile);

/// GICD_TYPER (GIC architecture spec, 12.9.38): harmless to read, and a
/// non-zero answer proves the distributor was reached.
const GICD_TYPER: u64 = 0x4;

fn hostile(si: &StartInfo) {
    let base = test_guests::target(si, test_guests::QEMU_VIRT_GICD);
    println!(
        "hostile-gic: reading GICD_TYPER at {:#x}",
        base + GICD_TYPER
    );
    // SAFETY: deliberately not sound: the GIC is not in this guest's memory
    // map and the hypervisor must stop it before the load completes.
    let typer = unsafe { core::ptr::read_volatile((base + GICD_TYPER) as usize as *const u32) };
    println!("hostile-gic: GICD_TYPER = {typer:#x}");
    test_guests::still_alive("hostile-gic");
}
