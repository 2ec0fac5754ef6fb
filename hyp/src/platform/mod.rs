//! What the boot device tree says about the machine.
//!
//! Public API:
//! - [`Platform::parse`]`(dtb: &[u8]) -> Result<Platform<'_>, PlatformError>`
//! - [`Platform`] fields: `memory`, `reserved`, `cpus`, `psci`, `console`, `stdout`,
//!   `gic`, `timer`, `bootargs`, `initrd`.
//! - [`Cpu`], [`EnableMethod`], [`PsciMethod`], [`Uart`], [`UartKind`], [`Gic`],
//!   [`GicV2`], [`GicV3`], [`TimerIrqs`], [`IntId`], [`Dom0Device`],
//!   [`Dom0DeviceKind`]; limits [`MAX_CPUS`], [`MAX_MEMORY_BANKS`],
//!   [`MAX_RESERVED`], [`MAX_REDIST_REGIONS`], [`MAX_DOM0_DEVICES`].
//! - [`dom0`]: the pages dom0's devices need mapped and the device list
//!   dom0 reads (the `dom0-devices` boot module).
//!
//! No heap: everything lands in fixed-capacity lists; exceeding one is an error
//! rather than a silent truncation. Addresses are CPU physical addresses: `reg`
//! values are translated through every parent bus's `ranges` (the Raspberry Pi 4
//! puts its peripherals at bus address 0x7e00_0000, CPU 0xfe00_0000).
//!
//! Things that may legitimately be missing (PSCI node, console, timer, initrd) are
//! `None`; the boot code decides what is fatal. The DTB comes from firmware and is
//! trusted: the `fdt` crate may panic on a structurally corrupt blob, but every
//! property this module reads is length-checked.
#![forbid(unsafe_code)]

pub mod dom0;
mod walk;

use dom0::{DOM0_COMPATIBLE, MAX_PL011S};
pub use dom0::{Dom0Device, Dom0DeviceKind, MAX_DOM0_DEVICES};

use fdt::Fdt;

use crate::addr::{PhysAddr, PhysRange};
use crate::memmap::FixedList;
use walk::{
    Frame, Props, Visitor, as_str, path_matches, read_cells, reg_entries, scalar, translate,
};

/// Most CPUs described.
pub const MAX_CPUS: usize = 8;
/// Most RAM banks.
pub const MAX_MEMORY_BANKS: usize = 8;
/// Most reserved regions (`/memreserve/` plus `/reserved-memory`).
pub const MAX_RESERVED: usize = 16;
/// Most GICv3 redistributor regions.
pub const MAX_REDIST_REGIONS: usize = 4;

/// GIC interrupt specifier `type` cell values (Linux binding `arm,gic.yaml`).
const GIC_SPEC_SPI: u64 = 0;
const GIC_SPEC_PPI: u64 = 1;
/// First INTID of each class (GIC architecture spec IHI 0069, 2.2 "INTIDs").
const FIRST_PPI_INTID: u64 = 16;
const FIRST_SPI_INTID: u64 = 32;
/// Cells a GIC interrupt specifier must at least have: type, number, flags.
const GIC_MIN_INTERRUPT_CELLS: u32 = 3;

/// A GIC interrupt ID (INTID) as the CPU interface reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct IntId(pub u32);

/// How a secondary CPU is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EnableMethod {
    /// PSCI `CPU_ON`.
    Psci,
    /// Write the entry point to `release_addr` and send an event (`sev`).
    SpinTable {
        /// `cpu-release-addr`.
        release_addr: PhysAddr,
    },
    /// Absent or not understood.
    #[default]
    Unknown,
}

/// One CPU node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cpu {
    /// MPIDR affinity bits from `reg`.
    pub mpidr: u64,
    /// How to start it.
    pub enable: EnableMethod,
}

