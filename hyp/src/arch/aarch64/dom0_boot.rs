//! Building dom0 at boot: the boot modules from the initrd, dom0's RAM and
//! image, the devices it is given, and where guests' console lines go.

use alloc::vec::Vec;

use tern_abi::domctl::DomainFlags;

use crate::addr::{PAGE_SIZE, PhysRange};
use crate::domain::{DomainConfig, loader};
use crate::hypervisor::{ConsoleSink, Module};
use crate::physmem::{FrameSource, PhysMem};
use crate::platform::dom0::{DEVICE_LIST_MODULE, device_list, mmio_pages};
use crate::platform::{Dom0Device, Dom0DeviceKind};

/// dom0's RAM when the boot arguments say nothing (`dom0_mem=<MiB>`).
const DOM0_DEFAULT_MIB: u64 = 64;

/// Guests' console lines go to the physical UART, prefixed with the domain.
pub struct UartConsole;

impl ConsoleSink for UartConsole {
    fn domain_line(&mut self, name: &str, line: &[u8]) {
        let text = core::str::from_utf8(line).unwrap_or("<non-UTF-8 output>");
        crate::logger::report(format_args!("[{name}] {text}\n"));
    }
}

/// The boot modules in the initrd (none without one, or if it is corrupt).
pub fn boot_modules(initrd: Option<PhysRange>) -> Vec<Module<'static>> {
    let Some(r) = initrd else {
        log::warn!("no initrd: no boot modules");
        return Vec::new();
    };
    // SAFETY: the initrd range is RAM the boot excluded from the heap and the
    // frame allocator, identity mapped, and never written after boot.
    let bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts(r.start.0 as *const u8, r.size() as usize) };
    match crate::modules::Modules::new(bytes) {
        Ok(m) => m
            .iter()
            .map(|m| Module {
                name: m.name,
                bytes: m.data,
            })
            .collect(),
        Err(e) => {
            log::error!("initrd is not a valid cpio archive: {e:?}");
            Vec::new()
        }
    }
}

/// Maps the pages of `devices` into dom0's stage 2 (each page once: devices
/// may share one) and lets dom0 bind their interrupts. Returns the devices
/// given; those whose pages could not be mapped are left out (logged).
fn give_devices<M: PhysMem, F: FrameSource>(
    hv: &mut crate::hypervisor::Hypervisor<'_, M, F>,
    id: tern_abi::domctl::DomainId,
    devices: &[Dom0Device],
) -> Result<Vec<Dom0Device>, &'static str> {
    let mut mapped = Vec::new();
    for pages in mmio_pages(devices).iter() {
        let d = hv.domains.get_mut(id).map_err(|e| e.name())?;
        let ram_end = tern_abi::layout::GUEST_RAM_BASE + d.ram.size();
        match d.stage2.map_device(*pages, ram_end, &mut hv.frames, hv.mem) {
            Ok(()) => mapped.push(*pages),
            Err(e) => log::warn!("dom0: device pages {pages} not mapped: {}", e.name()),
        }
    }
    let given: Vec<Dom0Device> = devices
        .iter()
        .filter(|dev| {
            mapped
                .iter()
                .any(|m| m.start <= dev.regs.start && dev.regs.end <= m.end)
        })
        .copied()
        .collect();
    let virtio = given
        .iter()
        .filter(|d| d.kind == Dom0DeviceKind::VirtioMmio)
        .count();
    for dev in &given {
        let irq = IrqLabel(dev.irq);
        // Thirty-two empty virtio-mmio slots are noise in every boot log.
        if dev.kind == Dom0DeviceKind::VirtioMmio {
            log::debug!("dom0: virtio-mmio {} (irq {irq})", dev.regs);
        } else {
            log::info!("dom0: device {} (irq {irq})", dev.regs);
        }
        hv.dom0_irqs.extend(dev.irq.map(|i| i.get()));
    }
    if virtio > 0 {
        log::info!("dom0: {virtio} virtio-mmio slots");
    }
    Ok(given)
}

/// Creates dom0 from the `dom0` module, gives it `devices`, and lets it run.
pub fn create_dom0<M: PhysMem, F: FrameSource>(
    hv: &mut crate::hypervisor::Hypervisor<'_, M, F>,
    bootargs: &str,
    devices: &[Dom0Device],
) -> Result<(), &'static str> {
    let args = crate::bootargs::BootArgs::parse(bootargs);
    let asked = args.dom0_mem_mib.unwrap_or(DOM0_DEFAULT_MIB);
    // dom0's RAM is one physically contiguous buddy block (its drivers DMA
    // by physical address), so its size is a power of two.
    let mib = asked.next_power_of_two();
    if mib != asked {
        log::warn!("dom0_mem={asked}: rounded up to {mib} MiB (a power of two)");
    }
    let cfg = DomainConfig {
        name: b"dom0",
        pages: mib * (1 << 20) / PAGE_SIZE,
        vcpus: 1,
        cmdline: args.dom0_cmdline.as_bytes(),
        flags: DomainFlags::IS_DOM0,
    };
    let image = hv
        .modules
        .iter()
        .find(|m| m.name == "dom0")
        .ok_or("no 'dom0' boot module")?
        .bytes;
    let id = hv
        .domains
        .create(&cfg, &mut hv.frames, hv.mem)
        .map_err(|e| e.name())?;
    let given = give_devices(hv, id, devices)?;
    // dom0 finds its devices in this generated module (after the initrd's,
    // so their indices stay as the bundle has them). Built once per boot.
    let list: &'static str = alloc::boxed::Box::leak(device_list(&given).into_boxed_str());
    hv.modules.push(Module {
        name: DEVICE_LIST_MODULE,
        bytes: list.as_bytes(),
    });
    let count = hv.modules.len() as u32;
    let d = hv.domains.get_mut(id).map_err(|e| e.name())?;
    let entry = loader::load(d, hv.mem, image, count).map_err(|e| e.name())?;
    hv.domain_created(id);
    hv.unpause_domain(id);
    log::info!("dom0: {mib} MiB, entry {entry:#x}");
    Ok(())
}

/// A device's interrupt in the boot log: its INTID, or "none" (`Option`'s
/// derived `Debug` would cost 400 bytes of image for two log lines).
struct IrqLabel(Option<crate::platform::IntId>);

impl core::fmt::Display for IrqLabel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(i) => write!(f, "{}", i.get()),
            None => f.write_str("none"),
        }
    }
}
