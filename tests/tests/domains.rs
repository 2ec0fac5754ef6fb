//! Domains under stage-2: dom0 boots from the initrd, starts guests, and
//! hostile guests are crashed alone while the others go on.

use std::time::Duration;
use tern_tests::{Qemu, image, re};

const STEP: Duration = Duration::from_secs(30);

/// The default bundle: dom0 starts the demo guest, which says hello and powers
/// off; dom0 then powers the machine off and QEMU exits with status 0. The
/// demo's lines come before the hypervisor's report of its shutdown.
#[test]
fn demo_guest_runs_and_dom0_powers_off() {
    let mut vm = Qemu::builder()
        .smp(2)
        // The demo guest prints through its console ring; dom0 passes the
        // lines to the hypervisor as the demo's, never as its own.
        .fail_on("[dom0] [demo]")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect("[dom0] dom0: tern dom0 v", STEP).unwrap();
    vm.expect("[dom0] dom0: guest ABI 1.0, control ABI 1.0", STEP)
        .unwrap();
    vm.expect("[dom0] dom0: module 1: demo-guest", STEP)
        .unwrap();
    vm.expect("[demo] hello from demo (domain 1)", STEP)
        .unwrap();
    vm.expect("[demo] demo: guest ABI 1.0, control ABI 1.0", STEP)
        .unwrap();
    vm.expect("domain demo (1) shut down: poweroff", STEP)
        .unwrap();
    vm.expect("[dom0] dom0: domain demo (1) exited: poweroff", STEP)
        .unwrap();
    vm.expect("dom0 powered off: system off", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}

/// The test bundle, on a given GIC and CPU count: the ABI checks pass, each
/// hostile guest is crashed alone with a one-line report, and the printer
/// keeps printing to the end.
fn hostile(gic: u8, smp: u32) {
    let mut vm = Qemu::builder()
        .gic(gic)
        .smp(smp)
        .initrd(image("bundle-tests.cpio").unwrap())
        .fail_on("STILL ALIVE")
        .fail_on("abi-check: FAIL")
        .fail_on("hostile-smc: FAIL")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let crashed = |name: &str| {
        re(&format!(
            r"WARN  domain {name} \((\d+)\) crashed: DataAbortLowerEL at pc 0x[0-9a-f]+, far (0x[0-9a-f]+)"
        ))
    };
    let m = vm
        .expect_all(
            &[
                crashed("hostile-read-hyp"),
                crashed("hostile-read-dom0"),
                crashed("hostile-write-domu"),
                crashed("hostile-gic"),
                crashed("hostile-uart"),
                re(r"\[hostile-undef\] unexpected synchronous exception from EL1: Unknown"),
                re(r"domain hostile-undef \(\d+\) shut down: crash"),
                re(r"\[hostile-smc\] hostile-smc: PASS"),
                re(r"\[abi-check\] abi-check: PASS \(\d+ checks\)"),
            ],
            STEP,
        )
        .unwrap();
    // The guests touched what they said they would.
    assert_eq!(m[3].group(2), "0x8000004", "GIC distributor");
    assert_eq!(m[4].group(2), "0x9000000", "UART");
    // The well-behaved guest was started before the hostile ones crashed and
    // goes on to its last tick. (Its ticks interleave with the crashes in any
    // order, so they are checked on the whole log, not with forward expects.)
    vm.expect("[dom0] dom0: no domains left", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
    let log = vm.lines();
    assert!(
        log.iter()
            .any(|l| l == "[dom0] dom0: domain printer (2) exited: poweroff")
    );
    let ticks: Vec<usize> = log
        .iter()
        .filter_map(|l| l.strip_prefix("[printer] printer: tick "))
        .map(|n| n.trim().parse().unwrap())
        .collect();
    assert_eq!(
        ticks,
        (1..=40).collect::<Vec<_>>(),
        "no tick lost, doubled or reordered"
    );
    let started = log
        .iter()
        .position(|l| l.contains("dom0: started printer (domain 2)"))
        .unwrap();
    let first_crash = log.iter().position(|l| l.contains(") crashed: ")).unwrap();
    assert!(
        started < first_crash,
        "the printer was running when the hostile guests crashed"
    );
}

#[test]
fn hostile_guests_are_crashed_alone_gicv3_smp2() {
    hostile(3, 2);
}

#[test]
fn hostile_guests_are_crashed_alone_gicv2_smp1() {
    hostile(2, 1);
}

/// 200 create → run → destroy cycles leave the hypervisor's free-page count
/// exactly where it started (dom0 reads it with `physinfo` before and after).
#[test]
fn create_destroy_cycles_return_every_page() {
    let mut vm = Qemu::builder()
        .append("loglevel=warn -- dom0.cycles=200")
        .time_limit(Duration::from_secs(120))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let before = vm
        .expect(
            re(r"dom0: cycles: 200 x demo, free pages before: (\d+)"),
            STEP,
        )
        .unwrap();
    let done = vm
        .expect(
            re(r"dom0: cycles: PASS 200 cycles, free pages before (\d+) after (\d+)"),
            Duration::from_secs(90),
        )
        .unwrap();
    assert_eq!(done.group(1), before.group(1));
    assert_eq!(done.group(1), done.group(2));
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}
