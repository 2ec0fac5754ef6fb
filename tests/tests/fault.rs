//! An unexpected EL2 exception produces a full report and halts the CPU.
//!
//! `hyp.test=fault` makes the hypervisor read an unmapped address after boot;
//! it logs that address first, so the test can check the report's FAR.

use std::time::Duration;
use tern_tests::{Entry, Qemu, re};

const STEP: Duration = Duration::from_secs(30);

fn fault(entry: Entry) {
    let mut vm = Qemu::builder()
        .entry(entry)
        .smp(2)
        .append("hyp.test=fault")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));

    vm.expect("tern hypervisor v", STEP).unwrap();
    let hook = vm
        .expect(re(r"(?i)hyp\.test=fault.*(0x[0-9a-f]+)"), STEP)
        .unwrap();
    let addr = u64::from_str_radix(hook.group(1).trim_start_matches("0x"), 16).unwrap();

    let report = vm
        .expect(re(r"EL2 exception: (?i)(.*data ?abort.*)"), STEP)
        .unwrap();
    assert!(!report.group(1).is_empty());

    let reg = |name: &str| {
        re(&format!(
            r"\b{name}(?:_EL2)?\b\s*[:=]?\s*(0x)?([0-9a-fA-F]+)"
        ))
    };
    let mut patterns = vec![reg("ESR"), reg("ELR"), reg("FAR"), reg("SPSR")];
    patterns.extend((0..=30).map(|i| reg(&format!("x{i}"))));
    patterns.push(re(r"cpu (\d+) halted"));
    let m = vm.expect_all(&patterns, STEP).unwrap();
    let far = u64::from_str_radix(m[2].group(2), 16).unwrap();
    assert_eq!(far, addr, "FAR in {:?}", m[2].line);
}

#[test]
fn fault_report_el2_entry() {
    fault(Entry::El2);
}

#[test]
fn fault_report_el3_entry() {
    fault(Entry::El3);
}
