//! What dom0's devices need at dom0's construction: the pages to map (devices
//! may share a page: QEMU `virt` packs eight 512-byte virtio-mmio slots into
//! each) and the device list dom0 reads to find them.
//!
//! Public API:
//! - [`Dom0Device`], [`Dom0DeviceKind`], [`MAX_DOM0_DEVICES`] (re-exported by
//!   the platform module, which finds them in the device tree).
//! - [`mmio_pages`]`(devices) -> FixedList<PhysRange, MAX_DOM0_DEVICES>`
//! - [`device_list`]`(devices) -> String`, the `dom0-devices` boot module
//!   ([`DEVICE_LIST_MODULE`]).

use alloc::string::String;
use core::fmt::Write;

use super::IntId;
use crate::addr::{PAGE_SIZE, PhysRange};
use crate::memmap::FixedList;

/// The programming model of a device given to dom0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dom0DeviceKind {
    /// Arm PrimeCell PL031 real-time clock (`arm,pl031`).
    #[default]
    Pl031,
    /// A virtio-mmio transport slot (`virtio,mmio`); an empty slot reads
    /// device ID 0.
    VirtioMmio,
    /// An SD host controller with the standard SDHCI register block: the
    /// Pi 4's EMMC2 (`brcm,bcm2711-emmc2`, its SD-card slot) and Arasan
    /// controller (`brcm,bcm2835-sdhci`, where QEMU's `raspi4b` puts the
    /// `-drive if=sd` card).
    Sdhci,
    /// An Arm PrimeCell PL011 UART (`arm,pl011`) other than the
    /// hypervisor's console: dom0 runs a second toolstack shell on it.
    Pl011,
}

impl Dom0DeviceKind {
    /// Its name in the device list dom0 reads ([`device_list`]).
    pub const fn name(self) -> &'static str {
        match self {
            Dom0DeviceKind::Pl031 => "pl031",
            Dom0DeviceKind::VirtioMmio => "virtio-mmio",
            Dom0DeviceKind::Sdhci => "sdhci",
            Dom0DeviceKind::Pl011 => "pl011",
        }
    }
}

/// A device the hypervisor does not use and gives to dom0: its registers are
/// identity-mapped into dom0's device window and its interrupt is delivered
/// to dom0 as an event (`evtchn_op bind_pirq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Dom0Device {
    /// Programming model.
    pub kind: Dom0DeviceKind,
    /// MMIO registers (CPU physical).
    pub regs: PhysRange,
    /// Its interrupt, if it has one wired to the GIC.
    pub irq: Option<IntId>,
}

/// Most devices handed to dom0: QEMU `virt` has the PL031 and 32
/// virtio-mmio slots; the rest is headroom for other boards.
pub const MAX_DOM0_DEVICES: usize = 48;

/// Compatible strings of the devices given to dom0 so far: the PL031 RTC and
/// the virtio-mmio slots (QEMU `virt`), the Pi 4's SD host controllers.
/// PL011s are found with the console candidates and given in `finish`: every
/// enabled one but the console.
pub(super) const DOM0_COMPATIBLE: [(&str, Dom0DeviceKind); 4] = [
    ("arm,pl031", Dom0DeviceKind::Pl031),
    ("virtio,mmio", Dom0DeviceKind::VirtioMmio),
    ("brcm,bcm2711-emmc2", Dom0DeviceKind::Sdhci),
    ("brcm,bcm2835-sdhci", Dom0DeviceKind::Sdhci),
];

/// Most PL011s looked at (the Pi 4 has five); beyond, they count as dropped
/// dom0 devices.
pub(super) const MAX_PL011S: usize = 8;

/// The name of the boot module that lists dom0's devices.
pub const DEVICE_LIST_MODULE: &str = "dom0-devices";

/// The page-aligned ranges that cover every device's registers, sorted,
/// overlapping and touching ones merged: each page is mapped once.
pub fn mmio_pages(devices: &[Dom0Device]) -> FixedList<PhysRange, MAX_DOM0_DEVICES> {
    let mut ranges: FixedList<PhysRange, MAX_DOM0_DEVICES> = FixedList::new();
    for d in devices.iter().filter(|d| !d.regs.is_empty()) {
        // `devices` holds at most MAX_DOM0_DEVICES entries, so this fits.
        let _ = ranges.push(PhysRange {
            start: d.regs.start.align_down(PAGE_SIZE),
            end: d.regs.end.align_up(PAGE_SIZE),
        });
    }
    crate::addr::sort_by_start(ranges.as_mut_slice());
    let mut merged: FixedList<PhysRange, MAX_DOM0_DEVICES> = FixedList::new();
    for r in ranges.iter() {
        match merged.as_mut_slice().last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => {
                let _ = merged.push(*r);
            }
        }
    }
    merged
}

/// The device list dom0 reads from the [`DEVICE_LIST_MODULE`] boot module:
/// a comment line, then one line per device,
/// `<kind> <base> <size> <intid>` (hexadecimal base and size with `0x`,
/// decimal INTID, `-` for none), kinds as [`Dom0DeviceKind::name`].
pub fn device_list(devices: &[Dom0Device]) -> String {
    let mut s = String::from("# kind base size intid\n");
    for d in devices {
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "{} {:#x} {:#x} ",
            d.kind.name(),
            d.regs.start.0,
            d.regs.size()
        );
        let _ = match d.irq {
            Some(i) => writeln!(s, "{}", i.0),
            None => writeln!(s, "-"),
        };
    }
    s
}
