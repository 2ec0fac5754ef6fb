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
//!   descriptors, a frame from a MAC not its own, an impossible ring index)
//!   is refused, dropped (anti-spoofing) and closed, and dom0 keeps serving
//!   the other two.
//! - NAT: a domain on `nat0` takes an address of 10.0.3.0/24 from dom0's
//!   DHCP server there and connects to 10.0.2.2:<port>, which QEMU user
//!   networking maps to the host's 127.0.0.1, where this test listens and
//!   echoes; dom0 translates the flow to its own uplink address.
//! - The demo's disk: the echo guest counts its boots on its disk, and a
//!   second boot from the same image shows the count gone up.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tern_tests::{Qemu, echo_round_trip, free_port, image, re, target_dir};

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
    client_passes_with(vm, CLIENT_BYTES);
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

/// A zeroed disk image of `mib` MiB named for this test, removed when
/// dropped (as `scripts/run.sh` makes `demo-disk.img`).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, mib: u64) -> Self {
        let path = std::env::temp_dir().join(format!("tern-net-{}-{name}", std::process::id()));
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(mib << 20))
            .unwrap();
        Scratch(path)
    }

    /// QEMU arguments attaching it as a virtio disk.
    fn args(&self) -> [String; 4] {
        [
            "-drive".into(),
            format!("file={},if=none,format=raw,id=d0", self.0.display()),
            "-device".into(),
            "virtio-blk-device,drive=d0".into(),
        ]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What `scripts/run.sh` boots: the default bundle, the echo guest started,
/// `disk` as its disk (vda) with the guest library after it (vdb, read-only)
/// and (with `port`) a NIC with 127.0.0.1:`port` forwarded to its TCP port 7.
/// The disks go on the command line in run.sh's order, last first (QEMU's
/// virt board hands out virtio transports from the top address down, and
/// dom0 names disks by ascending address): with the order wrong the echo
/// guest's disk would be the read-only library and its boot count fail.
fn boot_demo(disk: &Scratch, port: Option<u16>) -> Qemu {
    let lib = image("library.img").unwrap();
    let mut b = Qemu::builder()
        .smp(2)
        .append("-- dom0.start=echo")
        .args([
            "-drive".to_string(),
            format!(
                "file={},if=none,format=raw,readonly=on,id=lib",
                lib.display()
            ),
            "-device".to_string(),
            "virtio-blk-device,drive=lib".to_string(),
        ])
        .args(disk.args())
        .fail_on("echo: FAIL")
        .fail_on("echo: disk xvda: ");
    if let Some(port) = port {
        b = b.args([
            "-netdev".to_string(),
            format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.100:7"),
            "-device".to_string(),
            "virtio-net-device,netdev=n0".to_string(),
        ]);
    }
    b.spawn().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_host_reaches_a_domains_echo_server_through_the_nic() {
    const BYTES: usize = 256 * 1024;
    const CHUNK: usize = 4096;
    let port = free_port();
    // What scripts/run.sh does, on a free port and a fresh disk.
    let disk = Scratch::new("echo", 8);
    let mut vm = boot_demo(&disk, Some(port));
    vm.expect("dom0: netback: br0 up, uplink virtio-net", STEP)
        .unwrap();
    vm.expect("[echo] echo: disk xvda 8 MiB, boot #1", STEP)
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
                re(r"net-hostile: PASS unmapped ring refused, 4 bad descriptors answered -1, 2 good sent, a spoofed source MAC answered -2"),
                re(r"dom0: netback: vif1\.0: dropping frames whose source is not its MAC"),
                re(r"net-client: PASS sent (\d+) bytes, (\d+) echoed back intact"),
                re(r"dom0: domain net-client \(3\) exited: poweroff"),
            ],
            STEP,
        )
        .unwrap();
    assert_eq!(m[4].group(1).parse::<usize>().unwrap(), CLIENT_BYTES);
    assert_eq!(m[4].group(2).parse::<usize>().unwrap(), CLIENT_BYTES);
}

