//! Virtual networks (issue 6, `specs/netif.md`): domains' interfaces
//! served by dom0's netback and joined by its learning bridge, with the
//! physical virtio-net NIC as the uplink.
//!
//! - Two domains exchange 1 MiB of TCP over the switch (no NIC at all):
//!   the client checks every byte that comes back and counts them.
//! - From the host, a connection to 127.0.0.1:<free port> reaches the echo
//!   guest of the default bundle through QEMU user networking's `hostfwd`
//!   (127.0.0.1 only: nothing leaves this machine), the NIC, the switch and
//!   netback, and gets its bytes back — the path of `scripts/run.sh`.
//! - A hostile front end (a ring reference it never granted, bad
//!   descriptors, an impossible ring index) is refused and closed, and dom0
//!   keeps serving the other two.

use std::time::Duration;
use tern_tests::{Qemu, echo_round_trip, free_port, image, re};

const STEP: Duration = Duration::from_secs(60);
/// What net-client sends (guests/tests/configs/net-client.toml).
const CLIENT_BYTES: usize = 1 << 20;

/// Boots `bundle` on 2 CPUs without a NIC.
fn boot(bundle: &str) -> Qemu {
    Qemu::builder()
        .smp(2)
        .initrd(image(bundle).unwrap())
        .fail_on("net-client: FAIL")
        .fail_on("net-hostile: FAIL")
        .fail_on("echo: FAIL")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The client's PASS line, checked for the byte count.
fn client_passes(vm: &mut Qemu) {
    let m = vm
        .expect(
            re(r"net-client: PASS sent (\d+) bytes, (\d+) echoed back intact"),
            STEP,
        )
        .unwrap();
    assert_eq!(m.group(1).parse::<usize>().unwrap(), CLIENT_BYTES);
    assert_eq!(m.group(2).parse::<usize>().unwrap(), CLIENT_BYTES);
}

#[test]
fn two_domains_exchange_tcp_over_the_switch() {
    let mut vm = boot("bundle-net.cpio");
    vm.expect_all(
        &[
            re(r"dom0: netback: vif(\d+)\.0 connected, mac 00:16:3e:00:0[0-9a-f]:00"),
            re(r"\[net-echo\] net-echo: listening on 10\.0\.2\.101:7"),
        ],
        STEP,
    )
    .unwrap();
    client_passes(&mut vm);
    vm.expect("[dom0] dom0: domain net-client (2) exited: poweroff", STEP)
        .unwrap();
}

#[test]
fn the_host_reaches_a_domains_echo_server_through_the_nic() {
    const BYTES: usize = 256 * 1024;
    const CHUNK: usize = 4096;
    let port = free_port();
    // What scripts/run.sh does, on a free port.
    let mut vm = Qemu::builder()
        .smp(2)
        .append("-- dom0.start=echo")
        .args([
            "-netdev".to_string(),
            format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.100:7"),
            "-device".to_string(),
            "virtio-net-device,netdev=n0".to_string(),
        ])
        .fail_on("echo: FAIL")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect("dom0: netback: br0 up, uplink virtio-net", STEP)
        .unwrap();
    vm.expect("[echo] echo: listening on 10.0.2.100:7", STEP)
        .unwrap();

    let data: Vec<u8> = (0..BYTES).map(|i| (i * 13 + i / 509) as u8).collect();
    let back = echo_round_trip(port, &data, CHUNK);
    assert!(back == data, "echoed bytes differ");
    vm.expect(
        format!("[echo] echo: connection 1 closed, {BYTES} bytes echoed").as_str(),
        STEP,
    )
    .unwrap();
    // The echo guest's second front end (its console ring) shares the
    // store connection its network device opened.
    assert!(
        !vm.lines()
            .iter()
            .any(|l| l.contains("console stays on the hypervisor")),
        "the console could not connect next to the network device"
    );
}

#[test]
fn a_hostile_front_end_is_refused_and_the_others_go_on() {
    let mut vm = boot("bundle-net-hostile.cpio");
    // The hostile domain and the other two run at once: any order.
    let m = vm
        .expect_all(
            &[
                re(r"dom0: netback: vif1\.0: cannot map tx ring \(gref 999999\): .*; closed"),
                re(r"dom0: netback: vif1\.0: peer claims more entries than the ring holds; closed"),
                re(r"net-hostile: PASS unmapped ring refused, 4 bad descriptors answered -1, 2 good sent"),
                re(r"net-client: PASS sent (\d+) bytes, (\d+) echoed back intact"),
                re(r"dom0: domain net-client \(3\) exited: poweroff"),
            ],
            STEP,
        )
        .unwrap();
    assert_eq!(m[3].group(1).parse::<usize>().unwrap(), CLIENT_BYTES);
    assert_eq!(m[3].group(2).parse::<usize>().unwrap(), CLIENT_BYTES);
}
