//! Grant tables and shared rings (issue 5) between two real domUs: 100,000
//! checksummed request/response pairs through a ring with payloads in
//! granted pages (nothing lost, reordered or corrupted, while the back end
//! keeps dropping and remapping its mappings), and an honest front end
//! facing a hostile back end that maps what it was not given, unmaps twice,
//! scribbles on the ring and writes through a read-only mapping. The guests
//! check themselves and print `PASS` or `FAIL` lines; dedicated bundles from
//! `scripts/build.sh`.

use std::time::Duration;
use tern_tests::{Qemu, image, re};

const STEP: Duration = Duration::from_secs(30);

/// 100,000 requests from `ring-front` to `ring-back` on two CPUs: every
/// response arrives in order with the right payload, and at the end the
/// front end takes every granted page back (the back end unmapped them).
#[test]
fn ring_100k_checksummed_requests() {
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(image("bundle-rings.cpio").unwrap())
        .append("loglevel=warn")
        .time_limit(Duration::from_secs(150))
        .fail_on("ring-front: FAIL")
        .fail_on("ring-back: FAIL")
        .fail_on("dom0: cannot start")
        .fail_on("crashed")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let m = vm
        .expect_all(
            &[
                re(r"\[ring-front\] ring-front: PASS 100000 requests in (\d+) us \((\d+) events sent\)"),
                re(
                    r"\[ring-back\] ring-back: PASS 100000 requests \((\d+) events sent, (\d+) maps, all dropped (\d+) times\)",
                ),
            ],
            Duration::from_secs(120),
        )
        .unwrap();
    let us: u64 = m[0].group(1).parse().unwrap();
    println!(
        "100000 requests in {} ms of guest time; {} + {} events; {} maps",
        us / 1000,
        m[0].group(2),
        m[1].group(1),
        m[1].group(2)
    );
    // The back end really reused mapping slots for other pages.
    let drops: u64 = m[1].group(3).parse().unwrap();
    assert!(
        drops >= 10,
        "the back end dropped its mappings {drops} times"
    );
    vm.expect("[dom0] dom0: no domains left", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}

/// `ring-victim` (honest front end) and `ring-hostile` (hostile back end):
/// revoking a mapped grant is refused, every probe of the hostile end is
/// refused with its error, the victim detects the huge response index and
/// stops using the ring, the hostile end is crashed alone for writing
/// through a read-only mapping, and the victim then takes every page back,
/// unchanged.
fn hostile_peer(gic: u8, smp: u32) {
    let mut vm = Qemu::builder()
        .gic(gic)
        .smp(smp)
        .initrd(image("bundle-rings-hostile.cpio").unwrap())
        .append("loglevel=warn")
        .fail_on("ring-victim: FAIL")
        .fail_on("ring-hostile: FAIL")
        .fail_on("STILL ALIVE")
        .fail_on("dom0: cannot start")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = |what: &str, err: &str| {
        re(&format!(
            r"\[ring-hostile\] ring-hostile: refused: {what}: {err} \(-\d+\)"
        ))
    };
    vm.expect_all(
        &[
            re(r"\[ring-victim\] ring-victim: end_access of a grant the peer maps: Busy \(-7\) \(refused\)"),
            refused("map of a grant given to another domain", "PermissionDenied"),
            refused("writable map of a read-only grant", "PermissionDenied"),
            refused("map of a reference never granted", "PermissionDenied"),
            refused("map of a reference beyond the table", "NotFound"),
            refused("copy from a grant given to another domain", "PermissionDenied"),
            refused("copy into a read-only grant", "PermissionDenied"),
            refused("second unmap of a handle", "NotFound"),
            refused("unmap of a handle never issued", "NotFound"),
            re(r"\[ring-victim\] ring-victim: peer broke the ring: peer claims more entries than the ring holds; ring closed"),
            re(r"WARN  domain ring-hostile \(\d+\) crashed: DataAbortLowerEL at pc 0x[0-9a-f]+, far 0x10000[0-9a-f]{5}"),
            re(r"\[ring-victim\] ring-victim: page 1 taken back after the peer died"),
            re(r"\[ring-victim\] ring-victim: PASS \(\d+ checks\)"),
        ],
        STEP,
    )
    .unwrap();
    vm.expect("[dom0] dom0: no domains left", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}

#[test]
fn hostile_ring_peer_gicv3_smp2() {
    hostile_peer(3, 2);
}

#[test]
fn hostile_ring_peer_gicv2_smp1() {
    hostile_peer(2, 1);
}