/// The PSCI conduit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciMethod {
    /// `hvc #0` (firmware at EL2: not when we are the hypervisor).
    Hvc,
    /// `smc #0`.
    Smc,
}

/// UART programming models the hypervisor may meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UartKind {
    /// Arm PrimeCell PL011 (`arm,pl011`).
    #[default]
    Pl011,
    /// Broadcom BCM2835 auxiliary "mini UART" (`brcm,bcm2835-aux-uart`).
    Bcm2835Aux,
}

/// A UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Uart {
    /// Programming model.
    pub kind: UartKind,
    /// MMIO registers (CPU physical).
    pub regs: PhysRange,
    /// Its interrupt, if it has one wired to the GIC.
    pub irq: Option<IntId>,
}

/// A GICv2 (GIC-400 and alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicV2 {
    /// Distributor (GICD).
    pub dist: PhysRange,
    /// CPU interface (GICC).
    pub cpu: PhysRange,
    /// Virtual interface control (GICH), if described.
    pub hyp: Option<PhysRange>,
    /// Virtual CPU interface (GICV), if described.
    pub vcpu: Option<PhysRange>,
    /// Virtual interface maintenance interrupt (a PPI).
    pub maintenance_irq: Option<IntId>,
}

/// A GICv3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicV3 {
    /// Distributor (GICD).
    pub dist: PhysRange,
    /// Redistributor regions (GICR), in `reg` order.
    pub redists: FixedList<PhysRange, MAX_REDIST_REGIONS>,
    /// Virtual interface maintenance interrupt (a PPI).
    pub maintenance_irq: Option<IntId>,
}

/// The interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gic {
    /// GICv2.
    V2(GicV2),
    /// GICv3.
    V3(GicV3),
}

/// Generic timer PPIs (binding `arm,armv8-timer`, in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerIrqs {
    /// Secure EL1 physical timer.
    pub secure_phys: IntId,
    /// Non-secure EL1 physical timer.
    pub nonsecure_phys: IntId,
    /// EL1 virtual timer.
    pub virt: IntId,
    /// EL2 (hypervisor) physical timer.
    pub hyp_phys: IntId,
}

/// Why the device tree could not be used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlatformError {
    /// Not a flattened device tree (bad magic or truncated).
    Fdt(fdt::FdtError),
    /// More items of this kind than the fixed limit.
    TooMany(&'static str),
    /// A property with the wrong length or contents.
    Malformed(&'static str),
    /// Nodes nested deeper than the walker supports.
    TooDeep,
}

/// The machine as the boot device tree describes it.
#[derive(Clone, Copy, Debug)]
pub struct Platform<'a> {
    /// RAM banks (enabled `device_type = "memory"` nodes), sorted, empty ones dropped.
    pub memory: FixedList<PhysRange, MAX_MEMORY_BANKS>,
    /// `/memreserve/` entries and enabled `/reserved-memory` children with `reg`.
    /// Dynamic pools (only `size`) are Linux allocation hints and are not listed.
    pub reserved: FixedList<PhysRange, MAX_RESERVED>,
    /// CPU nodes under `/cpus`, in tree order (the boot CPU is not marked).
    pub cpus: FixedList<Cpu, MAX_CPUS>,
    /// PSCI conduit from an enabled `arm,psci*` node.
    pub psci: Option<PsciMethod>,
    /// The console: `/chosen` `stdout-path` if it names an enabled PL011, else the
    /// first enabled PL011 (the hypervisor drives only the PL011).
    pub console: Option<Uart>,
    /// Whatever UART `stdout-path` names, of any supported kind (on the Pi 4 the
    /// upstream tree points at the mini UART).
    pub stdout: Option<Uart>,
    /// The interrupt controller.
    pub gic: Option<Gic>,
    /// Generic timer interrupts.
    pub timer: Option<TimerIrqs>,
    /// `/chosen` `bootargs` ("" if absent).
    pub bootargs: &'a str,
    /// `/chosen` `linux,initrd-start` .. `linux,initrd-end`.
    pub initrd: Option<PhysRange>,
    /// The BCM2835-family power manager with its reset watchdog (`pm` registers,
    /// first `reg` of `brcm,bcm2835-pm-wdt` / `brcm,bcm2835-pm`): how a
    /// Raspberry Pi, which has no PSCI, resets and powers off.
    pub pm_watchdog: Option<PhysRange>,
    /// The BCM2711 GPIO block (`brcm,bcm2711-gpio`): pin functions and pulls.
    pub bcm2711_gpio: Option<PhysRange>,
    /// Devices given to dom0.
    pub dom0_devices: FixedList<Dom0Device, MAX_DOM0_DEVICES>,
    /// Devices for dom0 beyond [`MAX_DOM0_DEVICES`]: they stay with nobody
    /// (the boot logs how many).
    pub dom0_devices_dropped: usize,
}

