//! The demo guest: says hello, shows the ABI it found, and powers off.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(demo_main);

fn demo_main(si: &StartInfo) {
    println!("hello from {} (domain {})", si.name(), si.domain_id().0);
    match pv_guest_sdk::version() {
        Ok(v) => println!(
            "{}: guest ABI {}, control ABI {}",
            si.name(),
            v.guest,
            v.control
        ),
        Err(e) => println!("{}: version call failed: {e}", si.name()),
    }
}
