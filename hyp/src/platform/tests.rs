//! Every field on every fixture. The `virt-*` blobs were dumped by QEMU 10.0
//! (`-machine virt,...,dumpdtb=`), the Pi 4 blob is Debian's upstream-Linux
//! `bcm2711-rpi-4-b.dtb`, and `synthetic.dtb` and
//! `many-devices.dtb` are built from their `.dts`.
use super::*;

const VIRT_GICV3: &[u8] = include_bytes!("testdata/virt-gicv3.dtb");
const VIRT_GICV2: &[u8] = include_bytes!("testdata/virt-gicv2.dtb");
const VIRT_SECURE: &[u8] = include_bytes!("testdata/virt-secure.dtb");
const VIRT_SMP8: &[u8] = include_bytes!("testdata/virt-smp8.dtb");
const VIRT_INITRD: &[u8] = include_bytes!("testdata/virt-initrd.dtb");
const RPI4: &[u8] = include_bytes!("testdata/bcm2711-rpi-4-b.dtb");
const SYNTHETIC: &[u8] = include_bytes!("testdata/synthetic.dtb");
const MANY_DEVICES: &[u8] = include_bytes!("testdata/many-devices.dtb");
/// `virt` with two `-serial` options: a second PL011 at 0x0904_0000.
const VIRT_2SERIAL: &[u8] = include_bytes!("testdata/virt-2serial.dtb");
const PL011S: &[u8] = include_bytes!("testdata/pl011s.dtb");

fn r(base: u64, size: u64) -> PhysRange {
    PhysRange::from_base_size(base, size)
}

fn psci_cpus(n: u64) -> Vec<Cpu> {
    (0..n)
        .map(|mpidr| Cpu {
            mpidr,
            enable: EnableMethod::Psci,
        })
        .collect()
}

const VIRT_TIMER: TimerIrqs = TimerIrqs {
    secure_phys: IntId(29),
    nonsecure_phys: IntId(30),
    virt: IntId(27),
    hyp_phys: IntId(26),
};

const VIRT_PL011: Uart = Uart {
    kind: UartKind::Pl011,
    regs: PhysRange {
        start: PhysAddr(0x0900_0000),
        end: PhysAddr(0x0900_1000),
    },
    irq: Some(IntId(33)),
};

fn v3(p: &Platform<'_>) -> GicV3 {
    match p.gic {
        Some(Gic::V3(g)) => g,
        other => panic!("expected GICv3, got {other:?}"),
    }
}

#[test]
fn virt_gicv3() {
    let p = Platform::parse(VIRT_GICV3).unwrap();
    assert_eq!(&*p.memory, &[r(0x4000_0000, 512 << 20)]);
    assert!(p.reserved.is_empty());
    assert_eq!(&*p.cpus, psci_cpus(4).as_slice());
    assert_eq!(p.psci, Some(PsciMethod::Smc));
    assert_eq!(p.console, Some(VIRT_PL011));
    assert_eq!(p.stdout, Some(VIRT_PL011));
    let g = v3(&p);
    assert_eq!(g.dist, r(0x0800_0000, 0x1_0000));
    assert_eq!(&*g.redists, &[r(0x080a_0000, 0xf6_0000)]);
    assert_eq!(g.maintenance_irq, Some(IntId(25)));
    assert_eq!(p.timer, Some(VIRT_TIMER));
    assert_eq!(p.bootargs, "");
    assert_eq!(p.initrd, None);
    assert_virt_dom0_devices(&p);
}

