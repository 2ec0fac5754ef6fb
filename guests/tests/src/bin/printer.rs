//! printer: a well-behaved guest that prints `printer: tick <n>` and yields
//! between ticks; `count=<n>` on its command line stops it after n ticks
//! (then it powers off), otherwise it prints forever.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(printer);

fn printer(si: &StartInfo) {
    let count = si.cmdline().get_u64("count");
    let mut n: u64 = 1;
    while count.is_none_or(|c| n <= c) {
        println!("printer: tick {n}");
        pv_guest_sdk::yield_now();
        n += 1;
    }
    println!("printer: done");
}
