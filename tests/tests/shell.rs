//! dom0's shell (`dom0.shell`), driven through the serial console: verbs,
//! errors, line editing, and `poweroff` ending QEMU with status 0; and
//! `scripts/run.sh` fed from a pipe.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tern_tests::shell::{self, PROMPT};
use tern_tests::{Qemu, Regex, free_port, image, re, target_dir};

const STEP: Duration = Duration::from_secs(30);

/// The `list` header, in xl's columns.
fn header() -> Regex {
    re(r"^Name +ID +Mem +VCPUs +State +Time\(s\)$")
}

/// A `list` row: (name, id, MiB, vCPUs, state letters).
fn row() -> Regex {
    re(r"^(\S+) +(\d+) +(\d+) +(\d+) +([rbpscd-]{6}) +\d+\.\d$")
}

/// Boots `initrd` (default: the demo bundle) with the shell on 2 CPUs and
/// waits until the shell runs. The caller waits for the prompt: matching a
/// prompt consumes the rest of its line, which may already hold a report.
fn boot(initrd: Option<PathBuf>) -> Qemu {
    let mut b = Qemu::builder().smp(2).append("-- dom0.shell");
    if let Some(i) = initrd {
        b = b.initrd(i);
    }
    let mut vm = b.spawn().unwrap_or_else(|e| panic!("{e}"));
    vm.expect("dom0: shell ready; 'help' lists the verbs", STEP)
        .unwrap();
    vm
}

/// The `list` rows in `out` as (name, id, state), checking the header.
fn rows(out: &[String]) -> Vec<(String, u32, String)> {
    assert!(
        out.iter().any(|l| header().is_match(l)),
        "no list header in {out:?}"
    );
    out.iter()
        .filter_map(|l| row().captures(l))
        .map(|c| (c[1].to_owned(), c[2].parse().unwrap(), c[5].to_owned()))
        .collect()
}

/// help, list, create → the guest runs → gone from list, info, errors, line
/// editing, poweroff.
/// `shell::run` with this file's step.
fn run(vm: &mut Qemu, cmd: &str) -> Vec<String> {
    shell::run(vm, cmd, STEP)
}

fn poweroff(vm: &mut Qemu) {
    shell::poweroff(vm, STEP)
}