/// QEMU `virt`'s devices for dom0, in tree order: the PL031 RTC (its page,
/// SPI 2, level) and the 32 virtio-mmio slots, 512 bytes each from
/// 0x0a00_0000 with SPIs 16..48.
fn assert_virt_dom0_devices(p: &Platform<'_>) {
    assert_eq!(p.dom0_devices_dropped, 0);
    let virtio: Vec<Dom0Device> = (0..32u64)
        .map(|slot| Dom0Device {
            kind: Dom0DeviceKind::VirtioMmio,
            regs: r(0x0a00_0000 + slot * 0x200, 0x200),
            irq: Some(IntId(48 + slot as u32)),
        })
        .collect();
    let pl031 = Dom0Device {
        kind: Dom0DeviceKind::Pl031,
        regs: r(0x0901_0000, 0x1000),
        irq: Some(IntId(34)),
    };
    assert_eq!(p.dom0_devices.len(), 33);
    let at = p
        .dom0_devices
        .iter()
        .position(|d| d.kind == Dom0DeviceKind::Pl031)
        .unwrap();
    assert_eq!(p.dom0_devices[at], pl031);
    let rest: Vec<Dom0Device> = p
        .dom0_devices
        .iter()
        .filter(|d| d.kind == Dom0DeviceKind::VirtioMmio)
        .copied()
        .collect();
    assert_eq!(rest, virtio);
    // Four pages hold the 32 slots; the PL031 has its own page.
    assert_eq!(
        &*dom0::mmio_pages(&p.dom0_devices),
        &[r(0x0901_0000, 0x1000), r(0x0a00_0000, 0x4000)]
    );
    // Every INTID fits the pirq bitmaps (INTIDs below 1020).
    assert!(
        p.dom0_devices
            .iter()
            .all(|d| d.irq.is_some_and(|i| i.0 < 1020))
    );
}

#[test]
fn virt_gicv2() {
    let p = Platform::parse(VIRT_GICV2).unwrap();
    assert_eq!(&*p.memory, &[r(0x4000_0000, 512 << 20)]);
    assert_eq!(&*p.cpus, psci_cpus(4).as_slice());
    assert_eq!(p.psci, Some(PsciMethod::Smc));
    assert_eq!(p.console, Some(VIRT_PL011));
    assert_eq!(
        p.gic,
        Some(Gic::V2(GicV2 {
            dist: r(0x0800_0000, 0x1_0000),
            cpu: r(0x0801_0000, 0x1_0000),
            hyp: Some(r(0x0803_0000, 0x1_0000)),
            vcpu: Some(r(0x0804_0000, 0x1_0000)),
            maintenance_irq: Some(IntId(25)),
        }))
    );
    assert_eq!(p.timer, Some(VIRT_TIMER));
    assert_virt_dom0_devices(&p);
}

#[test]
fn virt_secure_skips_secure_only_nodes() {
    let p = Platform::parse(VIRT_SECURE).unwrap();
    // secram@e000000 is `device_type = "memory"` but `status = "disabled"`.
    assert_eq!(&*p.memory, &[r(0x4000_0000, 512 << 20)]);
    // No PSCI node: with secure=on QEMU expects firmware at EL3 to provide it.
    assert_eq!(p.psci, None);
    // The secure PL011 at 0x09040000 is disabled and comes first in the tree.
    assert_eq!(p.console, Some(VIRT_PL011));
    assert_eq!(&*p.cpus, psci_cpus(4).as_slice());
    assert_eq!(v3(&p).dist, r(0x0800_0000, 0x1_0000));
    assert_eq!(p.timer, Some(VIRT_TIMER));
}

#[test]
fn virt_smp8() {
    let p = Platform::parse(VIRT_SMP8).unwrap();
    assert_eq!(p.cpus.len(), MAX_CPUS);
    assert_eq!(&*p.cpus, psci_cpus(8).as_slice());
    assert_eq!(&*p.memory, &[r(0x4000_0000, 1 << 30)]);
    assert_eq!(&*v3(&p).redists, &[r(0x080a_0000, 0xf6_0000)]);
}

#[test]
fn virt_initrd_and_bootargs() {
    let p = Platform::parse(VIRT_INITRD).unwrap();
    assert_eq!(p.bootargs, "loglevel=debug hyp.test=fault foo");
    assert_eq!(p.initrd, Some(r(0x4800_0000, 3)));
    assert_eq!(&*p.memory, &[r(0x4000_0000, 256 << 20)]);
    assert_eq!(p.cpus.len(), 2);
}

