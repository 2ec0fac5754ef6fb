//! Driving dom0's shell over the serial console: one command at a time, its
//! output as lines, and a clean power-off. Guests print on the same console
//! at any moment, so a guest's line can land between a command's echo and its
//! output, or on the prompt's line; these helpers tolerate both.

use crate::{Qemu, re};
use std::time::Duration;

/// dom0's shell prompt.
pub const PROMPT: &str = "tern# ";

/// Types `cmd` and waits for the prompt after its output; returns dom0's
/// lines in between (the echo, prompts and domains' `[name]` lines left out).
///
/// Panics if the echo or the prompt does not come within `step`.
pub fn run(vm: &mut Qemu, cmd: &str, step: Duration) -> Vec<String> {
    vm.send_line(cmd).unwrap();
    // The echo first: a prompt still unread from before (a guest's line may
    // have completed it) must not pass for the one after this command.
    vm.expect(cmd, step).unwrap();
    vm.expect(PROMPT, step).unwrap();
    let lines = vm.lines();
    let mut start = lines
        .iter()
        .rposition(|l| l.contains(&format!("{PROMPT}{cmd}")) || l.ends_with(cmd))
        .unwrap_or_else(|| panic!("no echo of {cmd:?}"));
    // A domain's line can land between the echo and its newline: the echo's
    // line then ends with that output and the newline stands alone.
    if !lines[start].ends_with(cmd) && lines.get(start + 1).is_some_and(|l| l.is_empty()) {
        start += 1;
    }
    lines[start + 1..]
        .iter()
        .take_while(|l| !l.contains(PROMPT))
        .filter(|l| !l.starts_with('['))
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// Waits for a line matching `pattern`, unless one was printed already (a
/// domain's line may come before the line the test waited for).
pub fn seen_or_expect(vm: &mut Qemu, pattern: &str, step: Duration) {
    let r = re(pattern);
    if !vm.lines().iter().any(|l| r.is_match(l)) {
        vm.expect(r, step).unwrap();
    }
}

/// `poweroff`, then checks that QEMU exits with status 0.
pub fn poweroff(vm: &mut Qemu, step: Duration) {
    vm.send_line("poweroff").unwrap();
    vm.expect("dom0: powering off", step).unwrap();
    let status = vm.wait_exit(step).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}
