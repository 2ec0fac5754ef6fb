//! hostile-write-domu: stores to an IPA outside its RAM, aiming at another
//! domU's memory. A correct stage 2 faults and the domain crashes.
//!
//! The target is `addr=` from the command line, by default 32 MiB past the
//! guest's RAM (host RAM on QEMU `virt` where other domains' frames live, see
//! `test_guests::past_ram`).
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(hostile);

fn hostile(si: &StartInfo) {
    let addr = test_guests::target(si, test_guests::past_ram(si) + 0x200_0000);
    println!("hostile-write-domu: writing IPA {addr:#x}");
    // SAFETY: deliberately not sound: `addr` lies outside this guest's RAM and
    // the point of this guest is that the hypervisor stops it before the store
    // lands.
    unsafe { core::ptr::write_volatile(addr as usize as *mut u64, 0xdead_beef_dead_beef) };
    test_guests::still_alive("hostile-write-domu");
}
