//! console-echo: connects its console device (`specs/console.md`), prints
//! a greeting through it, then reads lines typed on it (`console <Domain>`
//! in dom0's shell) and answers each with `echo: <line>`, forever.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::{StartInfo, console, println};

pv_guest_sdk::entry!(console_echo);

fn console_echo(si: &StartInfo) {
    if let Err(e) = console::connect() {
        println!("console-echo: FAIL connect: {e}");
        return;
    }
    println!(
        "console-echo: hello from domain {} on the console ring",
        si.domain_id().0
    );
    let mut line = [0u8; 128];
    loop {
        let n = console::read_line(&mut line);
        let text = core::str::from_utf8(&line[..n]).unwrap_or("<not UTF-8>");
        println!("echo: {text}");
    }
}
