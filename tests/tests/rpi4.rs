//! Raspberry Pi 4: the hypervisor, dom0 and a guest on QEMU's `raspi4b`,
//! dom0's SD card served to a guest as a disk, and the SD-card image
//! `scripts/mksdcard.sh` builds for the real board.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tern_tests::disk::{FNV1A_START, Scratch, fill_sector, fnv1a};
use tern_tests::{Board, Qemu, image, images_dir, re, rpi4_dtb, target_dir};

/// Generous: TCG on a loaded 2-core CI machine is slow.
const STEP: Duration = Duration::from_secs(30);

/// QEMU's raspi4b (4 CPUs released from the firmware's spin table, GIC-400,
/// PL011 console, no PSCI) boots the card's kernel8.img and bundle: dom0
/// starts the demo guest, and dom0's power-off goes through the BCM2835
/// power manager's watchdog, which ends QEMU with status 0.
#[test]
fn raspi4b_boots_dom0_and_the_demo_guest_then_powers_off() {
    let mut vm = Qemu::builder()
        .board(Board::Rpi4)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect(
        re(r"tern hypervisor v\d+\.\d+\.\d+ .*at EL2 \(entered at EL2\)"),
        STEP,
    )
    .unwrap();
    let cpu_lines: Vec<String> = (0..4)
        .map(|k| format!(r"cpu {k} online \(mpidr 0x{k}\)"))
        .collect();
    let mut patterns = vec![
        // QEMU describes the low 960 MiB (1 GiB less the VideoCore's share).
        re(r"memory: bank \[0x0000000000-0x003c000000\) 960 MiB"),
        re(r"cpus: 4 in the device tree"),
        re(r"gic: v2 dist \[0x00ff841000-0x00ff842000\) cpu \[0x00ff842000-0x00ff844000\)"),
        re(r"psci: none"),
        re(r"gic: v2, .*virtualization extensions"),
        re(r"all 4 CPUs online"),
    ];
    patterns.extend(cpu_lines.iter().map(|p| re(p)));
    vm.expect_all(&patterns, STEP).unwrap();
    vm.expect("[dom0] dom0: tern dom0 v", STEP).unwrap();
    vm.expect("[demo] hello from demo (domain 1)", STEP)
        .unwrap();
    vm.expect("[dom0] dom0: domain demo (1) exited: poweroff", STEP)
        .unwrap();
    vm.expect("dom0 powered off: system off", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}

/// The SD card the test attaches: QEMU's SD card model wants a power of two.
const CARD_BYTES: u64 = 64 << 20;
/// sd-data's region of the card (guests/tests/configs/sd-data.toml), and
/// what it writes there.
const SD_REGION_START: u64 = 65536;
const SD_REGION_SECTORS: u64 = 16384;
const SD_WRITTEN_SECTORS: u64 = 2048;
const _: () = assert!(SD_WRITTEN_SECTORS <= SD_REGION_SECTORS);

/// raspi4b with a card on `-drive if=sd` (QEMU attaches it to the Arasan
/// SDHCI at 0xfe300000; EMMC2 at 0xfe340000 stays empty): dom0's SDHCI
/// driver finds it and reports its capacity, and sd-data, whose disk is a
/// region of it, writes the pattern through the block back end, reads it
/// back and exits. The bytes must then be in the image file at the region's
/// offset, and nothing outside what it wrote may have changed.
#[test]
fn raspi4b_sd_card_serves_a_guest_disk_region() {
    let card = Scratch::new("rpi4-sd.img", CARD_BYTES);
    let mut vm = Qemu::builder()
        .board(Board::Rpi4)
        .initrd(image("bundle-sd.cpio").unwrap_or_else(|e| panic!("{e}")))
        .args([
            "-drive".to_string(),
            format!("file={},if=sd,format=raw", card.path().display()),
        ])
        .time_limit(Duration::from_secs(180))
        .fail_on("blk-io: FAIL")
        .fail_on("dom0: cannot start")
        .fail_on("cannot connect")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    vm.expect_all(
        &[
            re(r"dom0: device \[0x00fe300000-0x00fe300100\) \(irq 158\)"),
            re(r"dom0: device \[0x00fe340000-0x00fe340100\) \(irq 158\)"),
        ],
        STEP,
    )
    .unwrap();
    vm.expect_all(
        &[
            re(r"\[dom0\] dom0: sdhci 0xfe300000: SD card mmc0: 131072 sectors \(64 MiB\), read-write"),
            re(r"\[dom0\] dom0: sdhci 0xfe340000: no SD memory card"),
        ],
        STEP,
    )
    .unwrap();
    vm.expect(
        "[sd-data] blk-io: disk of 16384 sectors (512-byte sectors), read-write",
        STEP,
    )
    .unwrap();
    let m = vm
        .expect(
            re(r"\[sd-data\] blk-io: PASS round trip 2048 sectors checksum ([0-9a-f]{16})"),
            STEP,
        )
        .unwrap();
    let sum = u64::from_str_radix(m.group(1), 16).unwrap();
    vm.expect("[dom0] dom0: domain sd-data (1) exited: poweroff", STEP)
        .unwrap();
    vm.expect("dom0 powered off: system off", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");

    let bytes = read(card.path());
    assert_eq!(bytes.len() as u64, CARD_BYTES);
    let start = (SD_REGION_START * SECTOR) as usize;
    let end = start + (SD_WRITTEN_SECTORS * SECTOR) as usize;
    let mut want = vec![0u8; end - start];
    for (k, s) in want.chunks_exact_mut(SECTOR as usize).enumerate() {
        fill_sector(k as u64, s);
    }
    let got = &bytes[start..end];
    if got != want.as_slice() {
        let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
        panic!("the card differs from the pattern at byte {at} of the region");
    }
    assert_eq!(fnv1a(FNV1A_START, got), sum, "guest checksum");
    assert!(
        bytes[..start].iter().all(|&b| b == 0),
        "bytes before the region changed"
    );
    assert!(
        bytes[end..].iter().all(|&b| b == 0),
        "bytes after what the guest wrote changed"
    );
}

/// Sector size of the MBR's LBA fields.
const SECTOR: u64 = 512;
/// The layout `scripts/mksdcard.sh` promises.
const IMAGE_BYTES: u64 = 256 << 20;
const BOOT_START: u64 = (1 << 20) / SECTOR;
const BOOT_SECTORS: u64 = (64 << 20) / SECTOR;
/// MBR partition types: FAT32 with LBA, and "non-FS data".
const TYPE_FAT32_LBA: u8 = 0x0c;
const TYPE_NON_FS_DATA: u8 = 0xda;

/// One MBR partition entry (16 bytes at 0x1be + 16 * i).
#[derive(Debug, PartialEq)]
struct Partition {
    bootable: bool,
    kind: u8,
    start: u64,
    sectors: u64,
}

fn partitions(mbr: &[u8]) -> Vec<Partition> {
    assert_eq!(&mbr[510..512], &[0x55, 0xaa], "MBR signature");
    (0..4)
        .map(|i| {
            let e = &mbr[0x1be + 16 * i..0x1be + 16 * (i + 1)];
            let le32 = |at: usize| u64::from(u32::from_le_bytes(e[at..at + 4].try_into().unwrap()));
            Partition {
                bootable: e[0] == 0x80,
                kind: e[4],
                start: le32(8),
                sectors: le32(12),
            }
        })
        .collect()
}

/// Reads `name` from the FAT at the boot partition's offset with mtools.
fn fat_file(img: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("mtype")
        .args(["-i", &format!("{}@@{}", img.display(), BOOT_START * SECTOR)])
        .arg(format!("::{name}"))
        .output()
        .expect("mtools (scripts/mksdcard.sh installs it)");
    assert!(out.status.success(), "mtype {name}: {out:?}");
    out.stdout
}

fn fat_listing(img: &Path) -> Vec<String> {
    let out = Command::new("mdir")
        .args([
            "-b",
            "-i",
            &format!("{}@@{}", img.display(), BOOT_START * SECTOR),
        ])
        .arg("::")
        .output()
        .expect("mtools (scripts/mksdcard.sh installs it)");
    assert!(out.status.success(), "mdir: {out:?}");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("::/").to_string())
        .collect();
    names.sort();
    names
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The image from `scripts/mksdcard.sh` (a step of `scripts/test.sh`): its
/// partition table, its FAT and every file on it, byte for byte against the
/// sources, and the `config.txt` keys the firmware needs.
#[test]
fn sd_card_image_matches_its_sources() {
    let img = image("sdcard.img")
        .unwrap_or_else(|e| panic!("{e} (the SD card: run scripts/mksdcard.sh)"));
    let bytes = read(&img);
    assert_eq!(bytes.len() as u64, IMAGE_BYTES);

    let parts = partitions(&bytes[..512]);
    let data_start = BOOT_START + BOOT_SECTORS;
    assert_eq!(
        parts,
        [
            Partition {
                bootable: true,
                kind: TYPE_FAT32_LBA,
                start: BOOT_START,
                sectors: BOOT_SECTORS
            },
            Partition {
                bootable: false,
                kind: TYPE_NON_FS_DATA,
                start: data_start,
                sectors: IMAGE_BYTES / SECTOR - data_start
            },
            Partition {
                bootable: false,
                kind: 0,
                start: 0,
                sectors: 0
            },
            Partition {
                bootable: false,
                kind: 0,
                start: 0,
                sectors: 0
            },
        ]
    );
    // A FAT32 boot sector at the partition's start (file-system type string
    // at offset 82 of the FAT32 BPB).
    let boot = &bytes[(BOOT_START * SECTOR) as usize..][..512];
    assert_eq!(&boot[82..90], b"FAT32   ");
    assert_eq!(&boot[510..512], &[0x55, 0xaa]);

    let firmware: PathBuf = target_dir().join("raspi-firmware/root/usr/lib/raspi-firmware");
    let expected: Vec<(&str, PathBuf)> = vec![
        ("bcm2711-rpi-4-b.dtb", rpi4_dtb()),
        ("bundle.cpio", images_dir().join("bundle.cpio")),
        ("fixup4.dat", firmware.join("fixup4.dat")),
        ("kernel8.img", images_dir().join("hyp.bin")),
        ("start4.elf", firmware.join("start4.elf")),
    ];
    let mut names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    names.extend(["COPYING.firmware", "config.txt"]);
    names.sort();
    assert_eq!(fat_listing(&img), names);
    for (name, source) in &expected {
        let on_card = fat_file(&img, name);
        let source = read(source);
        assert!(!source.is_empty(), "{name}: empty source");
        assert_eq!(on_card.len(), source.len(), "{name}: size");
        assert!(on_card == source, "{name}: contents differ from the source");
    }

    let config = String::from_utf8(fat_file(&img, "config.txt")).unwrap();
    let lines: Vec<&str> = config
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for key in [
        "arm_64bit=1",
        "enable_uart=1",
        "kernel=kernel8.img",
        "initramfs bundle.cpio followkernel",
        "device_tree=bcm2711-rpi-4-b.dtb",
        "enable_gic=1",
    ] {
        assert!(lines.contains(&key), "config.txt lacks '{key}':\n{config}");
    }
    // The firmware's own stub must start us (at EL2, secondaries on the spin
    // table): no replacement stub, no 32-bit or low-peripheral mode.
    for bad in ["armstub", "arm_peri_high", "kernel_old"] {
        assert!(
            !lines.iter().any(|l| l.starts_with(bad)),
            "config.txt sets '{bad}':\n{config}"
        );
    }
}