#[test]
fn raspberry_pi_4() {
    let p = Platform::parse(RPI4).unwrap();
    // The firmware fills in `memory@0`; the upstream blob has a zero size.
    assert!(p.memory.is_empty());
    // /memreserve/ for the spin tables; the bootloader-config nvram node is disabled.
    assert_eq!(&*p.reserved, &[r(0, 0x1000)]);
    let spin = |mpidr, addr| Cpu {
        mpidr,
        enable: EnableMethod::SpinTable {
            release_addr: PhysAddr(addr),
        },
    };
    assert_eq!(
        &*p.cpus,
        &[spin(0, 0xd8), spin(1, 0xe0), spin(2, 0xe8), spin(3, 0xf0)]
    );
    assert_eq!(p.psci, None);
    // uart0 (PL011) at bus 0x7e201000 -> CPU 0xfe201000, SPI 121.
    assert_eq!(
        p.console,
        Some(Uart {
            kind: UartKind::Pl011,
            regs: r(0xfe20_1000, 0x200),
            irq: Some(IntId(32 + 121))
        })
    );
    // stdout-path = "serial1:115200n8" -> the mini UART.
    assert_eq!(
        p.stdout,
        Some(Uart {
            kind: UartKind::Bcm2835Aux,
            regs: r(0xfe21_5040, 0x40),
            irq: Some(IntId(32 + 93))
        })
    );
    // GIC-400 under /soc: bus 0x40041000 -> CPU 0xff841000 via the third `ranges` entry.
    assert_eq!(
        p.gic,
        Some(Gic::V2(GicV2 {
            dist: r(0xff84_1000, 0x1000),
            cpu: r(0xff84_2000, 0x2000),
            hyp: Some(r(0xff84_4000, 0x2000)),
            vcpu: Some(r(0xff84_6000, 0x2000)),
            maintenance_irq: Some(IntId(25)),
        }))
    );
    assert_eq!(p.timer, Some(VIRT_TIMER));
    assert_eq!(p.bootargs, "");
    assert_eq!(p.initrd, None);
    // The power manager's `pm` registers and the GPIO block, both under /soc.
    assert_eq!(p.pm_watchdog, Some(r(0xfe10_0000, 0x114)));
    assert_eq!(p.bcm2711_gpio, Some(r(0xfe20_0000, 0xb4)));
    // Both SD hosts go to dom0 (the Arasan one under /soc, EMMC2 under
    // /emmc2bus with two address cells), sharing GIC SPI 126.
    let sdhci = |base| Dom0Device {
        kind: Dom0DeviceKind::Sdhci,
        regs: r(base, 0x100),
        irq: Some(IntId(32 + 126)),
    };
    assert_eq!(&*p.dom0_devices, &[sdhci(0xfe30_0000), sdhci(0xfe34_0000)]);
    assert!(dom0::device_list(&p.dom0_devices).contains("sdhci 0xfe340000 0x100 158\n"));
}

#[test]
fn virt_second_pl011_goes_to_dom0() {
    let p = Platform::parse(VIRT_2SERIAL).unwrap();
    assert_eq!(p.console, Some(VIRT_PL011));
    let uart1 = Dom0Device {
        kind: Dom0DeviceKind::Pl011,
        regs: r(0x0904_0000, 0x1000),
        irq: Some(IntId(32 + 8)),
    };
    let pl011s: Vec<_> = p
        .dom0_devices
        .iter()
        .filter(|d| d.kind == Dom0DeviceKind::Pl011)
        .collect();
    assert_eq!(pl011s, [&uart1]);
    assert!(dom0::device_list(&p.dom0_devices).contains("pl011 0x9040000 0x1000 40\n"));
}

#[test]
fn pl011s_but_the_console_go_to_dom0() {
    let p = Platform::parse(PL011S).unwrap();
    let console = p.console.unwrap();
    assert_eq!(console.regs, r(0xfe20_1000, 0x200));
    assert_eq!(console.irq, Some(IntId(32 + 121)));
    // In tree order; the disabled one is nobody's. The one sharing the
    // console's line comes without an interrupt (dom0 polls it).
    let pl011 = |base, irq| Dom0Device {
        kind: Dom0DeviceKind::Pl011,
        regs: r(base, 0x200),
        irq,
    };
    assert_eq!(
        &*p.dom0_devices,
        &[
            pl011(0xfe20_0800, Some(IntId(32 + 7))),
            pl011(0xfe20_1400, None)
        ]
    );
    assert_eq!(p.dom0_devices_dropped, 0);
}

