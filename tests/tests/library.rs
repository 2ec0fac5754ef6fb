//! The guest library (issue 7): dom0 reads domain configurations and images
//! from an ext4 filesystem on one of its disks (`library.img`, made by
//! `scripts/build.sh` with `mke2fs -d`), attached read-only as a virtio
//! disk; dom0 alone boots (`bundle-library.cpio`), everything else is
//! created from its shell.
//!
//! - `fs-ls` lists the library's directories and files.
//! - `create /tests/printer.toml` and `create /guests/demo.toml` start
//!   guests whose output is seen, and `list` shows them.
//! - A missing file, a file that is no configuration, a configuration whose
//!   image is missing and an unknown boot module each give one error line,
//!   and the shell goes on.
//! - Without the disk, `fs-ls` and `create /path` say there is no library.

use std::time::Duration;
use tern_tests::shell::{self, PROMPT};
use tern_tests::{Qemu, image, re};

const STEP: Duration = Duration::from_secs(60);

/// Boots dom0 alone with the shell, and the library as its first disk
/// when `with_library`.
fn boot(with_library: bool) -> Qemu {
    let mut args = Vec::new();
    if with_library {
        let lib = image("library.img").unwrap();
        args = vec![
            "-drive".to_string(),
            format!(
                "file={},if=none,format=raw,readonly=on,id=lib",
                lib.display()
            ),
            "-device".to_string(),
            "virtio-blk-device,drive=lib".to_string(),
        ];
    }
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(image("bundle-library.cpio").unwrap())
        .append("loglevel=warn -- dom0.shell")
        .args(args)
        .time_limit(Duration::from_secs(180))
        .fail_on("dom0: cannot start")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if with_library {
        vm.expect(
            "dom0: guest library on vda (label 'tern-library'): 'fs-ls' lists it",
            STEP,
        )
        .unwrap();
    }
    vm.expect("dom0: shell ready; 'help' lists the verbs", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    vm
}

/// `fs-ls`'s line for a file: its size right-aligned, then its name.
fn file_line(lines: &[String], name: &str) -> bool {
    let r = re(&format!(r"^ *\d+  {}$", regex_escape(name)));
    lines.iter().any(|l| r.is_match(l))
}

fn regex_escape(s: &str) -> String {
    s.replace('.', r"\.")
}

/// `shell::run` with this file's step.
fn run(vm: &mut Qemu, cmd: &str) -> Vec<String> {
    shell::run(vm, cmd, STEP)
}

fn seen_or_expect(vm: &mut Qemu, pattern: &str) {
    shell::seen_or_expect(vm, pattern, STEP)
}

fn poweroff(vm: &mut Qemu) {
    shell::poweroff(vm, STEP)
}

#[test]
fn lists_creates_and_refuses_from_the_library() {
    let mut vm = boot(true);

    let root = run(&mut vm, "fs-ls");
    for dir in ["guests/", "tests/"] {
        assert!(
            root.iter().any(|l| l.ends_with(&format!("<dir>  {dir}"))),
            "fs-ls: no {dir} in {root:?}"
        );
    }
    let guests = run(&mut vm, "fs-ls /guests");
    for f in ["demo-guest", "demo.toml", "echo-guest", "echo.toml"] {
        assert!(file_line(&guests, f), "fs-ls /guests: no {f} in {guests:?}");
    }
    assert_eq!(guests.len(), 4, "{guests:?}");
    let one = run(&mut vm, "fs-ls /guests/demo.toml");
    assert!(one.len() == 1 && file_line(&one, "demo.toml"), "{one:?}");

    // Bad paths: one line each, and the shell goes on.
    let bad = [
        (
            "create /guests/nope.toml",
            "error: create: /guests/nope.toml: no such file or directory",
        ),
        (
            "create /guests/demo-guest",
            "error: create: /guests/demo-guest: not a domain configuration (*.toml)",
        ),
        (
            "create /tests/lost.toml",
            "error: create: lost: image /tests/missing-guest: no such file or directory",
        ),
        (
            "create /guests",
            "error: create: /guests: not a domain configuration (*.toml)",
        ),
        (
            "fs-ls /nope",
            "error: fs-ls: /nope: no such file or directory",
        ),
        (
            "create nope",
            "error: create: no boot module 'nope' (library files go by path: fs-ls lists them)",
        ),
    ];
    for (cmd, want) in bad {
        assert_eq!(run(&mut vm, cmd), [want], "{cmd}");
    }

    // A relative path is taken from the root. The guest runs until asked.
    vm.send_line("create tests/lifecycle-idle.toml").unwrap();
    let id = vm
        .expect(re(r"Started domain polite \(id (\d+)\)"), STEP)
        .unwrap()
        .group(1)
        .to_string();
    seen_or_expect(
        &mut vm,
        &format!("lifecycle: polite \\(domain {id}\\) waiting for a shutdown request"),
    );
    let listed = run(&mut vm, "list polite");
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with("polite") && l.split_whitespace().nth(1) == Some(id.as_str())),
        "list: {listed:?}"
    );
    // A reboot makes it again from the library.
    vm.send_line("reboot -w polite").unwrap();
    let again = vm
        .expect(re(r"dom0: rebooted polite as domain (\d+)"), STEP)
        .unwrap()
        .group(1)
        .to_string();
    vm.expect(PROMPT, STEP).unwrap();
    seen_or_expect(
        &mut vm,
        &format!("lifecycle: polite \\(domain {again}\\) waiting for a shutdown request"),
    );
    vm.send_line("destroy polite").unwrap();
    vm.expect(PROMPT, STEP).unwrap();

    vm.send_line("create /guests/demo.toml").unwrap();
    let id = vm
        .expect(re(r"Started domain demo \(id (\d+)\)"), STEP)
        .unwrap()
        .group(1)
        .to_string();
    seen_or_expect(&mut vm, &format!("hello from demo \\(domain {id}\\)"));
    seen_or_expect(&mut vm, &format!("dom0: domain demo \\({id}\\) exited"));

    // Still answering.
    assert!(run(&mut vm, "list")[0].starts_with("Name"));
    poweroff(&mut vm);
}

#[test]
fn without_the_disk_there_is_no_library() {
    let mut vm = boot(false);
    let no = "no guest library (no dom0 disk holds an ext2/3/4 filesystem; dom0.fs=vdX names one)";
    assert_eq!(
        run(&mut vm, "fs-ls /guests"),
        [format!("error: fs-ls: {no}")]
    );
    assert_eq!(
        run(&mut vm, "create /guests/demo.toml"),
        [format!("error: create: {no}")]
    );
    assert!(run(&mut vm, "list")[0].starts_with("Name"));
    poweroff(&mut vm);
}
