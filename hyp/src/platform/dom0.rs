//! What dom0's devices need at dom0's construction: the pages to map (devices
//! may share a page: QEMU `virt` packs eight 512-byte virtio-mmio slots into
//! each) and the device list dom0 reads to find them.
//!
//! Public API:
//! - [`mmio_pages`]`(devices) -> FixedList<PhysRange, MAX_DOM0_DEVICES>`
//! - [`device_list`]`(devices) -> String`, the `dom0-devices` boot module
//!   ([`DEVICE_LIST_MODULE`]).

use alloc::string::String;
use core::fmt::Write;

use super::{Dom0Device, MAX_DOM0_DEVICES};
use crate::addr::{PAGE_SIZE, PhysRange};
use crate::memmap::FixedList;

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
/// decimal INTID, `-` for none), kinds as [`super::Dom0DeviceKind::name`].
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