#[test]
fn shell_verbs_on_the_demo_bundle() {
    let mut vm = boot(None);
    // The autostarted demo guest ran and was reaped.
    vm.expect("dom0: domain demo (1) exited: poweroff", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();

    let help = run(&mut vm, "help");
    for verb in [
        "list", "create", "destroy", "pause", "unpause", "shutdown", "info", "poweroff",
    ] {
        assert!(
            help.iter().any(|l| l.starts_with(&format!(" {verb} "))),
            "help lists {verb}: {help:?}"
        );
    }
    let usage = run(&mut vm, "destroy --help");
    assert_eq!(usage[0], "Usage: destroy <Domain>");

    let table = rows(&run(&mut vm, "list"));
    assert_eq!(table.len(), 1, "only dom0 is left: {table:?}");
    assert_eq!(table[0], ("Domain-0".into(), 0, "r-----".into()));

    vm.send_line("create demo.toml").unwrap();
    vm.expect("Parsing config from demo.toml", STEP).unwrap();
    // The guest may print before dom0 says it started it.
    let m = vm
        .expect_all(
            &[
                re(r"Started domain demo \(id (\d+)\)"),
                re(r"\[demo\] hello from demo \(domain (\d+)\)"),
            ],
            STEP,
        )
        .unwrap();
    let id = m[0].group(1).to_owned();
    assert_eq!(m[1].group(1), id);
    vm.expect(format!("dom0: domain demo ({id}) exited: poweroff"), STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    let table = rows(&run(&mut vm, "list"));
    assert!(
        table.iter().all(|(name, ..)| name != "demo"),
        "demo is gone: {table:?}"
    );

    let info = run(&mut vm, "info");
    let field = |key: &str| -> String {
        let r = re(&format!(r"^{key} +: (.+)$"));
        info.iter()
            .find_map(|l| r.captures(l).map(|c| c[1].to_owned()))
            .unwrap_or_else(|| panic!("info has {key}: {info:?}"))
    };
    assert_eq!(field("guest_abi"), "1.0");
    assert_eq!(field("control_abi"), "1.0");
    assert_eq!(field("nr_cpus"), "2");
    let total: u64 = field("total_memory").parse().unwrap();
    let free: u64 = field("free_memory").parse().unwrap();
    assert!(0 < free && free < total && total <= 1024, "{total} {free}");

    // Each mistake gives one error line, and the shell goes on.
    for (cmd, error) in [
        (
            "frobnicate",
            "error: unknown command 'frobnicate' (type 'help' for the list)",
        ),
        ("destroy nosuch", "error: destroy: no domain 'nosuch'"),
        ("pause 42", "error: pause: no domain '42'"),
        (
            "unpause",
            "error: unpause: missing <Domain> (usage: unpause <Domain>)",
        ),
        ("list demo", "error: list: no domain 'demo'"),
        (
            "create nosuch.toml",
            "error: create: no boot module 'nosuch.toml' (library files go by path: fs-ls lists them)",
        ),
        (
            "create demo-guest",
            "error: create: demo-guest is not a domain configuration (*.toml)",
        ),
        (
            "destroy Domain-0",
            "error: destroy: Domain-0 cannot be destroyed (use 'poweroff')",
        ),
    ] {
        assert_eq!(run(&mut vm, cmd), [error], "{cmd}");
    }
    assert_eq!(
        run(&mut vm, "shutdown Domain-0"),
        ["error: shutdown: Domain-0 cannot be asked (use 'poweroff')"]
    );
    let out = run(&mut vm, "pause 0");
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("error: pause: Domain-0: "), "{out:?}");

    // Line editing: backspace, Ctrl-U, left arrow + insert, history.
    vm.send_line("lixx\x7f\x7fst 0").unwrap();
    vm.expect(header(), STEP).unwrap();
    vm.expect(re(r"^Domain-0 +0 "), STEP).unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    vm.send_line("garbage\x15ifo\x1b[D\x1b[Dn").unwrap();
    vm.expect(re(r"^guest_abi +: 1\.0$"), STEP).unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    // Up twice recalls "list 0" (the line before "info").
    vm.send_line("\x1b[A\x1b[A").unwrap();
    vm.expect(header(), STEP).unwrap();
    vm.expect(PROMPT, STEP).unwrap();

    poweroff(&mut vm);
}

/// A boot bundle with dom0 and `forever`, a printer guest that runs until it
/// is destroyed (not autostarted).
fn forever_bundle() -> PathBuf {
    let dir = target_dir().join("shell-test");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("forever.toml");
    std::fs::write(
        &config,
        "name = \"forever\"\nmemory = 4\nimage = \"printer\"\nautostart = false\n",
    )
    .unwrap();
    let guests = target_dir().join("aarch64-unknown-none/release");
    let pack = target_dir().join("release/tern-pack");
    for f in [&pack, &guests.join("dom0"), &guests.join("printer")] {
        assert!(
            f.is_file(),
            "{} is missing: run scripts/build.sh",
            f.display()
        );
    }
    let out = dir.join("bundle-shell.cpio");
    let arg = |name: &str, path: &Path| format!("{name}={}", path.display());
    let status = Command::new(&pack)
        .arg("bundle")
        .arg("-o")
        .arg(&out)
        .arg(arg("dom0", &guests.join("dom0")))
        .arg(arg("printer", &guests.join("printer")))
        .arg(arg("forever.toml", &config))
        .status()
        .unwrap();
    assert!(status.success(), "tern-pack: {status:?}");
    out
}

/// The state letters `list` shows for `name`, if it is listed.
fn state_of(vm: &mut Qemu, name: &str) -> Option<String> {
    rows(&run(vm, "list"))
        .into_iter()
        .find(|(n, ..)| n == name)
        .map(|(_, _, state)| state)
}

/// create → pause → unpause → destroy of a live domain, then poweroff destroys
/// what is left.
#[test]
fn shell_pauses_and_destroys_a_running_domain() {
    let mut vm = boot(Some(forever_bundle()));
    vm.expect(PROMPT, STEP).unwrap();
    vm.send_line("create forever").unwrap();
    vm.expect("Parsing config from forever.toml", STEP).unwrap();
    vm.expect("Started domain forever (id 1)", STEP).unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    vm.expect(re(r"^\[forever\] printer: tick \d+$"), STEP)
        .unwrap();
    assert_eq!(run(&mut vm, "pause forever"), Vec::<String>::new());
    assert_eq!(state_of(&mut vm, "forever").as_deref(), Some("--p---"));
    // Paused: it prints nothing more.
    let ticks = |vm: &Qemu| {
        vm.lines()
            .iter()
            .filter(|l| l.contains("[forever] printer: tick "))
            .count()
    };
    // Lines the guest printed just before the pause may still be on their
    // way through QEMU's serial output: let them land first.
    std::thread::sleep(Duration::from_millis(300));
    let before = ticks(&vm);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ticks(&vm), before, "a paused domain does not run");
    assert_eq!(
        run(&mut vm, "pause 1"),
        ["error: pause: forever: InvalidState (-11)"]
    );
    run(&mut vm, "unpause 1");
    let state = state_of(&mut vm, "forever").expect("forever is listed");
    assert!(state == "r-----" || state == "-b----", "{state}");
    assert_eq!(run(&mut vm, "destroy forever"), Vec::<String>::new());
    assert_eq!(state_of(&mut vm, "forever"), None, "destroyed");
    assert_eq!(
        run(&mut vm, "destroy forever"),
        ["error: destroy: no domain 'forever'"]
    );
    // poweroff destroys the domains left.
    vm.send_line("create forever.toml").unwrap();
    vm.expect("Started domain forever (id 2)", STEP).unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    vm.send_line("poweroff").unwrap();
    vm.expect("Destroying domain forever (2)", STEP).unwrap();
    vm.expect("dom0 powered off: system off", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}

/// `printf 'list\npoweroff\n' | scripts/run.sh` prints the domain table and
/// exits with status 0 (input typed before the hypervisor is up is kept).
#[test]
fn run_sh_reads_commands_from_a_pipe() {
    image("hyp.bin").unwrap();
    image("bundle.cpio").unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut child = Command::new("bash")
        .arg(root.join("scripts/run.sh"))
        // A port of its own: the default (5555) may be taken by another
        // run.sh on this machine, and QEMU would then not start.
        .args(["--no-build", "--smp", "2", "--net-port"])
        .arg(free_port().to_string())
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"list\npoweroff\n")
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("run.sh did not exit: {}", reader.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader.join().unwrap();
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(status.success(), "run.sh exit status {status:?}:\n{out}");
    // Other domains' lines may come between a prompt and its echo.
    assert!(lines.iter().any(|l| l.ends_with("list")), "{out}");
    assert!(lines.iter().any(|l| header().is_match(l)), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| re(r"^Domain-0 +0 +\d+ +\d+ +r----- ").is_match(l)),
        "{out}"
    );
    assert!(lines.contains(&"dom0: powering off"), "{out}");
}

