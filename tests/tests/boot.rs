//! Boot matrix: the hypervisor comes up on every supported combination of GIC
//! version, entry level, CPU model and CPU count.
//!
//! Not the full product (2 × 2 × 4 × 2 = 32 boots); each value appears at least
//! twice, entry level is crossed with both GIC versions and both CPU counts, and
//! one run uses 8 CPUs.

use std::time::Duration;
use tern_tests::{Entry, Qemu, re};

/// One boot; generous because TCG on a loaded 2-core CI machine is slow.
const STEP: Duration = Duration::from_secs(30);

fn boot(gic: u8, entry: Entry, cpu: &str, smp: u32, mem_mib: u64) {
    let mut vm = Qemu::builder()
        .gic(gic)
        .entry(entry)
        .cpu(cpu)
        .smp(smp)
        .memory(&format!("{mem_mib}M"))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));

    let banner = vm
        .expect(
            re(r"tern hypervisor v\d+\.\d+\.\d+ .*at EL2 \(entered at (EL\d)\)"),
            STEP,
        )
        .unwrap();
    assert_eq!(banner.group(1), entry.name(), "{}", banner.line);

    let n = smp.to_string();
    let gic_line = format!("gic: v{gic}");
    let all_online = format!("all {n} CPUs online");
    let cpu_lines: Vec<String> = (0..smp)
        .map(|k| format!(r"cpu {k} online \(mpidr (0x)?[0-9a-f]+\)"))
        .collect();
    let mut patterns = vec![
        re(r"memory: bank \[0x([0-9a-f]+)-0x([0-9a-f]+)\) (\d+) MiB"),
        re(r"heap: (\d+) free pages \((\d+) MiB\)"),
        re(&regex_lite::escape(&gic_line)),
        re(&regex_lite::escape(&all_online)),
    ];
    patterns.extend(cpu_lines.iter().map(|p| re(p)));
    // Any order: secondary CPUs report concurrently.
    let m = vm.expect_all(&patterns, STEP).unwrap();

    // QEMU virt RAM starts at 1 GiB; the bank is all of -m.
    let (bank_lo, bank_hi) = (hex(m[0].group(1)), hex(m[0].group(2)));
    assert_eq!(bank_lo, 0x4000_0000, "{}", m[0].line);
    assert_eq!((bank_hi - bank_lo) >> 20, mem_mib, "{}", m[0].line);
    assert_eq!(m[0].group(3), mem_mib.to_string(), "{}", m[0].line);

    let free_pages: u64 = m[1].group(1).parse().unwrap();
    let free_mib: u64 = m[1].group(2).parse().unwrap();
    assert!(free_pages > 0 && free_mib <= mem_mib, "{}", m[1].line);
    assert_eq!((free_pages * 4096) >> 20, free_mib, "{}", m[1].line);
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap()
}

#[test]
fn gic3_el2_a72_smp4() {
    boot(3, Entry::El2, "cortex-a72", 4, 1024);
}

#[test]
fn gic2_el2_a53_smp1() {
    boot(2, Entry::El2, "cortex-a53", 1, 512);
}

#[test]
fn gic3_el3_a57_smp4() {
    boot(3, Entry::El3, "cortex-a57", 4, 1024);
}

#[test]
fn gic2_el3_a72_smp4() {
    boot(2, Entry::El3, "cortex-a72", 4, 1024);
}

#[test]
fn gic3_el2_max_smp1() {
    boot(3, Entry::El2, "max", 1, 2048);
}

#[test]
fn gic2_el2_a57_smp4() {
    boot(2, Entry::El2, "cortex-a57", 4, 1024);
}

#[test]
fn gic3_el3_a53_smp1() {
    boot(3, Entry::El3, "cortex-a53", 1, 512);
}

#[test]
fn gic2_el3_max_smp1() {
    boot(2, Entry::El3, "max", 1, 1024);
}

#[test]
fn gic3_el2_a53_smp8() {
    boot(3, Entry::El2, "cortex-a53", 8, 1024);
}
