//! Building the QEMU command line.

use crate::console::Qemu;
use crate::{Error, image};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The emulated board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    /// QEMU's `virt` machine.
    Virt,
    /// QEMU's `raspi4b`: a Raspberry Pi 4B (BCM2711, 4 Cortex-A72, GIC-400,
    /// 2 GiB) booting `hyp.bin` as the SD card's `kernel8.img`, with the Pi 4
    /// device tree ([`rpi4_dtb`]). The machine fixes the CPU model, CPU count
    /// and RAM, and enters raw images at EL2: the builder's `gic`, `cpu`,
    /// `smp`, `memory` and `entry` settings do not apply.
    Rpi4,
}

/// The Raspberry Pi 4 device tree that `scripts/run.sh --board rpi4` and
/// `scripts/mksdcard.sh` use: `$RPI4_DTB` if set, else Debian's
/// `bcm2711-rpi-4-b.dtb` kept in the repository.
pub fn rpi4_dtb() -> PathBuf {
    match std::env::var_os("RPI4_DTB") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../hyp/src/platform/testdata/bcm2711-rpi-4-b.dtb"),
    }
}

/// At which exception level QEMU enters the hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Raw `hyp.bin` as a Linux Image: entered at EL2 with `x0` = DTB.
    El2,
    /// `hyp.elf` with `secure=on`: QEMU enters ELF images at EL3, and `hyp`
    /// does the firmware's part itself before dropping to EL2.
    El3,
}

impl Entry {
    /// `"EL2"` or `"EL3"`, as the banner prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::El2 => "EL2",
            Self::El3 => "EL3",
        }
    }
}

#[derive(Debug, Clone)]
enum Initrd {
    /// `bundle.cpio` if `scripts/build.sh` made one, else none.
    Default,
    None,
    Path(PathBuf),
}

/// Builder for a QEMU run; [`Qemu::builder`] gives the defaults of `run.sh`.
#[derive(Debug, Clone)]
pub struct QemuBuilder {
    board: Board,
    gic: u8,
    cpu: String,
    smp: u32,
    entry: Entry,
    memory: String,
    kernel: Option<PathBuf>,
    initrd: Initrd,
    append: Vec<String>,
    extra: Vec<String>,
    time_limit: Duration,
    fail_on: Vec<String>,
}

impl Default for QemuBuilder {
    fn default() -> Self {
        Self {
            board: Board::Virt,
            gic: 3,
            cpu: "cortex-a72".into(),
            smp: 4,
            entry: Entry::El2,
            memory: "1G".into(),
            kernel: None,
            initrd: Initrd::Default,
            append: Vec::new(),
            extra: Vec::new(),
            time_limit: Duration::from_secs(60),
            // An exception report or a Rust panic while waiting for something
            // else fails the expect at once instead of after its timeout.
            fail_on: vec!["EL2 exception".into(), "panicked at".into()],
        }
    }
}