impl<'a> Platform<'a> {
    /// Reads everything from a flattened device tree blob.
    pub fn parse(dtb: &'a [u8]) -> Result<Self, PlatformError> {
        let fdt = Fdt::new(dtb).map_err(PlatformError::Fdt)?;
        let mut c = Collector {
            p: Platform {
                memory: FixedList::new(),
                reserved: FixedList::new(),
                cpus: FixedList::new(),
                psci: None,
                console: None,
                stdout: None,
                gic: None,
                timer: None,
                bootargs: "",
                initrd: None,
                pm_watchdog: None,
                bcm2711_gpio: None,
                dom0_devices: FixedList::new(),
                dom0_devices_dropped: 0,
            },
            dom0_nodes: FixedList::new(),
            pl011s: FixedList::new(),
            stdout_path: None,
            first_pl011: None,
            stdout_node: None,
            gic_node: None,
            timer_irqs: None,
        };
        for r in fdt.memory_reservations() {
            let range = PhysRange::from_base_size(r.address() as u64, r.size() as u64);
            push(&mut c.p.reserved, range, "reserved regions")?;
        }
        if let Some(chosen) = fdt.find_node("/chosen") {
            let mut start = None;
            let mut end = None;
            for prop in chosen.properties() {
                match prop.name {
                    "bootargs" => c.p.bootargs = as_str(prop.value),
                    "stdout-path" => c.stdout_path = Some(as_str(prop.value)),
                    "linux,initrd-start" => {
                        start = Some(
                            scalar(prop.value)
                                .ok_or(PlatformError::Malformed("linux,initrd-start"))?,
                        )
                    }
                    "linux,initrd-end" => {
                        end = Some(
                            scalar(prop.value)
                                .ok_or(PlatformError::Malformed("linux,initrd-end"))?,
                        )
                    }
                    _ => {}
                }
            }
            c.p.initrd = match (start, end) {
                (None, None) => None,
                (Some(s), Some(e)) if s <= e => Some(PhysRange {
                    start: PhysAddr(s),
                    end: PhysAddr(e),
                }),
                _ => return Err(PlatformError::Malformed("linux,initrd-start/end")),
            };
        }
        // `stdout-path` is a path or an alias, optionally followed by ":options".
        if let Some(sp) = c.stdout_path {
            let sp = sp.split(':').next().unwrap_or("");
            c.stdout_path = if sp.starts_with('/') {
                Some(sp)
            } else {
                fdt.find_node("/aliases")
                    .and_then(|a| a.property(sp))
                    .map(|p| as_str(p.value))
            };
        }
        walk::walk(&fdt, &mut c)?;
        c.finish()
    }
}

fn push<T: Copy + Default, const N: usize>(
    list: &mut FixedList<T, N>,
    item: T,
    what: &'static str,
) -> Result<(), PlatformError> {
    list.push(item).map_err(|_| PlatformError::TooMany(what))
}

