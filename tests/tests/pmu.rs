//! Cycle counts for the bench guests (issue 9): with the boot argument
//! `hyp.guest_pmu=1` a guest asked with `pmu=1` reads `PMCCNTR_EL0` at its
//! region markers and prints cycles per iteration; without it the read traps
//! and the hypervisor crashes that guest only, the others run on.
//!
//! The bundle is made here from the bench guests (built with cargo if they
//! are not) and `tern-pack`, like scripts/bench.sh does.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tern_tests::{Qemu, image, re, target_dir};

const STEP: Duration = Duration::from_secs(60);

/// Builds `<test>.cpio`: dom0 (from scripts/build.sh), bench-hvc reading the cycle counter (`pmu=1`)
/// and bench-cpu not reading it.
/// `test` names the bundle: the tests run in parallel.
fn bundle(test: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "aarch64-unknown-none",
        ])
        .args(["-p", "bench-guests"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the bench guests failed");
    let out = target_dir().join("aarch64-unknown-none/release");
    let dir = target_dir().join("pmu-test").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let config = |name: &str, cmdline: &str| {
        let path = dir.join(format!("{name}.toml"));
        let text = format!(
            "name = \"{name}\"\nmemory = 4\nimage = \"{name}\"\ncmdline = \"{cmdline} console=hypercall\"\n"
        );
        std::fs::write(&path, text).unwrap();
        format!("{name}.toml={}", path.display())
    };
    let cpio = dir.join(format!("{test}.cpio"));
    let status = Command::new(target_dir().join("release/tern-pack"))
        .args(["bundle", "-o"])
        .arg(&cpio)
        .arg(format!("dom0={}", out.join("dom0").display()))
        .arg(format!("bench-hvc={}", out.join("bench-hvc").display()))
        .arg(format!("bench-cpu={}", out.join("bench-cpu").display()))
        .arg(config("bench-hvc", "iters=100 pmu=1"))
        .arg(config("bench-cpu", ""))
        .status()
        .expect("tern-pack runs (scripts/build.sh builds it)");
    assert!(status.success(), "tern-pack failed");
    cpio
}

/// With the opt-in: a positive cycles-per-call figure, and the instruction
/// markers still work as before (the run completes and powers off).
#[test]
fn guests_count_cycles_with_the_opt_in() {
    image("hyp.bin").unwrap();
    let mut vm = Qemu::builder()
        .smp(1)
        .initrd(bundle("opt-in"))
        .append("loglevel=warn hyp.guest_pmu=1")
        .fail_on("crashed")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect("pmu: guests may read the cycle counter", STEP)
        .unwrap();
    let m = vm
        .expect(
            re(r"bench-hvc: cycles=(\d+) iters=100 cycles/iter=(\d+)"),
            STEP,
        )
        .unwrap();
    let total: u64 = m.group(1).parse().unwrap();
    let per: u64 = m.group(2).parse().unwrap();
    assert!(per > 0, "no cycles counted ({total} in all)");
    assert_eq!(per, total / 100);
    vm.expect("bench-cpu: checksum=", STEP).unwrap();
    vm.expect("dom0: no domains left", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}

/// Without the opt-in: bench-hvc's first counter read traps and crashes it;
/// bench-cpu (which does not read the counter) still finishes.
#[test]
fn without_the_opt_in_a_counter_read_crashes_that_guest_only() {
    image("hyp.bin").unwrap();
    let mut vm = Qemu::builder()
        .smp(1)
        .initrd(bundle("default"))
        .append("loglevel=warn")
        .fail_on("bench-hvc: cycles=")
        .fail_on("pmu: guests may read")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect_all(
        &[
            re(r"domain bench-hvc \(\d+\) crashed: .*esr"),
            re(r"bench-cpu: checksum=0x[0-9a-f]{8}"),
        ],
        STEP,
    )
    .unwrap();
    vm.expect("dom0: no domains left", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}