/// `sched-credit` lists and sets weights and caps through the scheduler;
/// `vcpu-pin` sets affinity; bad values and unknown domains give one error
/// line each.
#[test]
fn sched_credit_and_vcpu_pin() {
    let mut vm = boot(None);
    vm.expect("dom0: domain demo (1) exited: poweroff", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    let sched_row = re(r"^(\S+) +(\d+) +(\d+) +(\d+)$");
    let table = run(&mut vm, "sched-credit");
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["Name", "ID", "Weight", "Cap"]
    );
    let dom0: Vec<&str> = table[1].split_whitespace().collect();
    assert_eq!(dom0, ["Domain-0", "0", "256", "0"], "defaults");
    assert!(run(&mut vm, "sched-credit -d 0 -w 512 -c 50").is_empty());
    let after = run(&mut vm, "sched-credit -d Domain-0");
    assert!(sched_row.is_match(&after[1]), "{after:?}");
    assert_eq!(
        after[1].split_whitespace().collect::<Vec<_>>(),
        ["Domain-0", "0", "512", "50"]
    );
    for bad in [
        "sched-credit -d 0 -w 0",
        "sched-credit -d 0 -c 101",
        "sched-credit -d nosuch",
    ] {
        let out = run(&mut vm, bad);
        assert_eq!(out.len(), 1, "{bad}: {out:?}");
        assert!(out[0].starts_with("error: "), "{bad}: {out:?}");
    }
    assert!(run(&mut vm, "vcpu-pin 0 0 0-1").is_empty());
    for bad in ["vcpu-pin 0 3 0", "vcpu-pin 0 0 7", "vcpu-pin 0 0 x"] {
        let out = run(&mut vm, bad);
        assert_eq!(out.len(), 1, "{bad}: {out:?}");
        assert!(out[0].starts_with("error: "), "{bad}: {out:?}");
    }
    poweroff(&mut vm);
}

/// `vcpu-list` shows xl's columns for every vCPU, follows `vcpu-pin`, and
/// `dmesg` prints the hypervisor's log ring again (its boot lines included).
#[test]
fn vcpu_list_and_dmesg() {
    let mut vm = boot(None);
    vm.expect("dom0: domain demo (1) exited: poweroff", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    let table = run(&mut vm, "vcpu-list");
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["Name", "ID", "VCPU", "CPU", "State", "Time(s)", "Affinity"]
    );
    // dom0 runs this very command on its only vCPU.
    let dom0 = re(r"^Domain-0 +0 +0 +[01] +r +\d+\.\d +all$");
    assert!(dom0.is_match(&table[1]), "{table:?}");
    assert!(run(&mut vm, "vcpu-pin 0 0 1").is_empty());
    let one = run(&mut vm, "vcpu-list Domain-0");
    assert!(one[1].ends_with(" 1"), "affinity follows vcpu-pin: {one:?}");
    assert_eq!(
        run(&mut vm, "vcpu-list nosuch"),
        ["error: vcpu-list: no domain 'nosuch'"]
    );
    // The boot line is in the log once; dmesg prints it a second time.
    let cpus_line = |vm: &Qemu| {
        vm.lines()
            .iter()
            .filter(|l| l.contains("INFO  cpus: 2 in the device tree"))
            .count()
    };
    assert_eq!(cpus_line(&vm), 1);
    vm.send_line("dmesg").unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    assert_eq!(cpus_line(&vm), 2, "dmesg repeats the hypervisor's boot log");
    poweroff(&mut vm);
}