/// An interrupt specifier list and the controller it refers to.
#[derive(Clone, Copy, Default)]
struct RawIrqs<'a> {
    parent: Option<u32>,
    cells: &'a [u8],
}

/// Candidate UART found during the walk; its interrupt is resolved at the end.
#[derive(Clone, Copy, Default)]
struct UartNode<'a> {
    kind: UartKind,
    regs: PhysRange,
    irqs: RawIrqs<'a>,
}

/// The GIC node as found; interrupts resolved at the end.
#[derive(Clone, Copy)]
struct GicNode<'a> {
    gic: Gic,
    phandle: Option<u32>,
    interrupt_cells: u32,
    maintenance: RawIrqs<'a>,
}

struct Collector<'a> {
    p: Platform<'a>,
    stdout_path: Option<&'a str>,
    first_pl011: Option<UartNode<'a>>,
    stdout_node: Option<UartNode<'a>>,
    gic_node: Option<GicNode<'a>>,
    timer_irqs: Option<RawIrqs<'a>>,
    dom0_nodes: FixedList<(Dom0DeviceKind, PhysRange, RawIrqs<'a>), MAX_DOM0_DEVICES>,
    /// Every enabled PL011, in tree order: all but the console go to dom0.
    pl011s: FixedList<UartNode<'a>, MAX_PL011S>,
}

/// PSCI binding compatible strings (Linux `arm,psci.yaml`).
const PSCI_COMPATIBLE: [&str; 3] = ["arm,psci", "arm,psci-0.2", "arm,psci-1.0"];
/// Power managers with the BCM2835 reset watchdog (Linux bindings
/// `brcm,bcm2835-pm.yaml`, and the older `brcm,bcm2835-pm-wdt` one).
const PM_WATCHDOG_COMPATIBLE: [&str; 2] = ["brcm,bcm2835-pm-wdt", "brcm,bcm2835-pm"];
/// GICv2-architecture distributors we drive.
const GICV2_COMPATIBLE: [&str; 3] = ["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a7-gic"];

/// The `index`th `reg` entry of `n`, translated to a CPU physical range.
fn reg_at(n: &Props<'_>, anc: &[Frame<'_>], index: usize) -> Option<PhysRange> {
    let parent = anc.last()?;
    let (addr, size) = reg_entries(n.reg?, parent).nth(index)?;
    let base = translate(anc, addr, size)?;
    Some(PhysRange::from_base_size(base, size))
}

