//! The block back end (issue 6): dom0 serves each domain's `disk = [...]`
//! from a virtio disk QEMU attaches (a scratch raw image), over a shared
//! ring (`specs/blkif.md`). Bundle `bundle-blk.cpio` from
//! `scripts/build.sh`; every domain is created from dom0's shell.
//!
//! - A domain writes 4 MiB of the pattern to its region (dom0 keeps several
//!   of its requests at the disk at once), is destroyed and
//!   created again and reads the same bytes back; a read-only view of the
//!   region reads and refuses writes; the image file holds the pattern in
//!   the region and nothing outside it.
//! - A domain killed in the middle of its writes loses none it was told
//!   were done, and another domain's disk is served all along.
//! - Both ends offer persistent grants: the writer's data pages stay
//!   mapped in dom0 across its requests, and the bytes read back are intact.
//! - A hostile front end (its own ring, no persistent grants) has its good
//!   read served, gets error statuses for bad grants, huge sectors
//!   and malformed requests, and is disconnected when it breaks the ring;
//!   another domain's disk is served all along.

use std::fs;
use std::time::Duration;
use tern_tests::disk::{FNV1A_START, SECTOR, Scratch, fill_sector, fnv1a};
use tern_tests::shell::{self, PROMPT};
use tern_tests::{Qemu, image, re};

const STEP: Duration = Duration::from_secs(60);
/// The scratch disk: 24 MiB.
const DISK_BYTES: u64 = 24 << 20;
/// blk-data's region (guests/tests/configs/blk-data.toml).
const DATA_START: usize = 2048;
/// What blk-data writes: 4 MiB.
const DATA_SECTORS: usize = 8192;