#[test]
fn synthetic_tree() {
    let p = Platform::parse(SYNTHETIC).unwrap();
    assert_eq!(
        &*p.memory,
        &[r(0x4000_0000, 0x2000_0000), r(0x8_8000_0000, 0x4000_0000)]
    );
    assert_eq!(
        &*p.reserved,
        &[r(0x5000_0000, 0x2000), r(0x5f00_0000, 0x10_0000)]
    );
    assert_eq!(
        &*p.cpus,
        &[
            Cpu {
                mpidr: 0,
                enable: EnableMethod::Psci
            },
            Cpu {
                mpidr: 0x100,
                enable: EnableMethod::Psci
            },
            Cpu {
                mpidr: 0x1_0000,
                enable: EnableMethod::SpinTable {
                    release_addr: PhysAddr(0x8000_fff8)
                }
            },
        ]
    );
    assert_eq!(p.psci, Some(PsciMethod::Hvc));
    // Two levels of `ranges`: 0x7e002000 -> 0x102000 -> 0xf0102000.
    let uart = Uart {
        kind: UartKind::Pl011,
        regs: r(0xf010_2000, 0x1000),
        irq: Some(IntId(37)),
    };
    assert_eq!(p.stdout, Some(uart));
    assert_eq!(p.console, Some(uart));
    let g = v3(&p);
    assert_eq!(g.dist, r(0x2f00_0000, 0x1_0000));
    assert_eq!(
        &*g.redists,
        &[r(0x2f10_0000, 0x10_0000), r(0x2f30_0000, 0x10_0000)]
    );
    assert_eq!(g.maintenance_irq, Some(IntId(25)));
    assert_eq!(p.timer, Some(VIRT_TIMER));
    assert_eq!(p.bootargs, "loglevel=trace hyp.test=fault");
    assert_eq!(p.initrd, Some(r(0x4800_0000, 0x10_0000)));
}

#[test]
fn dom0_devices_beyond_capacity_are_counted_not_kept() {
    let p = Platform::parse(MANY_DEVICES).unwrap();
    assert_eq!(p.dom0_devices.len(), MAX_DOM0_DEVICES);
    // 53 candidates, one disabled: 52 found, 48 kept in tree order.
    assert_eq!(p.dom0_devices_dropped, 52 - MAX_DOM0_DEVICES);
    assert_eq!(
        p.dom0_devices[0],
        Dom0Device {
            kind: Dom0DeviceKind::VirtioMmio,
            regs: r(0x0f00_0200, 0x200),
            irq: None,
        }
    );
    assert_eq!(p.dom0_devices[1].kind, Dom0DeviceKind::Pl031);
    let last = p.dom0_devices[MAX_DOM0_DEVICES - 1];
    let n = (MAX_DOM0_DEVICES - 3) as u64;
    assert_eq!(last.regs, r(0x1000_0000 + n * 0x200, 0x200));
    assert_eq!(last.irq, Some(IntId(32 + n as u32)));
}

#[test]
fn dom0_mmio_pages_are_page_aligned_and_merged() {
    let dev = |base, size| Dom0Device {
        kind: Dom0DeviceKind::VirtioMmio,
        regs: r(base, size),
        irq: None,
    };
    let devices = [
        dev(0x3000_0400, 0x200),  // inside 0x3000_0000's page
        dev(0x2000_0000, 0x1000), // its own page
        dev(0x3000_0e00, 0x400),  // straddles into the next page
        dev(0x3000_1000, 0x10),   // in that next page too
        dev(0x3000_3000, 0x1000), // a gap of one page before it
        dev(0x4000_0000, 0),      // empty: nothing to map
    ];
    assert_eq!(
        &*dom0::mmio_pages(&devices),
        &[
            r(0x2000_0000, 0x1000),
            r(0x3000_0000, 0x2000),
            r(0x3000_3000, 0x1000)
        ]
    );
    assert!(dom0::mmio_pages(&[]).is_empty());
}