impl QemuBuilder {
    /// The board (default `virt`).
    pub fn board(mut self, board: Board) -> Self {
        self.board = board;
        self
    }
    /// GIC version, 2 or 3.
    pub fn gic(mut self, version: u8) -> Self {
        self.gic = version;
        self
    }
    /// QEMU CPU model (`cortex-a53`, `cortex-a57`, `cortex-a72`, `max`, ...).
    pub fn cpu(mut self, model: &str) -> Self {
        self.cpu = model.into();
        self
    }
    /// Number of CPUs.
    pub fn smp(mut self, n: u32) -> Self {
        self.smp = n;
        self
    }
    /// Entry level; also picks the default kernel (`hyp.bin` or `hyp.elf`).
    pub fn entry(mut self, entry: Entry) -> Self {
        self.entry = entry;
        self
    }
    /// RAM size in QEMU syntax (`512M`, `1G`).
    pub fn memory(mut self, size: &str) -> Self {
        self.memory = size.into();
        self
    }
    /// Boots this file instead of the default image for the entry level.
    pub fn kernel(mut self, path: impl Into<PathBuf>) -> Self {
        self.kernel = Some(path.into());
        self
    }
    /// Passes this file as `-initrd` (default: `bundle.cpio` if built).
    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Self {
        self.initrd = Initrd::Path(path.into());
        self
    }
    /// Boots without an initrd even if `bundle.cpio` exists.
    pub fn no_initrd(mut self) -> Self {
        self.initrd = Initrd::None;
        self
    }
    /// Adds words to the boot arguments (`/chosen/bootargs`).
    pub fn append(mut self, bootargs: &str) -> Self {
        self.append.push(bootargs.into());
        self
    }
    /// Adds raw QEMU arguments at the end of the command line.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.extra.extend(args.into_iter().map(Into::into));
        self
    }
    /// Overall limit for the run; every wait ends by then. Default 60 s.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }
    /// Adds a console substring that fails any `expect` that has not matched
    /// yet (defaults: `EL2 exception`, `panicked at`).
    pub fn fail_on(mut self, marker: &str) -> Self {
        self.fail_on.push(marker.into());
        self
    }
    /// Removes the default failure markers.
    pub fn no_fail_markers(mut self) -> Self {
        self.fail_on.clear();
        self
    }

    /// Short description for logs, e.g. `virt gic3 EL2 cortex-a72 smp4`.
    pub fn describe(&self) -> String {
        if self.board == Board::Rpi4 {
            return "raspi4b gic2 EL2 cortex-a72 smp4 2G".into();
        }
        format!(
            "virt gic{} {} {} smp{} {}",
            self.gic,
            self.entry.name(),
            self.cpu,
            self.smp,
            self.memory
        )
    }

    /// The program and arguments this builder runs. Fails with
    /// [`Error::MissingImage`] if the images are not built.
    pub fn command_line(&self) -> Result<Vec<String>, Error> {
        let entry = match self.board {
            Board::Virt => self.entry,
            Board::Rpi4 => Entry::El2,
        };
        let kernel = match &self.kernel {
            Some(k) => k.clone(),
            None => image(match entry {
                Entry::El2 => "hyp.bin",
                Entry::El3 => "hyp.elf",
            })?,
        };
        let mut cmd: Vec<String> = vec!["qemu-system-aarch64".into()];
        match self.board {
            Board::Virt => {
                let mut machine = format!("virt,virtualization=on,gic-version={}", self.gic);
                if entry == Entry::El3 {
                    machine.push_str(",secure=on");
                }
                cmd.extend(
                    [
                        "-machine",
                        &machine,
                        "-cpu",
                        &self.cpu,
                        "-smp",
                        &self.smp.to_string(),
                        "-m",
                        &self.memory,
                    ]
                    .map(String::from),
                );
            }
            Board::Rpi4 => {
                // raspi4b builds no device tree: it loads the one given,
                // fills in /memory, /chosen initrd and bootargs, and blanks
                // the nodes of devices it does not emulate. The first serial
                // port is the PL011 (uart0), the second the mini UART.
                let dtb = rpi4_dtb();
                if !dtb.is_file() {
                    return Err(Error::MissingImage(dtb));
                }
                cmd.extend(["-machine".into(), "raspi4b".into()]);
                cmd.extend(["-dtb".into(), dtb.display().to_string()]);
            }
        }
        cmd.extend(
            [
                // Serial on stdio, no monitor: the console is all the test sees and
                // writes, and Ctrl-A sequences are not interpreted.
                "-display",
                "none",
                "-serial",
                "stdio",
                "-monitor",
                "none",
                // A reset request ends the run instead of booting again.
                "-no-reboot",
                "-kernel",
            ]
            .map(String::from),
        );
        cmd.push(kernel.display().to_string());
        let initrd = match &self.initrd {
            Initrd::Default => image("bundle.cpio").ok(),
            Initrd::None => None,
            Initrd::Path(p) => Some(p.clone()),
        };
        if let Some(initrd) = initrd {
            cmd.extend(["-initrd".into(), initrd.display().to_string()]);
        }
        if !self.append.is_empty() {
            cmd.extend(["-append".into(), self.append.join(" ")]);
        }
        cmd.extend(self.extra.iter().cloned());
        Ok(cmd)
    }

    /// Starts QEMU.
    pub fn spawn(self) -> Result<Qemu, Error> {
        let cmd = self.command_line()?;
        Qemu::start(&cmd, self.describe(), self.time_limit, self.fail_on.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn el3_uses_elf_and_secure() {
        let cmd = QemuBuilder::default()
            .entry(Entry::El3)
            .gic(2)
            .kernel("/x/hyp.elf")
            .no_initrd()
            .append("a=1")
            .append("b")
            .args(["-d", "int"])
            .command_line()
            .unwrap();
        let s = cmd.join(" ");
        assert!(s.contains("-machine virt,virtualization=on,gic-version=2,secure=on"));
        assert!(s.contains("-kernel /x/hyp.elf"));
        assert!(s.contains("-append a=1 b"));
        assert!(s.ends_with("-d int"));
        assert!(!s.contains("-initrd"));
    }

    #[test]
    fn rpi4_uses_raspi4b_with_the_pi_device_tree() {
        let cmd = QemuBuilder::default()
            .board(Board::Rpi4)
            .entry(Entry::El3)
            .smp(2)
            .kernel("/x/hyp.bin")
            .initrd("/x/bundle.cpio")
            .command_line()
            .unwrap();
        let s = cmd.join(" ");
        assert!(s.contains("-machine raspi4b -dtb "), "{s}");
        assert!(s.contains("bcm2711-rpi-4-b.dtb"), "{s}");
        assert!(
            s.contains("-kernel /x/hyp.bin -initrd /x/bundle.cpio"),
            "{s}"
        );
        // The machine fixes these: passing them would be refused or wrong.
        for flag in ["-cpu", "-smp", "-m ", "secure=on", "virtualization"] {
            assert!(!s.contains(flag), "{flag} in {s}");
        }
    }
}