#[test]
fn the_echo_guest_counts_its_boots_on_its_disk() {
    let disk = Scratch::new("count", 8);
    for boot in 1..=2 {
        let mut vm = boot_demo(&disk, None);
        vm.expect(
            format!("[echo] echo: disk xvda 8 MiB, boot #{boot}").as_str(),
            STEP,
        )
        .unwrap();
        // Serving: the counter was written and flushed before this line.
        vm.expect("[echo] echo: listening on 10.0.2.100:7", STEP)
            .unwrap();
    }
    let bytes = std::fs::read(&disk.0).unwrap();
    assert_eq!(&bytes[..8], b"ternboot");
    assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 2);
}

/// Packs dom0, the `guests` (built bins) and `configs` (name, text) into
/// `bundle-<name>.cpio` under the target directory, with `tern-pack`.
fn bundle(name: &str, guests: &[&str], configs: &[(&str, String)]) -> PathBuf {
    let dir = target_dir().join("net-test");
    std::fs::create_dir_all(&dir).unwrap();
    let bins = target_dir().join("aarch64-unknown-none/release");
    let pack = target_dir().join("release/tern-pack");
    let arg = |module: &str, path: &Path| {
        assert!(
            path.is_file(),
            "{} is missing: run scripts/build.sh",
            path.display()
        );
        format!("{module}={}", path.display())
    };
    let out = dir.join(format!("bundle-{name}.cpio"));
    let mut cmd = Command::new(&pack);
    cmd.arg("bundle").arg("-o").arg(&out);
    for g in ["dom0"].iter().chain(guests) {
        cmd.arg(arg(g, &bins.join(g)));
    }
    for (file, text) in configs {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        cmd.arg(arg(file, &path));
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "tern-pack: {status:?}");
    out
}

#[test]
fn a_domain_on_nat0_reaches_the_host_through_dom0s_address() {
    const BYTES: usize = 64 * 1024;
    // The host end: an echo server on 127.0.0.1 only.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let (mut buf, mut total) = (vec![0u8; 4096], 0usize);
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return (total, peer.ip());
            }
            s.write_all(&buf[..n]).unwrap();
            total += n;
        }
    });
    let config = format!(
        "name = \"nat-client\"\nmemory = 4\nimage = \"net-client\"\n\
         cmdline = \"ip=dhcp peer=10.0.2.2 port={port} bytes={BYTES}\"\n\
         vif = [\"bridge=nat0\"]\n"
    );
    let initrd = bundle("nat", &["net-client"], &[("nat-client.toml", config)]);
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(initrd)
        .args([
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-device,netdev=n0",
        ])
        .fail_on("net-client: FAIL")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect_all(
        &[
            re(r"dom0: netback: nat0 up, gateway 10\.0\.3\.1/24, NAT through the uplink"),
            re(r"dom0: net: 10\.0\.2\.15/24 on br0 \(dhcp\)"),
            // dom0's DHCP server on nat0 gave the first address of its pool.
            re(r"net-client: dhcp 10\.0\.3\.100/24 via 10\.0\.3\.1"),
        ],
        STEP,
    )
    .unwrap();
    client_passes_with(&mut vm, BYTES);
    let (echoed, peer) = server.join().unwrap();
    assert_eq!(echoed, BYTES);
    // QEMU's user networking connected from the host's loopback.
    assert_eq!(peer, IpAddr::V4(Ipv4Addr::LOCALHOST));
    vm.expect("[dom0] dom0: domain nat-client (1) exited: poweroff", STEP)
        .unwrap();
}

/// The client's PASS line for `bytes` bytes.
fn client_passes_with(vm: &mut Qemu, bytes: usize) {
    let m = vm
        .expect(
            re(r"net-client: PASS sent (\d+) bytes, (\d+) echoed back intact"),
            STEP,
        )
        .unwrap();
    assert_eq!(m.group(1).parse::<usize>().unwrap(), bytes);
    assert_eq!(m.group(2).parse::<usize>().unwrap(), bytes);
}
