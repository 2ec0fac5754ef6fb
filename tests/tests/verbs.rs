//! The shell's monitoring verbs, driven through the serial console (issue 7):
//!
//! - `top` redraws at least twice, with dom0's hypercalls growing and a
//!   disk domain's counters (its I/O requests as `block-list` counts them),
//!   and a key brings the prompt back;
//! - `block-list` shows a domain's virtual disk as the back end serves it
//!   (connected, with the front end's event channel and ring reference, the
//!   region and mode of its configuration), and only the header for a
//!   domain without one;
//! - `network-list` shows each interface (MAC, connected, event channel and
//!   both ring references), and only the header for a domain without one;
//! - a domain that does not exist is one error line, and the shell goes on.
//!
//! Bundles `bundle-blk.cpio` (blk-data, created from the shell, on a scratch
//! virtio disk) and `bundle-net.cpio` (net-echo and net-client autostart).

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tern_tests::shell::{self, PROMPT};
use tern_tests::{Qemu, Regex, image, re};

const STEP: Duration = Duration::from_secs(60);

/// A zeroed 24 MiB scratch disk named for this test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("tern-verbs-{}-{name}", std::process::id()));
        fs::write(&path, vec![0u8; 24 << 20]).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Boots `bundle` with the shell on 2 CPUs and `extra` QEMU arguments, and
/// waits for the prompt.
fn boot(bundle: &str, extra: Vec<String>) -> Qemu {
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(image(bundle).unwrap())
        .append("loglevel=warn -- dom0.shell")
        .args(extra)
        .time_limit(Duration::from_secs(240))
        .fail_on("blk-io: FAIL")
        .fail_on("net-client: FAIL")
        .fail_on("echo: FAIL")
        .fail_on("dom0: cannot start")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect("dom0: shell ready; 'help' lists the verbs", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    vm
}

/// The lines of `out` that `r` matches.
fn matching<'a>(out: &'a [String], r: &Regex) -> Vec<&'a String> {
    out.iter().filter(|l| r.is_match(l)).collect()
}

