//! `dom0.net-test`: brings the first virtio-net NIC up (DHCP, else static),
//! runs a TCP echo server on port 7 for one connection, and prints
//! `dom0: net-test: PASS echoed <n> bytes` when the client has closed it,
//! or `dom0: net-test: FAIL ...`.

use pv_guest_sdk::println;
use pv_guest_sdk::time::Deadline;

use super::echo::{self, Served};
use crate::virtio::net::Net;

/// The echo port (RFC 862).
pub const ECHO_PORT: u16 = 7;
/// How long DHCP may take before the static address is used.
const DHCP_MS: u64 = 5_000;
/// How long the client has to connect, send and close.
const SERVE_MS: u64 = 60_000;

/// Runs the test on the first of `nics`; prints the result.
pub fn run(nics: &mut [Net]) {
    let Some(net) = nics.first_mut() else {
        return println!("dom0: net-test: FAIL no virtio-net NIC");
    };
    let mut stack = super::up(net, DHCP_MS);
    println!(
        "dom0: net-test: echo server listening on {}:{ECHO_PORT}",
        stack.address.address()
    );
    match echo::serve_one(&mut stack, net, ECHO_PORT, Deadline::after_ms(SERVE_MS).0) {
        Served::Closed { bytes } => println!("dom0: net-test: PASS echoed {bytes} bytes"),
        Served::TimedOut { bytes } => println!(
            "dom0: net-test: FAIL no closed connection within {SERVE_MS} ms ({bytes} bytes echoed)"
        ),
    }
}
