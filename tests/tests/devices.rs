//! dom0 drives QEMU `virt`'s virtio-mmio devices (issue 6): the hypervisor
//! gives it every virtio-mmio slot, dom0 finds the disk and the NIC QEMU
//! attached and uses them through `virtio-drivers`.
//!
//! - `dom0.blk-test` writes a pattern to 1 MiB and a few more sectors of a
//!   disk image, flushes and reads it back; the test recomputes the
//!   checksum dom0 prints and then checks the bytes in the image file, and
//!   that a read-only disk was neither written nor accepted a write.
//! - `dom0.net-test` runs a TCP echo server behind QEMU user networking; the
//!   test connects through `hostfwd` on 127.0.0.1 (nothing leaves this
//!   machine), sends 64 KiB and must get the same bytes back.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;
use tern_tests::disk::{SECTOR, fill_sector};
use tern_tests::{Qemu, echo_round_trip, free_port, re};

const STEP: Duration = Duration::from_secs(60);

fn pattern(first: u64, count: u64) -> Vec<u8> {
    let mut v = vec![0u8; count as usize * SECTOR];
    for (k, s) in v.chunks_exact_mut(SECTOR).enumerate() {
        fill_sector(first + k as u64, s);
    }
    v
}

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The regions dom0 writes on a disk of `capacity` sectors.
fn regions(capacity: u64) -> [(u64, u64); 3] {
    [(0, 2048), (4099, 5), (capacity - 8, 8)]
}

/// A scratch file named for this test run, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("tern-devices-{}-{name}", std::process::id()));
        fs::write(&path, bytes).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn disk_args(path: &std::path::Path, id: &str, read_only: bool) -> Vec<String> {
    let ro = if read_only { ",readonly=on" } else { "" };
    vec![
        "-drive".into(),
        format!("file={},if=none,format=raw,id={id}{ro}", path.display()),
        "-device".into(),
        format!("virtio-blk-device,drive={id}"),
    ]
}

#[test]
fn blk_test_writes_flushes_reads_back_and_the_image_holds_it() {
    const DISK_SECTORS: u64 = 16 * 1024; // 8 MiB
    const RO_FILL: u8 = 0xa5;
    let disk = Scratch::new("disk.img", &vec![0u8; DISK_SECTORS as usize * SECTOR]);
    let ro = Scratch::new("ro.img", &vec![RO_FILL; 1 << 20]);
    let mut vm = Qemu::builder()
        .smp(2)
        .append("-- dom0.blk-test")
        .args(disk_args(&disk.0, "d0", false))
        .args(disk_args(&ro.0, "d1", true))
        .fail_on("blk-test: FAIL")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect(
        re(r"dom0: virtio-blk 0x[0-9a-f]+ \(irq \d+\): 2048 sectors, read-only"),
        STEP,
    )
    .unwrap();
    vm.expect(
        re(r"dom0: blk-test: read-only disk 0x[0-9a-f]+ refused a write"),
        STEP,
    )
    .unwrap();
    let m = vm
        .expect(
            re(r"dom0: blk-test: PASS disk 0x[0-9a-f]+ \(interrupts\) capacity (\d+) sectors, wrote and read back (\d+) sectors, checksum ([0-9a-f]{16})"),
            STEP,
        )
        .unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");

    assert_eq!(m.group(1).parse::<u64>().unwrap(), DISK_SECTORS);
    let written: u64 = regions(DISK_SECTORS).iter().map(|r| r.1).sum();
    assert_eq!(m.group(2).parse::<u64>().unwrap(), written);
    assert!(written as usize * SECTOR > 1 << 20, "at least 1 MiB");
    let mut sum = 0xcbf2_9ce4_8422_2325;
    for (first, count) in regions(DISK_SECTORS) {
        sum = fnv1a(sum, &pattern(first, count));
    }
    assert_eq!(m.group(3), format!("{sum:016x}"), "checksum dom0 printed");

    // What QEMU wrote to the files after dom0's flush.
    let image = fs::read(&disk.0).unwrap();
    for (first, count) in regions(DISK_SECTORS) {
        let at = first as usize * SECTOR;
        assert!(
            image[at..at + count as usize * SECTOR] == pattern(first, count)[..],
            "sectors {first}+{count} of the image"
        );
    }
    // A sector between the regions was not touched.
    let gap = 3000 * SECTOR;
    assert!(image[gap..gap + SECTOR].iter().all(|&b| b == 0));
    assert!(
        fs::read(&ro.0).unwrap().iter().all(|&b| b == RO_FILL),
        "read-only image changed"
    );
}

#[test]
fn net_test_echoes_tcp_through_user_networking() {
    const BYTES: usize = 64 * 1024;
    const CHUNK: usize = 4096;
    let port = free_port();
    let mut vm = Qemu::builder()
        .smp(2)
        .append("-- dom0.net-test")
        .args([
            "-netdev".to_string(),
            format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:7"),
            "-device".to_string(),
            "virtio-net-device,netdev=n0".to_string(),
        ])
        .fail_on("net-test: FAIL")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect(
        re(r"dom0: virtio-net 0x[0-9a-f]+ \(irq \d+\): mac 52:54:00:12:34:56"),
        STEP,
    )
    .unwrap();
    vm.expect(
        re(r"dom0: net: 10\.0\.2\.15/24 via 10\.0\.2\.2 \(dhcp\)"),
        STEP,
    )
    .unwrap();
    vm.expect("dom0: net-test: echo server listening on 10.0.2.15:7", STEP)
        .unwrap();

    let data: Vec<u8> = (0..BYTES).map(|i| (i * 7 + i / 251) as u8).collect();
    let back = echo_round_trip(port, &data, CHUNK);
    assert!(back == data, "echoed bytes differ");

    vm.expect(
        format!("dom0: net-test: PASS echoed {BYTES} bytes").as_str(),
        STEP,
    )
    .unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}