/// Runs `cmd` until a line matches `want` (a device connects in its own
/// time); returns that run's output.
fn run_until(vm: &mut Qemu, cmd: &str, want: &Regex) -> Vec<String> {
    let deadline = Instant::now() + STEP;
    loop {
        let out = run(vm, cmd);
        if !matching(&out, want).is_empty() {
            return out;
        }
        assert!(Instant::now() < deadline, "{cmd}: never {want:?}: {out:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A `top` domain line: (name, id, hypercalls, events, io).
fn top_row(line: &str) -> Option<(String, u32, u64, u64, u64)> {
    let c = re(r"^(\S+) +(\d+) [rbpscd-]{6} +\d+\.\d +(?:\d+\.\d|-) +\d+ +\d+ +(\d+) +(?:\d+|-) +(\d+) +(?:\d+|-) +(\d+) +(?:\d+|-)$")
        .captures(line)?;
    Some((
        c[1].to_owned(),
        c[2].parse().ok()?,
        c[3].parse().ok()?,
        c[4].parse().ok()?,
        c[5].parse().ok()?,
    ))
}

/// `shell::run` with this file's step.
fn run(vm: &mut Qemu, cmd: &str) -> Vec<String> {
    shell::run(vm, cmd, STEP)
}

fn poweroff(vm: &mut Qemu) {
    shell::poweroff(vm, STEP)
}

#[test]
fn top_and_block_list_on_a_disk_domain() {
    let disk = Scratch::new("data.img");
    let mut vm = boot(
        "bundle-blk.cpio",
        vec![
            "-drive".into(),
            format!("file={},if=none,format=raw,id=d0", disk.0.display()),
            "-device".into(),
            "virtio-blk-device,drive=d0".into(),
        ],
    );
    // blk-data writes 4 MiB to its disk, then sleeps until destroyed: its
    // disk stays connected and its request count stays put.
    vm.send_line("create blk-data.toml").unwrap();
    let id: u32 = vm
        .expect(re(r"Started domain blk-data \(id (\d+)\)"), STEP)
        .unwrap()
        .group(1)
        .parse()
        .unwrap();
    vm.expect(re(r"\[blk-data\] blk-io: PASS wrote 8192 sectors"), STEP)
        .unwrap();

    // blk-data.toml: disk = ["target=vda, start=2048, sectors=16384"].
    let header = re(r"^Vdev +BE +handle +state +evt-ch +ring-ref +target +region +mode +requests$");
    let connected = re(r"^(\S+) +0 +0 +4 +(\d+) +(\d+) +vda +2048\+16384 +w +(\d+)$");
    let out = run_until(&mut vm, "block-list blk-data", &connected);
    assert_eq!(out[0], format!("blk-data ({id}):"));
    assert_eq!(matching(&out, &header).len(), 1, "{out:?}");
    assert_eq!(matching(&out, &connected).len(), 1, "one disk: {out:?}");
    let requests: u64 = connected.captures(&out[2]).unwrap()[4].parse().unwrap();
    // 4 MiB in requests of at most 11 pages, a flush, the first read.
    assert!(requests >= 8192 / 88, "{out:?}");
    // Without a domain: every domain with a disk, blk-data alone.
    let all = run(&mut vm, "block-list");
    assert_eq!(all.first(), Some(&format!("blk-data ({id}):")), "{all:?}");
    assert_eq!(matching(&all, &connected).len(), 1, "{all:?}");
    // dom0 has no virtual disk: its header and nothing else.
    let none = run(&mut vm, "block-list 0");
    assert_eq!(none.len(), 2, "{none:?}");
    assert!(header.is_match(&none[1]), "{none:?}");
    // Nor has blk-data an interface.
    let none = run(&mut vm, "network-list blk-data");
    assert_eq!(none.len(), 2, "{none:?}");
    assert!(none[1].starts_with("Idx BE Mac Addr."), "{none:?}");
    for cmd in ["block-list nosuch", "network-list 77"] {
        let out = run(&mut vm, cmd);
        let verb = cmd.split(' ').next().unwrap();
        let what = cmd.split(' ').nth(1).unwrap();
        assert_eq!(out, [format!("error: {verb}: no domain '{what}'")]);
    }
    let help = run(&mut vm, "top --help");
    assert_eq!(help[0], "Usage: top");

    // top: three refreshes, then a key returns to the prompt.
    vm.send_line("top").unwrap();
    let mut frames = Vec::new();
    for n in 1..=3 {
        vm.expect(re(&format!("tern top - refresh {n}, every 1 s")), STEP)
            .unwrap();
        // A frame's domain lines come after its title, dom0 first.
        vm.expect(re(&format!(r"^blk-data +{id} ")), STEP).unwrap();
        let lines = vm.lines();
        let title = lines
            .iter()
            .rposition(|l| l.contains(&format!("tern top - refresh {n},")))
            .unwrap();
        let rows: Vec<_> = lines[title..].iter().filter_map(|l| top_row(l)).collect();
        frames.push(rows);
    }
    vm.send_line("q").unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    let row = |frame: &[(String, u32, u64, u64, u64)], name: &str| {
        frame
            .iter()
            .find(|r| r.0 == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} row in {frame:?}"))
    };
    let (d0_first, d0_last) = (row(&frames[0], "Domain-0"), row(&frames[2], "Domain-0"));
    assert_eq!(d0_first.1, 0);
    assert!(d0_last.2 > d0_first.2, "dom0's hypercalls grow: {frames:?}");
    for frame in &frames {
        let (_, _, hypercalls, events, io) = row(frame, "blk-data");
        assert!(hypercalls > 0 && events > 0, "{frame:?}");
        // Idle since its PASS line: what block-list said it was served.
        assert_eq!(io, requests, "{frame:?}");
    }
    let lines = vm.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("NAME ") && l.contains("HYPERCALLS") && l.contains("IO_REQS")),
        "header"
    );
    // The shell goes on after top.
    let list = run(&mut vm, "list");
    assert!(list.iter().any(|l| l.starts_with("blk-data ")), "{list:?}");
    poweroff(&mut vm);
}

#[test]
fn network_list_shows_connected_interfaces() {
    let mut vm = boot("bundle-net.cpio", Vec::new());
    let m = vm
        .expect_all(
            &[
                re(r"net-client: PASS sent"),
                re(r"domain net-client \((\d+)\) exited: poweroff"),
            ],
            STEP,
        )
        .unwrap();
    let client: u32 = m[1].group(1).parse().unwrap();
    // dom0 started it before the shell came up.
    let started = re(r"started net-echo \(domain (\d+)\)");
    let id: u32 = vm
        .lines()
        .iter()
        .find_map(|l| started.captures(l).map(|c| c[1].parse().unwrap()))
        .expect("net-echo started");
    // The console is quiet now: net-echo serves, net-client is gone.
    vm.expect(PROMPT, STEP).unwrap();
    let header = re(r"^Idx +BE +Mac Addr\. +handle +state +evt-ch +tx-/rx-ring-ref +frames$");
    let mac = format!("00:16:3e:00:{id:02x}:00");
    let row = re(&format!(r"^0 +0 +{mac} +0 +4 +(\d+) +(\d+)/(\d+) +(\d+)$"));
    let out = run_until(&mut vm, &format!("network-list {id}"), &row);
    assert_eq!(out[0], format!("net-echo ({id}):"), "{out:?}");
    assert_eq!(matching(&out, &header).len(), 1, "{out:?}");
    let c = row.captures(&out[2]).unwrap();
    assert_ne!(c[2].to_owned(), c[3].to_owned(), "two rings: {out:?}");
    // It echoed 1 MiB: at least 700 full frames each way.
    let frames: u64 = c[4].parse().unwrap();
    assert!(frames >= 1400, "{out:?}");
    // Without a domain: net-echo alone (net-client was destroyed).
    let all = run(&mut vm, "network-list");
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(row.is_match(&all[2]), "{all:?}");
    // A domain with an interface has no disk: the header alone.
    let none = run(&mut vm, &format!("block-list {id}"));
    assert_eq!(none.len(), 2, "{none:?}");
    assert!(none[1].starts_with("Vdev "), "{none:?}");
    // No domain has a disk.
    assert_eq!(
        run(&mut vm, "block-list"),
        ["No domain has a virtual block device"]
    );
    assert_eq!(
        run(&mut vm, &format!("network-list {client}")),
        [format!("error: network-list: no domain '{client}'")]
    );
    poweroff(&mut vm);
}
