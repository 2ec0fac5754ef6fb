//! The devices the hypervisor gave dom0, as its `dom0-devices` boot module
//! lists them: a comment line, then `<kind> <base> <size> <intid>` per
//! device (hexadecimal base and size, decimal INTID or `-`). Host-tested.

use alloc::vec::Vec;

/// The name of the boot module the hypervisor generates.
pub const MODULE: &str = "dom0-devices";

/// Largest device list dom0 reads, in bytes (a line is under 48 bytes and
/// the hypervisor gives at most a few dozen devices).
pub const MODULE_MAX: u64 = 16 * 1024;

/// A device's programming model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Arm PL031 real-time clock.
    Pl031,
    /// A virtio-mmio transport slot (maybe empty: device ID 0).
    VirtioMmio,
    /// An SD host controller (SDHCI register block).
    Sdhci,
    /// An Arm PL011 UART (not the hypervisor's console).
    Pl011,
}

/// One device: registers identity-mapped in dom0's device window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    /// Programming model.
    pub kind: Kind,
    /// Physical (and guest-physical) address of its registers.
    pub base: u64,
    /// Bytes of registers.
    pub size: u64,
    /// Its interrupt (GIC INTID) for `evtchn_op bind_pirq`, if it has one.
    pub irq: Option<u32>,
}

fn hex(word: &str) -> Option<u64> {
    u64::from_str_radix(word.strip_prefix("0x")?, 16).ok()
}

fn line(text: &str) -> Option<Device> {
    let mut words = text.split_ascii_whitespace();
    let kind = match words.next()? {
        "pl031" => Kind::Pl031,
        "virtio-mmio" => Kind::VirtioMmio,
        "sdhci" => Kind::Sdhci,
        "pl011" => Kind::Pl011,
        _ => return None,
    };
    let base = hex(words.next()?)?;
    let size = hex(words.next()?)?;
    let irq = match words.next()? {
        "-" => None,
        n => Some(n.parse().ok()?),
    };
    words.next().is_none().then_some(Device {
        kind,
        base,
        size,
        irq,
    })
}

/// Parses the list. Comment lines (`#`), blank lines and lines this dom0
/// does not understand (a newer hypervisor's device kinds) are skipped.
pub fn parse(text: &str) -> Vec<Device> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_hypervisor_writes() {
        let text = "# kind base size intid\n\
                    pl031 0x9010000 0x1000 34\n\
                    virtio-mmio 0xa003e00 0x200 -\n\
                    sdhci 0xfe340000 0x100 158\n\
                    pl011 0x9040000 0x1000 40\n";
        assert_eq!(
            parse(text),
            [
                Device {
                    kind: Kind::Pl031,
                    base: 0x901_0000,
                    size: 0x1000,
                    irq: Some(34)
                },
                Device {
                    kind: Kind::VirtioMmio,
                    base: 0xa00_3e00,
                    size: 0x200,
                    irq: None
                },
                Device {
                    kind: Kind::Sdhci,
                    base: 0xfe34_0000,
                    size: 0x100,
                    irq: Some(158)
                },
                Device {
                    kind: Kind::Pl011,
                    base: 0x904_0000,
                    size: 0x1000,
                    irq: Some(40)
                },
            ]
        );
    }

    #[test]
    fn skips_unknown_and_malformed_lines() {
        let text = "\n  # comment\nuart 0x1 0x2 3\nvirtio-mmio 0xa000000 0x200\n\
                    virtio-mmio a000000 0x200 48\nvirtio-mmio 0xa000000 0x200 48 extra\n\
                    virtio-mmio 0xa000000 0x200 x\nvirtio-mmio 0xa000200 0x200 49\n";
        assert_eq!(
            parse(text),
            [Device {
                kind: Kind::VirtioMmio,
                base: 0xa00_0200,
                size: 0x200,
                irq: Some(49)
            }]
        );
    }
}
