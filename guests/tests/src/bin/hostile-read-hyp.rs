//! hostile-read-hyp: loads from an IPA outside its RAM where, physically, the
//! hypervisor's memory is. A correct stage 2 faults and the domain crashes.
//!
//! The guest cannot name the hypervisor's physical address directly: its own
//! RAM occupies the IPAs where QEMU `virt` has host RAM. So it reads the first
//! IPA past its RAM (see `test_guests::past_ram`), or `addr=` from its
//! command line when a test configuration knows a better target.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(hostile);

fn hostile(si: &StartInfo) {
    let addr = test_guests::target(si, test_guests::past_ram(si));
    println!("hostile-read-hyp: reading IPA {addr:#x}");
    // SAFETY: deliberately not sound: `addr` lies outside this guest's RAM and
    // the point of this guest is that the hypervisor stops it before the load
    // completes. If the load does complete, we only print the value.
    let value = unsafe { core::ptr::read_volatile(addr as usize as *const u64) };
    println!("hostile-read-hyp: read {value:#x}");
    test_guests::still_alive("hostile-read-hyp");
}
