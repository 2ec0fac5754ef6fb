//! lifecycle: the guest of dom0's life-cycle test (crash policy, shutdown
//! and reboot). By `mode=` on its command line:
//! - `crash`: says it is up, then loads from an IPA past its RAM: the
//!   hypervisor crashes it at once (a stage-2 data abort), so dom0's
//!   `on_crash` policy decides what happens next;
//! - `idle` (default): waits for dom0 to ask it to shut down through the
//!   configuration store (`control/shutdown`, dom0's `shutdown` and `reboot`
//!   verbs) and honours the request with `sched_op shutdown` of that reason;
//! - `deaf`: connects to the store but ignores every request (for the
//!   fallback of `shutdown -w -F`).
//!
//! Prints `lifecycle: <name> (domain <id>) ...` lines the QEMU test matches.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::store::Store;
use pv_guest_sdk::{StartInfo, println, time};

pv_guest_sdk::entry!(lifecycle);

fn lifecycle(si: &StartInfo) {
    let (name, id) = (si.name(), si.domain_id().0);
    let mode = si.cmdline().get("mode").unwrap_or("idle");
    if mode == "crash" {
        let addr = test_guests::past_ram(si) + 0x100_0000;
        println!("lifecycle: {name} (domain {id}) up; crashing");
        // SAFETY: deliberately not sound: `addr` lies outside this guest's
        // RAM, so the hypervisor stops the domain before the load completes.
        let value = unsafe { core::ptr::read_volatile(addr as usize as *const u64) };
        println!("lifecycle: {name} read {value:#x}");
        test_guests::still_alive("lifecycle");
    }
    let mut store = match Store::connect() {
        Ok(s) => s,
        Err(e) => return println!("lifecycle: {name} FAIL store: {e}"),
    };
    if mode == "deaf" {
        println!("lifecycle: {name} (domain {id}) up; ignoring shutdown requests");
        loop {
            time::sleep_ms(60_000);
        }
    }
    println!("lifecycle: {name} (domain {id}) waiting for a shutdown request");
    match store.wait_shutdown_request(None) {
        Ok(Some(reason)) => {
            println!(
                "lifecycle: {name} (domain {id}) asked to {}: shutting down",
                reason.name()
            );
            pv_guest_sdk::shutdown(reason);
        }
        Ok(None) => println!("lifecycle: {name} FAIL no request"),
        Err(e) => println!("lifecycle: {name} FAIL waiting for a request: {e}"),
    }
}
