//! Grant tables and shared rings (issue 5) between two real domUs that set
//! their ring up through the configuration store (the front/back handshake):
//! 100,000 checksummed request/response pairs through a ring with payloads
//! in granted pages (nothing lost, reordered or corrupted, while the back end
//! keeps dropping and remapping its mappings); an honest front end facing a
//! hostile back end that maps what it was not given, unmaps twice, scribbles
//! on the ring and writes through a read-only mapping; and an honest back
//! end facing a hostile front end that sends bad grants and lengths, rewrites
//! requests after posting them and claims an impossible request index. The
//! guests check themselves and print `PASS` or `FAIL` lines; dedicated
//! bundles from `scripts/build.sh`.

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
        .fail_on("connection dropped")
        .fail_on("page kept")
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
                // The ring was handed over through the store.
                re(r"\[ring-back\] ring-back: connected to domain 1"),
                re(r"\[ring-front\] ring-front: PASS 100000 requests in (\d+) us \((\d+) events sent\)"),
                re(
                    r"\[ring-back\] ring-back: PASS 100000 requests \((\d+) events sent, (\d+) maps, all dropped (\d+) times\)",
                ),
            ],
            Duration::from_secs(120),
        )
        .unwrap();
    let us: u64 = m[1].group(1).parse().unwrap();
    println!(
        "100000 requests in {} ms of guest time; {} + {} events; {} maps",
        us / 1000,
        m[1].group(2),
        m[2].group(1),
        m[2].group(2)
    );
    // The back end really reused mapping slots for other pages.
    let drops: u64 = m[2].group(3).parse().unwrap();
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

/// `ring-rogue` (hostile front end) and `ring-back tolerant` (honest back
/// end): every bad request is answered with its status and service goes
/// on; requests rewritten after posting are answered as first posted or as
/// rewritten, never from a mix of the two (the back end acts on its copy);
/// an impossible request index makes the back end refuse the ring
/// (`tern_abi::ring` Overflow) and let go of every page, which the front
/// end takes back.
#[test]
fn hostile_ring_front_end() {
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(image("bundle-rings-rogue.cpio").unwrap())
        .append("loglevel=warn")
        .fail_on("ring-rogue: FAIL")
        .fail_on("ring-back: FAIL")
        .fail_on("dom0: cannot start")
        .fail_on("crashed")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = |what: &str, status: &str| {
        re(&format!(
            r"\[ring-rogue\] ring-rogue: refused as expected: {what}: {status}"
        ))
    };
    let m = vm
        .expect_all(
            &[
                refused("request page never granted", "grant refused"),
                refused("request page beyond the table", "grant refused"),
                refused("request page granted to another domain", "grant refused"),
                refused("read-only response page", "grant refused"),
                refused("response page never granted", "grant refused"),
                refused("length 0", "bad request"),
                refused("length 5000", "bad request"),
                refused("non-zero pad", "bad request"),
                refused("payload not matching its checksum", "bad checksum"),
                re(r"\[ring-back\] ring-back: refused request \d+: grant refused"),
                re(
                    r"\[ring-rogue\] ring-rogue: rewrote 200 posted requests: (\d+) answered as first posted, (\d+) refused as rewritten, (\d+) refused for a rewritten payload, 0 mixed",
                ),
                re(r"\[ring-rogue\] ring-rogue: claimed request index 0x[0-9a-f]+"),
                re(
                    r"\[ring-back\] ring-back: peer broke the ring: peer claims more entries than the ring holds; ring refused",
                ),
                re(
                    r"\[ring-back\] ring-back: PASS tolerant: (\d+) served, (\d+) refused, then the ring was refused; everything unmapped",
                ),
                re(r"\[ring-rogue\] ring-rogue: every page taken back after the back end refused the ring"),
                re(r"\[ring-rogue\] ring-rogue: PASS \(\d+ checks\)"),
            ],
            STEP,
        )
        .unwrap();
    let rewrites: Vec<u64> = (1..=3).map(|i| m[10].group(i).parse().unwrap()).collect();
    println!(
        "rewritten requests: {} as posted, {} refused, {} bad payload",
        rewrites[0], rewrites[1], rewrites[2]
    );
    // The back end's own count agrees with the front end's: 2 honest
    // requests, 9 bad ones, and the rewritten ones as the front end saw them.
    let served: u64 = m[13].group(1).parse().unwrap();
    let refused_n: u64 = m[13].group(2).parse().unwrap();
    assert_eq!(served, 2 + rewrites[0], "served");
    assert_eq!(refused_n, 9 + rewrites[1] + rewrites[2], "refused");
    vm.expect("[dom0] dom0: no domains left", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}