impl<'a> Visitor<'a> for Collector<'a> {
    fn node(&mut self, n: &Props<'a>, anc: &[Frame<'a>]) -> Result<(), PlatformError> {
        let Some(parent) = anc.last() else {
            return Ok(()); // the root itself
        };
        if !n.enabled() {
            return Ok(());
        }
        let irqs = RawIrqs {
            parent: n.interrupt_parent.or(parent.interrupt_parent),
            cells: n.interrupts.unwrap_or(&[]),
        };
        if n.device_type == Some("memory") {
            for (addr, size) in n.reg.map(|r| reg_entries(r, parent)).into_iter().flatten() {
                let base =
                    translate(anc, addr, size).ok_or(PlatformError::Malformed("memory reg"))?;
                if size != 0 {
                    push(
                        &mut self.p.memory,
                        PhysRange::from_base_size(base, size),
                        "memory banks",
                    )?;
                }
            }
        } else if anc.len() == 2 && parent.name == "reserved-memory" {
            for i in 0.. {
                let Some(r) = reg_at(n, anc, i) else { break };
                if !r.is_empty() {
                    push(&mut self.p.reserved, r, "reserved regions")?;
                }
            }
        } else if n.device_type == Some("cpu") && parent.name == "cpus" {
            let (mpidr, _) = n
                .reg
                .and_then(|r| reg_entries(r, parent).next())
                .ok_or(PlatformError::Malformed("cpu reg"))?;
            let enable = match n.enable_method {
                Some("psci") => EnableMethod::Psci,
                Some("spin-table") => EnableMethod::SpinTable {
                    release_addr: PhysAddr(
                        n.cpu_release_addr
                            .and_then(scalar)
                            .ok_or(PlatformError::Malformed("cpu-release-addr"))?,
                    ),
                },
                _ => EnableMethod::Unknown,
            };
            push(&mut self.p.cpus, Cpu { mpidr, enable }, "cpus")?;
        }

        if PSCI_COMPATIBLE.iter().any(|c| n.is_compatible(c)) {
            self.p.psci = match n.method {
                Some("hvc") => Some(PsciMethod::Hvc),
                Some("smc") => Some(PsciMethod::Smc),
                _ => return Err(PlatformError::Malformed("psci method")),
            };
        }
        if n.is_compatible("arm,armv8-timer") && self.timer_irqs.is_none() {
            self.timer_irqs = Some(irqs);
        }
        if self.gic_node.is_none() {
            let gic = if n.is_compatible("arm,gic-v3") {
                let dist = reg_at(n, anc, 0).ok_or(PlatformError::Malformed("gicv3 reg"))?;
                let mut redists = FixedList::new();
                for i in 1..=n.redistributor_regions.unwrap_or(1) as usize {
                    let r = reg_at(n, anc, i)
                        .ok_or(PlatformError::Malformed("gicv3 redistributor reg"))?;
                    push(&mut redists, r, "redistributor regions")?;
                }
                Some(Gic::V3(GicV3 {
                    dist,
                    redists,
                    maintenance_irq: None,
                }))
            } else if GICV2_COMPATIBLE.iter().any(|c| n.is_compatible(c)) {
                Some(Gic::V2(GicV2 {
                    dist: reg_at(n, anc, 0).ok_or(PlatformError::Malformed("gicv2 reg"))?,
                    cpu: reg_at(n, anc, 1).ok_or(PlatformError::Malformed("gicv2 cpu reg"))?,
                    hyp: reg_at(n, anc, 2),
                    vcpu: reg_at(n, anc, 3),
                    maintenance_irq: None,
                }))
            } else {
                None
            };
            if let Some(gic) = gic {
                self.gic_node = Some(GicNode {
                    gic,
                    phandle: n.phandle,
                    interrupt_cells: n.interrupt_cells.unwrap_or(GIC_MIN_INTERRUPT_CELLS),
                    maintenance: irqs,
                });
            }
        }
        if PM_WATCHDOG_COMPATIBLE.iter().any(|c| n.is_compatible(c)) && self.p.pm_watchdog.is_none()
        {
            self.p.pm_watchdog = reg_at(n, anc, 0);
        }
        if let Some(&(_, kind)) = DOM0_COMPATIBLE.iter().find(|(c, _)| n.is_compatible(c))
            && let Some(regs) = reg_at(n, anc, 0)
            && self.dom0_nodes.push((kind, regs, irqs)).is_err()
        {
            self.p.dom0_devices_dropped += 1;
        }
        if n.is_compatible("brcm,bcm2711-gpio") && self.p.bcm2711_gpio.is_none() {
            self.p.bcm2711_gpio = reg_at(n, anc, 0);
        }
        let kind = if n.is_compatible("arm,pl011") {
            Some(UartKind::Pl011)
        } else if n.is_compatible("brcm,bcm2835-aux-uart") {
            Some(UartKind::Bcm2835Aux)
        } else {
            None
        };
        if let (Some(kind), Some(regs)) = (kind, reg_at(n, anc, 0)) {
            let uart = UartNode { kind, regs, irqs };
            if self
                .stdout_path
                .is_some_and(|p| path_matches(anc, n.name, p))
            {
                self.stdout_node = Some(uart);
            }
            if kind == UartKind::Pl011 {
                if self.first_pl011.is_none() {
                    self.first_pl011 = Some(uart);
                }
                if self.pl011s.push(uart).is_err() {
                    self.p.dom0_devices_dropped += 1;
                }
            }
        }
        Ok(())
    }
}

