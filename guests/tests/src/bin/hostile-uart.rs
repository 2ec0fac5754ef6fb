//! hostile-uart: writes a byte to the hypervisor's PL011 (QEMU `virt`:
//! 0x0900_0000, or `addr=`). The device window is unmapped for a domU, so this
//! must fault.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(hostile);

fn hostile(si: &StartInfo) {
    let base = test_guests::target(si, test_guests::QEMU_VIRT_UART);
    println!("hostile-uart: writing to UARTDR at {base:#x}");
    // SAFETY: deliberately not sound: the UART is not in this guest's memory
    // map and the hypervisor must stop it before the store lands. UARTDR is
    // at offset 0 (PL011 TRM 3.3.1).
    unsafe { core::ptr::write_volatile(base as usize as *mut u32, u32::from(b'!')) };
    test_guests::still_alive("hostile-uart");
}