/// Boots the blk bundle with the shell and `disk` as the first virtio disk.
fn boot(disk: &Scratch) -> Qemu {
    let mut vm = Qemu::builder()
        .smp(2)
        .initrd(image("bundle-blk.cpio").unwrap())
        .append("loglevel=warn -- dom0.shell")
        .args([
            "-drive".to_string(),
            format!("file={},if=none,format=raw,id=d0", disk.path().display()),
            "-device".to_string(),
            "virtio-blk-device,drive=d0".to_string(),
        ])
        .time_limit(Duration::from_secs(240))
        .fail_on("blk-io: FAIL")
        .fail_on("blk-hostile: FAIL")
        .fail_on("dom0: cannot start")
        .fail_on("cannot connect")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect(
        re(r"dom0: virtio-blk 0x[0-9a-f]+ \(irq \d+\): 49152 sectors, read-write"),
        STEP,
    )
    .unwrap();
    vm.expect("dom0: shell ready; 'help' lists the verbs", STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    vm
}

/// `create name`, checking that dom0 started it; returns its id.
fn create(vm: &mut Qemu, name: &str) -> u32 {
    vm.send_line(&format!("create {name}.toml")).unwrap();
    let m = vm
        .expect(re(&format!(r"Started domain {name} \(id (\d+)\)")), STEP)
        .unwrap();
    m.group(1).parse().unwrap()
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
fn data_survives_destroy_and_create_and_read_only_refuses_writes() {
    let disk = Scratch::new("blk-data.img", DISK_BYTES);
    let mut vm = boot(&disk);
    let mut want = vec![0u8; DATA_SECTORS * SECTOR];
    for (k, s) in want.chunks_exact_mut(SECTOR).enumerate() {
        fill_sector(k as u64, s);
    }
    let sum = format!("{:016x}", fnv1a(FNV1A_START, &want));

    let first = create(&mut vm, "blk-data");
    vm.expect(
        re(r"\[blk-data\] blk-io: disk of 16384 sectors \(512-byte sectors\), read-write"),
        STEP,
    )
    .unwrap();
    let m = vm
        .expect(
            re(r"\[blk-data\] blk-io: PASS wrote 8192 sectors checksum ([0-9a-f]{16})"),
            STEP,
        )
        .unwrap();
    assert_eq!(m.group(1), sum);
    // It waits to be destroyed; its disk's directories go with it.
    let out = run(&mut vm, "destroy blk-data");
    assert!(out.iter().all(|l| l.contains("dom0: blkback: ")), "{out:?}");
    // Its 4 MiB went to the disk as several requests at once: the front
    // end keeps up to 4 on the ring and dom0 hands each to the disk as it
    // takes it, answering when the disk completes it.
    let released = re(&format!(
        r"dom0: blkback: domain {first} vbd 0 released: (\d+) requests answered, at most (\d+) at the disk at once, (\d+) still there, (\d+) data pages kept mapped"
    ));
    seen_or_expect(&mut vm, released.as_str());
    let lines = vm.lines();
    let m = lines
        .iter()
        .find_map(|l| released.captures(l))
        .expect("the release line");
    let answered: u64 = m[1].parse().unwrap();
    let peak: u64 = m[2].parse().unwrap();
    eprintln!("blk-data's writes: {answered} requests, at most {peak} at the disk at once");
    assert!(answered >= 90, "4 MiB in 44 KiB requests: {answered}");
    assert!(
        (2..=4).contains(&peak),
        "requests at the disk at once: {peak} (the front end keeps up to 4)"
    );
    assert_eq!(&m[3], "0", "all done before the destroy");
    // Persistent grants: the front end's pool of pages (4 requests of 11)
    // stayed mapped from their first request on and carried every write;
    // the read back below (a new domain, a new pool) finds the data intact.
    let kept: usize = m[4].parse().unwrap();
    assert!(
        (11..=44).contains(&kept),
        "data pages kept mapped: {kept} (the front end's pool is 44)"
    );
    assert_eq!(
        run(
            &mut vm,
            &format!("store-ls /local/domain/0/backend/vbd/{first}")
        ),
        [format!(
            "error: store-ls: /local/domain/0/backend/vbd/{first}: ENOENT"
        )]
    );

    let second = create(&mut vm, "blk-data");
    assert_ne!(first, second);
    let m = vm
        .expect(
            re(r"\[blk-data\] blk-io: PASS read back 8192 sectors checksum ([0-9a-f]{16})"),
            STEP,
        )
        .unwrap();
    assert_eq!(m.group(1), sum);
    let m = vm
        .expect(
            re(r"\[blk-data\] blk-io: 4 KiB read through the back end: (\d+) ns average"),
            STEP,
        )
        .unwrap();
    eprintln!("4 KiB read through the back end: {} ns", m.group(1));
    vm.expect(
        format!("dom0: domain blk-data ({second}) exited: poweroff"),
        STEP,
    )
    .unwrap();

    create(&mut vm, "blk-ro");
    vm.expect(
        re(r"\[blk-ro\] blk-io: disk of 16384 sectors \(512-byte sectors\), read-only"),
        STEP,
    )
    .unwrap();
    vm.expect(
        "[blk-ro] blk-io: PASS read-only: read 8 sectors, write refused (read_only)",
        STEP,
    )
    .unwrap();
    vm.expect(re(r"dom0: domain blk-ro \(\d+\) exited: poweroff"), STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    poweroff(&mut vm);

    // The image: the pattern at the region's start, zeros everywhere else.
    let img = fs::read(disk.path()).unwrap();
    let at = DATA_START * SECTOR;
    assert!(
        img[at..at + want.len()] == want[..],
        "the region holds the pattern"
    );
    assert!(img[..at].iter().all(|&b| b == 0), "before the region");
    assert!(
        img[at + want.len()..].iter().all(|&b| b == 0),
        "after the data (the rest of the region and beyond)"
    );
}

#[test]
fn killing_a_domain_mid_write_loses_no_acknowledged_write() {
    let disk = Scratch::new("blk-kill.img", DISK_BYTES);
    let mut vm = boot(&disk);
    create(&mut vm, "blk-busy");
    let kill = create(&mut vm, "blk-kill");
    // Past the first round of blocks: rewrites are under way.
    let acked = re(r"\[blk-kill\] blk-io: kill acked through (\d+)");
    loop {
        let m = vm.expect(acked.clone(), STEP).unwrap();
        if m.group(1).parse::<u64>().unwrap() >= 150 {
            break;
        }
    }
    vm.send_line("destroy blk-kill").unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    seen_or_expect(&mut vm, r"\[blk-busy\] blk-io: PASS busy 1000 rounds");
    // Every write blk-kill was told was done, up to its last words.
    let last = vm
        .lines()
        .iter()
        .filter_map(|l| acked.captures(l).map(|c| c[1].parse::<i64>().unwrap()))
        .max()
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    assert_eq!(
        run(
            &mut vm,
            &format!("store-ls /local/domain/0/backend/vbd/{kill}")
        ),
        [format!(
            "error: store-ls: /local/domain/0/backend/vbd/{kill}: ENOENT"
        )]
    );
    create(&mut vm, "blk-check");
    let m = vm
        .expect(
            re(r"\[blk-check\] blk-io: check durable through (-?\d+), (\d+) corrupt, (\d+) never written"),
            STEP,
        )
        .unwrap();
    let durable: i64 = m.group(1).parse().unwrap();
    assert!(
        durable >= last,
        "acknowledged through {last}, on the disk through {durable}"
    );
    assert_eq!(m.group(2), "0", "blocks that match no write");
    assert_eq!(m.group(3), "0", "every block was written");
    vm.expect(re(r"dom0: domain blk-check \(\d+\) exited: poweroff"), STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    poweroff(&mut vm);
}

#[test]
fn a_hostile_front_end_is_refused_and_others_are_served() {
    let disk = Scratch::new("blk-hostile.img", DISK_BYTES);
    let mut vm = boot(&disk);
    create(&mut vm, "blk-busy");
    let id = create(&mut vm, "blk-hostile");
    let m = vm
        .expect_all(
            &[
                re(r"\[blk-hostile\] blk-hostile: PASS (\d+) refused, a good read served"),
                re(&format!(
                    r"dom0: blkback: domain {id} vbd 0: .*: disconnected"
                )),
                re(r"\[blk-hostile\] blk-hostile: PASS disconnected \(back end state Closed\)"),
            ],
            STEP,
        )
        .unwrap();
    assert_eq!(m[0].group(1), "9");
    seen_or_expect(&mut vm, r"\[blk-busy\] blk-io: PASS busy 1000 rounds");
    for what in [
        "a grant never made: bad_request",
        "a grant beyond the table: bad_request",
        "sector 2^64-2: out_of_range",
        "sector 2^63: out_of_range",
        "the sector past the end: out_of_range",
        "200 segments: bad_request",
        "0 segments: bad_request",
        "op 99: bad_request",
        "a segment past its page: bad_request",
    ] {
        let line = format!("[blk-hostile] blk-hostile: refused {what}");
        assert!(vm.lines().iter().any(|l| l == &line), "{line}");
    }
    seen_or_expect(
        &mut vm,
        r"dom0: domain blk-hostile \(\d+\) exited: poweroff",
    );
    // After all this, a new domain's disk still works.
    seen_or_expect(&mut vm, r"dom0: domain blk-busy \(\d+\) exited: poweroff");
    create(&mut vm, "blk-busy");
    vm.expect(re(r"\[blk-busy\] blk-io: PASS busy 1000 rounds"), STEP)
        .unwrap();
    vm.expect(PROMPT, STEP).unwrap();
    poweroff(&mut vm);
}
