//! The split console (`specs/console.md`): a domain's output through its
//! console ring reaches dom0's console as `[<name>] <line>`, and dom0's
//! shell attaches to it with `console <Domain>`: recent and live output,
//! typed lines to the domain, Ctrl-] back to the prompt. Every guest's
//! console is on its ring: the SDK's runtime connects it before the
//! guest's entry runs.

use std::time::Duration;
use tern_tests::{Qemu, image, re};

const STEP: Duration = Duration::from_secs(30);
const PROMPT: &str = "tern# ";

/// Whether a `list` row names `name` (first column).
fn listed(vm: &Qemu, since: usize, name: &str) -> bool {
    vm.lines()[since..]
        .iter()
        .any(|l| l.split_whitespace().next() == Some(name) && l.contains(" 4 "))
}

#[test]
fn attach_type_echo_detach() {
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(image("bundle-console.cpio").unwrap())
        .append("loglevel=warn -- dom0.shell")
        .time_limit(Duration::from_secs(120))
        .fail_on("console-echo: FAIL")
        .fail_on("consback:")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect("dom0: shell ready; 'help' lists the verbs", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();

    vm.send_line("create console-echo.toml").unwrap();
    // dom0 prints the ring's lines with the domain's name in front.
    vm.expect(
        "[echo1] console-echo: hello from domain 1 on the console ring",
        STEP,
    )
    .unwrap();
    let before = vm.lines().len();
    vm.send_line("list").unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    assert!(listed(&vm, before, "echo1"), "list does not show echo1");

    vm.send_line("console echo1").unwrap();
    vm.expect("Connected to echo1 (escape character is '^]')", STEP)
        .unwrap();
    // The greeting again, from dom0's copy of the recent output, unprefixed.
    vm.expect(
        "console-echo: hello from domain 1 on the console ring",
        STEP,
    )
    .unwrap();
    vm.send_line("ping 42").unwrap();
    let m = vm.expect("echo: ping 42", STEP).unwrap();
    assert!(
        !m.line.starts_with('['),
        "attached output is prefixed: {:?}",
        m.line
    );
    // Ctrl-] detaches; the Enter after it is an empty command line.
    vm.send_line("\x1d").unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    // Detached, the domain's output is prefixed again.
    vm.send_line("destroy echo1").unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    let before = vm.lines().len();
    vm.send_line("list").unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    assert!(!listed(&vm, before, "echo1"), "echo1 still listed");
    vm.send_line("poweroff").unwrap();
    assert!(vm.wait_exit(STEP).unwrap().success());
}

/// A guest that never connects its console device itself (it only uses
/// `println!`) has it connected by the SDK's runtime: dom0 keeps its output
/// for `console <Domain>` (which it could not if the output went through
/// the hypervisor), prints it prefixed with the domain's name like direct
/// output, and the line the guest prints through the ring just before it
/// shuts down still comes before the hypervisor's report of the shutdown.
#[test]
fn print_only_guest_is_on_its_ring() {
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(image("bundle-lifecycle.cpio").unwrap())
        .append("-- dom0.shell")
        .time_limit(Duration::from_secs(120))
        .fail_on("lifecycle: FAIL")
        .fail_on("consback:")
        // Ring output that dom0 printed as its own, prefixed twice.
        .fail_on("[dom0] [")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect("dom0: shell ready; 'help' lists the verbs", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();

    vm.send_line("create lifecycle-idle").unwrap();
    let m = vm
        .expect(
            re(r"\[polite\] lifecycle: polite \(domain (\d+)\) waiting for a shutdown request"),
            STEP,
        )
        .unwrap();
    let id: u32 = m.group(1).parse().unwrap();

    vm.send_line("console polite").unwrap();
    vm.expect("Connected to polite (escape character is '^]')", STEP)
        .unwrap();
    // dom0's copy of the recent output, unprefixed.
    let waiting = format!("lifecycle: polite (domain {id}) waiting for a shutdown request");
    let m = vm.expect(&*waiting, STEP).unwrap();
    assert_eq!(m.line, waiting, "history line");
    vm.send_line("\x1d").unwrap();
    vm.expect(PROMPT, STEP).unwrap();

    // The guest prints its last line, then shuts down at once.
    vm.send_line("shutdown polite").unwrap();
    vm.expect(
        &*format!("[polite] lifecycle: polite (domain {id}) asked to poweroff: shutting down"),
        STEP,
    )
    .unwrap();
    vm.expect(&*format!("domain polite ({id}) shut down: poweroff"), STEP)
        .unwrap();
    vm.send_line("poweroff").unwrap();
    assert!(vm.wait_exit(STEP).unwrap().success());
}
