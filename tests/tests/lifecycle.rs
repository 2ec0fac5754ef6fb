//! Domain life cycle (issue 7), driven through dom0's shell: the crash
//! policy of a domain's configuration (`on_crash = "restart"`: created
//! again, with a growing back-off; `"preserve"`: kept, listed as crashed,
//! until destroyed by hand) and the `shutdown` / `reboot` verbs (xl's way:
//! dom0 writes `control/shutdown` in the guest's store home, the guest
//! honours it; `reboot` makes the domain again from its configuration;
//! `-F` destroys a guest that ignores the request). Bundle
//! `bundle-lifecycle.cpio` from `scripts/build.sh` (guest `lifecycle` and
//! its four configurations, none started at boot).

use std::time::{Duration, Instant};
use tern_tests::shell;
use tern_tests::{Qemu, re};

const STEP: Duration = Duration::from_secs(30);

/// `shell::run`, also leaving out dom0's own reports of domains that ended.
fn run(vm: &mut Qemu, cmd: &str) -> Vec<String> {
    shell::run(vm, cmd, STEP)
        .into_iter()
        .filter(|l| !l.contains("dom0: "))
        .collect()
}

/// The `list` row of the domain called `name`, if listed.
/// Group 1 of the first line seen so far (or within `STEP`) that matches
/// `pattern`. A guest's first line may share a line with the prompt that
/// `run` already consumed, so this looks through everything, not forward.
fn first_seen(vm: &Qemu, pattern: &str) -> String {
    let pattern = re(pattern);
    let deadline = Instant::now() + STEP;
    loop {
        let found = vm
            .lines()
            .iter()
            .find_map(|l| pattern.captures(l).map(|c| c[1].to_owned()));
        if let Some(g) = found {
            return g;
        }
        assert!(Instant::now() < deadline, "never saw {pattern:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn listed(vm: &mut Qemu, name: &str) -> Option<String> {
    run(vm, "list")
        .into_iter()
        .find(|l| l.split_whitespace().next() == Some(name))
}

fn boot() -> Qemu {
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(tern_tests::image("bundle-lifecycle.cpio").unwrap())
        .append("loglevel=warn -- dom0.shell")
        .time_limit(Duration::from_secs(240))
        .fail_on("lifecycle: FAIL")
        .fail_on("STILL ALIVE")
        .fail_on("dom0: cannot make")
        .fail_on("page kept")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect("dom0: shell ready; 'help' lists the verbs", STEP)
        .unwrap();
    vm
}

/// `on_crash = "restart"`: a guest that crashes at once comes back again and
/// again, each time as a new domain, after waits that double (250, 500,
/// 1000 ms), which the host sees pass; `destroy` by name while it waits ends
/// the cycle. `on_crash = "preserve"`: the crashed domain stays, listed as
/// crashed (`----c-`), until `destroy` removes it.
#[test]
fn crash_policy_restart_with_back_off_and_preserve() {
    let mut vm = boot();
    // Not `run`: the first crash reports may come before the next prompt.
    vm.send_line("create lifecycle-restart").unwrap();
    let m = vm
        .expect(re(r"^Started domain crashy \(id (\d+)\)$"), STEP)
        .unwrap();
    let first: u32 = m.group(1).parse().unwrap();

    // A new domain may print before dom0 reports having made it: the
    // guests' lines are checked afterwards.
    let mut ids = vec![first];
    let mut delays = Vec::new();
    for _ in 0..3 {
        let id = *ids.last().unwrap();
        let m = vm
            .expect(
                re(&format!(
                    r"dom0: crashy \(domain {id}\) crashed: restarting in (\d+) ms \(on_crash = restart\)"
                )),
                STEP,
            )
            .unwrap();
        let seen = Instant::now();
        let delay: u64 = m.group(1).parse().unwrap();
        let m = vm
            .expect(re(r"dom0: restarted crashy as domain (\d+)"), STEP)
            .unwrap();
        let waited = seen.elapsed();
        ids.push(m.group(1).parse().unwrap());
        delays.push(delay);
        // dom0 really waited (the host's clock runs at least as fast as
        // the guests' virtual counters).
        assert!(
            waited >= Duration::from_millis(delay * 9 / 10),
            "restart after {waited:?}, announced {delay} ms"
        );
    }
    let lines = vm.lines();
    for id in &ids[..3] {
        for what in [
            format!("[crashy] lifecycle: crashy (domain {id}) up; crashing"),
            format!("dom0: domain crashy ({id}) exited: crashed"),
        ] {
            assert!(lines.iter().any(|l| l.contains(&what)), "{what}");
        }
    }
    println!("restart ids {ids:?}, back-off {delays:?} ms");
    assert_eq!(delays, [250, 500, 1000], "the back-off doubles");
    assert!(
        ids.windows(2).all(|w| w[1] > w[0]),
        "each restart is a new domain: {ids:?}"
    );

    // Destroyed by name (while it waits for its next restart, or in the
    // moment it runs): no restart comes after.
    let out = run(&mut vm, "destroy crashy");
    assert!(
        out.is_empty() || out == ["Cancelled the restart of crashy"],
        "{out:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(listed(&mut vm, "crashy"), None);
    let restarts = vm
        .lines()
        .iter()
        .filter(|l| l.contains("dom0: restarted crashy"))
        .count();
    assert_eq!(restarts, 3, "no restart after destroy");

    // Preserved: listed as crashed until destroyed by hand.
    run(&mut vm, "create lifecycle-preserve");
    let m = vm
        .expect(
            re(r"dom0: wreck \(domain (\d+)\) preserved \(on_crash = preserve\); 'destroy' removes it"),
            STEP,
        )
        .unwrap();
    let id = m.group(1).to_string();
    let row = listed(&mut vm, "wreck").expect("wreck listed");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cols[1], cols[4]), (id.as_str(), "----c-"), "{row}");
    assert!(run(&mut vm, "destroy wreck").is_empty());
    assert_eq!(listed(&mut vm, "wreck"), None);

    vm.send_line("poweroff").unwrap();
    vm.expect("dom0: powering off", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}

/// `reboot` and `shutdown -w` on a guest that honours them (it is made
/// again under a new id, then shuts down for good), `shutdown -F` on one
/// that ignores them (destroyed after the wait), and their errors.
#[test]
fn shutdown_and_reboot_verbs() {
    let mut vm = boot();
    assert_eq!(
        run(&mut vm, "shutdown nosuch"),
        ["error: shutdown: no domain 'nosuch'"]
    );
    assert_eq!(
        run(&mut vm, "reboot 0"),
        ["error: reboot: Domain-0 cannot be asked (use 'poweroff')"]
    );
    assert_eq!(
        run(&mut vm, "shutdown -x 1"),
        ["error: shutdown: unknown option '-x' (usage: shutdown [-w] [-F] <Domain>)"]
    );
    let help = run(&mut vm, "shutdown --help").join("\n");
    assert!(
        help.contains("-F  if it has not shut down within 10 s, destroy it"),
        "{help}"
    );

    run(&mut vm, "create lifecycle-idle");
    let id: u32 = first_seen(
        &vm,
        r"\[polite\] lifecycle: polite \(domain (\d+)\) waiting for a shutdown request",
    )
    .parse()
    .unwrap();

    // reboot: the guest honours it, dom0 makes it again.
    assert_eq!(
        run(&mut vm, &format!("reboot {id}")),
        [format!("Rebooting domain {id}")]
    );
    // (The guest's line may share one with the prompt `run` consumed.)
    vm.expect(&*format!("dom0: domain polite ({id}) exited: reboot"), STEP)
        .unwrap();
    let asked = format!("lifecycle: polite (domain {id}) asked to reboot: shutting down");
    assert!(vm.lines().iter().any(|l| l.contains(&asked)), "{asked}");
    let m = vm
        .expect(re(r"dom0: rebooted polite as domain (\d+)"), STEP)
        .unwrap();
    let id2: u32 = m.group(1).parse().unwrap();
    assert!(id2 > id, "a new domain: {id} -> {id2}");
    vm.expect(
        &*format!("[polite] lifecycle: polite (domain {id2}) waiting for a shutdown request"),
        STEP,
    )
    .unwrap();

    // shutdown -w: waits until it is down; then it is gone for good.
    let out = run(&mut vm, "shutdown -w polite");
    assert_eq!(
        out,
        [
            format!("Shutting down domain {id2}"),
            format!("Domain {id2} has shut down"),
        ]
    );
    // dom0 reports the exit around the prompt `run` waited for.
    let seen = |vm: &Qemu, what: String| {
        let deadline = Instant::now() + STEP;
        while !vm.lines().iter().any(|l| l.contains(&what)) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    };
    assert!(seen(
        &vm,
        format!("dom0: domain polite ({id2}) exited: poweroff")
    ));
    assert!(
        seen(&vm, format!("polite (domain {id2}) asked to poweroff")),
        "the guest saw the request"
    );
    assert_eq!(listed(&mut vm, "polite"), None);

    // A guest that ignores the request: -F destroys it after the wait.
    run(&mut vm, "create lifecycle-deaf");
    let deaf: u32 = first_seen(
        &vm,
        r"\[deaf\] lifecycle: deaf \(domain (\d+)\) up; ignoring shutdown requests",
    )
    .parse()
    .unwrap();
    let t = Instant::now();
    let out = run(&mut vm, "shutdown -F deaf");
    assert!(
        t.elapsed() >= Duration::from_secs(9),
        "waited {:?}",
        t.elapsed()
    );
    assert_eq!(
        out,
        [
            format!("Shutting down domain {deaf}"),
            format!("Domain {deaf} ignored the request for 10 s: destroying it"),
        ]
    );
    assert_eq!(listed(&mut vm, "deaf"), None);

    // poweroff asks first: a guest that honours it shuts down cleanly, one
    // that ignores it is destroyed after the wait.
    let waiting = |vm: &Qemu| {
        vm.lines()
            .iter()
            .filter(|l| l.contains("waiting for a shutdown request"))
            .count()
    };
    let before = waiting(&vm);
    run(&mut vm, "create lifecycle-idle");
    // Its first line must not land inside the next command's echo.
    let deadline = Instant::now() + STEP;
    while waiting(&vm) == before {
        assert!(Instant::now() < deadline, "polite never came up again");
        std::thread::sleep(Duration::from_millis(20));
    }
    run(&mut vm, "create lifecycle-deaf");
    vm.send_line("poweroff").unwrap();
    vm.expect("Asked 2 domain(s) to shut down", STEP).unwrap();
    vm.expect_all(
        &[
            re(r"Domain polite \(\d+\) has shut down"),
            re(r"Destroying domain deaf \(\d+\)"),
        ],
        STEP,
    )
    .unwrap();
    vm.expect("dom0: powering off", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}
