//! The configuration store (issue 5): two domains use it over their own
//! shared pages and event channels: each writes and reads its own keys and
//! is refused the other's (EACCES); they hand a device (a granted page and a
//! port) to each other with the front-end/back-end handshake; a watch sees
//! exactly one event per change, made by the other domain or by dom0's
//! `store-write`; and the shell's `store-ls`, `store-read` and `store-write`
//! work, with one error line on failure. Bundle `bundle-store.cpio` from
//! `scripts/build.sh` (store-a then store-b, domains 1 and 2).

use std::time::Duration;
use tern_tests::shell::{self, PROMPT};
use tern_tests::{Qemu, image, re};

const STEP: Duration = Duration::from_secs(30);

/// `shell::run` with this file's step.
fn run(vm: &mut Qemu, cmd: &str) -> Vec<String> {
    shell::run(vm, cmd, STEP)
}

#[test]
fn permissions_watches_handshake_and_shell_verbs() {
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(image("bundle-store.cpio").unwrap())
        .append("loglevel=warn -- dom0.shell")
        .time_limit(Duration::from_secs(150))
        .fail_on("store-a: FAIL")
        .fail_on("store-b: FAIL")
        .fail_on("dom0: cannot start")
        .fail_on("no configuration store")
        .fail_on("connection dropped")
        // The grant of a destroyed domain's page must be revocable.
        .fail_on("page kept")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect("dom0: shell ready; 'help' lists the verbs", STEP)
        .unwrap();
    vm.expect_all(
        &[
            "[store-a] store-a: PASS own keys",
            "[store-a] store-a: PASS reading /local/domain/2/name: EACCES",
            "[store-b] store-b: PASS own keys",
            "[store-b] store-b: PASS reading /local/domain/1/data/x: EACCES",
            "[store-a] store-a: PASS handshake",
            "[store-b] store-b: PASS handshake",
            "[store-b] store-b: PASS 1 event for 1 change by domain 1",
            "[store-a] store-a: watching data/watched",
        ],
        Duration::from_secs(90),
    )
    .unwrap();
    vm.expect("dom0: domain store-b (2) exited: poweroff", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();

    // store-a is alive, waiting for changes: its home, as xenstore-ls shows it.
    let ls = run(&mut vm, "store-ls /local/domain/1");
    for want in [
        "name = \"store-a\"",
        "domid = \"1\"",
        "data = \"\"",
        " x = \"hello\"",
        "   backend-id = \"2\"",
        "   state = \"4\"",
        " v = \"1\"",
    ] {
        assert!(ls.iter().any(|l| l == want), "{want:?} in {ls:?}");
    }
    let root = run(&mut vm, "store-ls");
    assert_eq!(&root[..2], ["local = \"\"", " domain = \"\""]);
    // dom0's home holds the back ends' directories (the console's of each
    // domain); the domains' homes follow it.
    assert!(root.iter().any(|l| l == "  1 = \"\""), "{root:?}");
    assert_eq!(run(&mut vm, "store-read /local/domain/1/data/x"), ["hello"]);

    // Three changes by dom0, each seen exactly once (store-a fails on a
    // fourth event and checks for a quiet second after the third).
    for k in 1..=3 {
        vm.send_line(&format!("store-write /local/domain/1/data/watched {k}"))
            .unwrap();
        vm.expect(
            re(&format!(
                r"\[store-a\] store-a: event {k} data/watched value {k}$"
            )),
            STEP,
        )
        .unwrap();
    }
    vm.expect("[store-a] store-a: PASS 3 events for 3 changes", STEP)
        .unwrap();
    vm.expect("dom0: domain store-a (1) exited: poweroff", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();

    // Destroyed domains' homes are gone; errors are one line each.
    assert_eq!(
        run(&mut vm, "store-read /local/domain/1/name"),
        ["error: store-read: /local/domain/1/name: ENOENT"]
    );
    assert_eq!(
        run(&mut vm, "store-write bad//path x"),
        ["error: store-write: bad//path: EINVAL"]
    );
    assert_eq!(
        run(&mut vm, "store-ls /nope"),
        ["error: store-ls: /nope: ENOENT"]
    );
    assert!(run(&mut vm, "store-write /tool/x a b").is_empty());
    assert_eq!(run(&mut vm, "store-read /tool/x"), ["a b"]);

    vm.send_line("poweroff").unwrap();
    vm.expect("dom0: powering off", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}