impl<'a> Collector<'a> {
    /// The `index`th interrupt of `raw` as an INTID, if it is wired to the GIC.
    fn intid(&self, raw: RawIrqs<'_>, index: usize) -> Option<IntId> {
        let gic = self.gic_node?;
        if gic.interrupt_cells < GIC_MIN_INTERRUPT_CELLS
            || raw.parent.is_none()
            || raw.parent != gic.phandle
        {
            return None;
        }
        let spec = raw
            .cells
            .chunks_exact(gic.interrupt_cells as usize * 4)
            .nth(index)?;
        let number = read_cells(spec.get(4..)?, 1)?;
        let intid = match read_cells(spec, 1)? {
            GIC_SPEC_SPI => FIRST_SPI_INTID + number,
            GIC_SPEC_PPI => FIRST_PPI_INTID + number,
            _ => return None,
        };
        u32::try_from(intid).ok().map(IntId)
    }

    fn uart(&self, u: UartNode<'_>) -> Uart {
        Uart {
            kind: u.kind,
            regs: u.regs,
            irq: self.intid(u.irqs, 0),
        }
    }

    /// Gives dom0 every PL011 but the console. One whose interrupt line is
    /// the console's (the Pi 4 wires all five to SPI 121) goes without it:
    /// the hypervisor takes that INTID as its console's, so dom0 polls.
    /// The Pi packs its PL011s 0x200 apart into uart0's page, and stage 2
    /// maps whole pages: there dom0 (trusted) could reach the console's
    /// registers too; its driver touches only its own block.
    fn give_pl011s(&mut self) {
        let console = self.p.console;
        for &u in self.pl011s.iter() {
            if console.is_some_and(|c| c.regs == u.regs) {
                continue;
            }
            let irq = self
                .intid(u.irqs, 0)
                .filter(|&i| console.and_then(|c| c.irq) != Some(i));
            let dev = Dom0Device {
                kind: Dom0DeviceKind::Pl011,
                regs: u.regs,
                irq,
            };
            if self.p.dom0_devices.push(dev).is_err() {
                self.p.dom0_devices_dropped += 1;
            }
        }
    }

    fn finish(mut self) -> Result<Platform<'a>, PlatformError> {
        if let Some(g) = self.gic_node {
            let irq = self.intid(g.maintenance, 0);
            self.p.gic = Some(match g.gic {
                Gic::V2(v2) => Gic::V2(GicV2 {
                    maintenance_irq: irq,
                    ..v2
                }),
                Gic::V3(v3) => Gic::V3(GicV3 {
                    maintenance_irq: irq,
                    ..v3
                }),
            });
        }
        if let Some(t) = self.timer_irqs {
            let i = |k| self.intid(t, k);
            if let (Some(s), Some(ns), Some(v), Some(h)) = (i(0), i(1), i(2), i(3)) {
                self.p.timer = Some(TimerIrqs {
                    secure_phys: s,
                    nonsecure_phys: ns,
                    virt: v,
                    hyp_phys: h,
                });
            }
        }
        for &(kind, regs, irqs) in self.dom0_nodes.iter() {
            let irq = self.intid(irqs, 0);
            let _ = self.p.dom0_devices.push(Dom0Device { kind, regs, irq });
        }
        self.p.stdout = self.stdout_node.map(|u| self.uart(u));
        let console = match self.stdout_node {
            Some(u) if u.kind == UartKind::Pl011 => Some(u),
            _ => self.first_pl011,
        };
        self.p.console = console.map(|u| self.uart(u));
        self.give_pl011s();
        crate::addr::sort_by_start(self.p.memory.as_mut_slice());
        Ok(self.p)
    }
}

#[cfg(test)]
mod tests;
