//! hostile-read-dom0: loads from an IPA outside its RAM, aiming at dom0's
//! memory. A correct stage 2 faults and the domain crashes.
//!
//! dom0's frames are host RAM the guest has no IPA for; the target is
//! `addr=` from the command line, by default 16 MiB past the guest's RAM
//! (host RAM on QEMU `virt` where the hypervisor allocates domains' frames,
//! see `test_guests::past_ram`).
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(hostile);

fn hostile(si: &StartInfo) {
    let addr = test_guests::target(si, test_guests::past_ram(si) + 0x100_0000);
    println!("hostile-read-dom0: reading IPA {addr:#x}");
    // SAFETY: deliberately not sound: `addr` lies outside this guest's RAM and
    // the point of this guest is that the hypervisor stops it before the load
    // completes. If the load does complete, we only print the value.
    let value = unsafe { core::ptr::read_volatile(addr as usize as *const u64) };
    println!("hostile-read-dom0: read {value:#x}");
    test_guests::still_alive("hostile-read-dom0");
}