#[test]
fn dom0_device_list_format() {
    let devices = [
        Dom0Device {
            kind: Dom0DeviceKind::Pl031,
            regs: r(0x0901_0000, 0x1000),
            irq: Some(IntId(34)),
        },
        Dom0Device {
            kind: Dom0DeviceKind::VirtioMmio,
            regs: r(0x0a00_3e00, 0x200),
            irq: None,
        },
    ];
    assert_eq!(
        dom0::device_list(&devices),
        "# kind base size intid\n\
         pl031 0x9010000 0x1000 34\n\
         virtio-mmio 0xa003e00 0x200 -\n"
    );
    assert_eq!(dom0::device_list(&[]), "# kind base size intid\n");
}

#[test]
fn not_a_dtb() {
    assert!(matches!(
        Platform::parse(&[0u8; 64]),
        Err(PlatformError::Fdt(_))
    ));
    assert!(matches!(
        Platform::parse(&VIRT_GICV3[..100]),
        Err(PlatformError::Fdt(_))
    ));
}

mod walk_units {
    use super::super::walk::*;

    fn frame(
        name: &'static str,
        ac: u32,
        sc: u32,
        ranges: Option<&'static [u8]>,
    ) -> Frame<'static> {
        Frame {
            name,
            address_cells: ac,
            size_cells: sc,
            ranges,
            interrupt_parent: None,
        }
    }

    #[test]
    fn translate_rejects_unmapped_bus_and_out_of_window() {
        const RANGES: &[u8] = &[0, 0, 0, 0, 0xf0, 0, 0, 0, 0, 0, 0x10, 0]; // 0 -> 0xf0000000, 4 KiB
        let root = frame("", 1, 1, Some(&[]));
        let bus = frame("bus", 1, 1, Some(RANGES));
        assert_eq!(translate(&[root, bus], 0x800, 0x10), Some(0xf000_0800));
        assert_eq!(
            translate(&[root, bus], 0xff0, 0x20),
            None,
            "crosses the window end"
        );
        assert_eq!(translate(&[root, bus], 0x1000, 1), None);
        let closed = frame("closed", 1, 1, None);
        assert_eq!(translate(&[root, closed], 0, 1), None);
        assert_eq!(translate(&[root], 0x1234, 1), Some(0x1234));
    }

    #[test]
    fn paths() {
        let root = frame("", 2, 2, Some(&[]));
        let soc = frame("soc", 1, 1, Some(&[]));
        assert!(path_matches(
            &[root, soc],
            "serial@7e201000",
            "/soc/serial@7e201000"
        ));
        assert!(path_matches(&[root, soc], "serial@7e201000", "/soc/serial"));
        assert!(!path_matches(
            &[root, soc],
            "serial@7e201000",
            "/soc/serial@7e201001"
        ));
        assert!(!path_matches(&[root, soc], "serial@7e201000", "/soc"));
        assert!(!path_matches(&[root], "soc", "/soc/serial"));
    }

    #[test]
    fn cells() {
        assert_eq!(
            read_cells(&[0, 0, 0, 1, 0, 0, 0, 2], 2),
            Some(0x1_0000_0002)
        );
        assert_eq!(read_cells(&[0, 0, 1], 1), None);
        assert_eq!(read_cells(&[0; 12], 3), None);
        assert_eq!(scalar(&[0, 0, 0, 5]), Some(5));
        assert_eq!(scalar(&[0, 0, 5]), None);
        let parent = frame("", 2, 0, None);
        let regs: Vec<_> = reg_entries(&[0, 0, 0, 0, 0, 0, 1, 0, 0, 0], &parent).collect();
        assert_eq!(regs, [(0x100, 0)], "trailing partial entry ignored");
        let pci = frame("", 3, 2, None);
        assert_eq!(reg_entries(&[0; 20], &pci).count(), 0);
    }
}
