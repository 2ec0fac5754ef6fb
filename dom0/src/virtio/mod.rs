//! dom0's virtio-mmio drivers (`virtio-drivers`): finds the transports in
//! the device list the hypervisor generates ([`devices`]), and drives the
//! block ([`blk`]) and network ([`net`]) devices behind them.
//!
//! [`init`] must run first: it tells the DMA layer ([`hal`]) where dom0's
//! RAM is physically. [`probe`] then initialises every device it finds,
//! once per boot (the drivers own their registers).

pub mod blk;
pub mod blk_test;
pub mod devices;
pub mod hal;
pub mod irq;
pub mod net;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use pv_guest_sdk::{StartInfo, module, println};
use virtio_drivers::transport::mmio::{MmioError, MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

use blk::Blk;
use devices::{Device, Kind};
use irq::Pirq;
use net::Net;

/// Tells the DMA layer where dom0's RAM is. Fails if the hypervisor did not
/// say (not dom0, or a hypervisor without `ram_phys_base`).
pub fn init(si: &StartInfo) -> Result<(), &'static str> {
    let phys = si
        .ram_phys_base()
        .ok_or("start info has no ram_phys_base")?;
    let ram = si.ram();
    hal::init(ram.start, ram.len(), phys);
    Ok(())
}

/// Reads the device list from the `dom0-devices` boot module.
pub fn device_list() -> Result<Vec<Device>, String> {
    let count = module::count().map_err(|e| e.to_string())?;
    for index in 0..count {
        let info = module::info(index).map_err(|e| e.to_string())?;
        if module::name(&info) != devices::MODULE {
            continue;
        }
        if info.size > devices::MODULE_MAX {
            return Err(alloc::format!("{} is too large", devices::MODULE));
        }
        let mut buf = vec![0u8; info.size as usize];
        let n = module::read(index, 0, &mut buf).map_err(|e| e.to_string())?;
        let text = core::str::from_utf8(&buf[..n]).map_err(|_| "not UTF-8".to_string())?;
        return Ok(devices::parse(text));
    }
    Err(alloc::format!("no {} boot module", devices::MODULE))
}

/// The devices [`probe`] initialised.
#[derive(Default)]
pub struct Found {
    /// Disks, in device-list order.
    pub blks: Vec<Blk>,
    /// NICs, in device-list order.
    pub nets: Vec<Net>,
    /// SD cards (in the SDHCI controllers of the list), in list order.
    pub cards: Vec<crate::sdhci::host::Card>,
}

/// Whether [`probe`] ran: a second run would create a second owner of the
/// same registers.
static PROBED: AtomicBool = AtomicBool::new(false);

/// Binds `d`'s interrupt; without one (or if binding fails) the driver polls.
fn bind(d: &Device) -> Option<Pirq> {
    let intid = d.irq?;
    match Pirq::bind(intid) {
        Ok(p) => Some(p),
        Err(e) => {
            println!(
                "dom0: virtio-mmio {:#x}: bind_pirq({intid}): {e}; polling",
                d.base
            );
            None
        }
    }
}

fn irq_name(p: &Option<Pirq>) -> String {
    match p {
        Some(p) => alloc::format!("irq {}", p.intid()),
        None => "polled".to_string(),
    }
}

/// Initialises the block and network devices behind the virtio-mmio slots
/// of `list`; empty slots (device ID 0) are skipped, other device types
/// are reset and left alone. Runs once; later calls find nothing.
pub fn probe(list: &[Device]) -> Found {
    let mut found = Found::default();
    if PROBED.swap(true, Ordering::AcqRel) {
        return found;
    }
    for d in list.iter().filter(|d| d.kind == Kind::VirtioMmio) {
        let Some(header) = NonNull::new(d.base as *mut VirtIOHeader) else {
            continue;
        };
        // SAFETY: the hypervisor identity-mapped this slot's registers into
        // dom0's device window (the device list names only mapped ones),
        // they stay mapped for dom0's life, and `PROBED` makes this the
        // only owner.
        let transport = match unsafe { MmioTransport::new(header, d.size as usize) } {
            Ok(t) => t,
            Err(MmioError::InvalidDeviceID(_)) => continue,
            Err(e) => {
                println!("dom0: virtio-mmio {:#x}: {e}", d.base);
                continue;
            }
        };
        match transport.device_type() {
            DeviceType::Block => {
                let irq = bind(d);
                let how = irq_name(&irq);
                match Blk::new(transport, d.base, irq) {
                    Ok(b) => {
                        println!(
                            "dom0: virtio-blk {:#x} ({how}): {} sectors, {}",
                            d.base,
                            b.capacity(),
                            if b.read_only() {
                                "read-only"
                            } else {
                                "read-write"
                            }
                        );
                        found.blks.push(b);
                    }
                    Err(e) => println!("dom0: virtio-blk {:#x}: {e}", d.base),
                }
            }
            DeviceType::Network => {
                let irq = bind(d);
                let how = irq_name(&irq);
                match Net::new(transport, d.base, irq) {
                    Ok(n) => {
                        let m = n.mac();
                        println!(
                            "dom0: virtio-net {:#x} ({how}): mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                            d.base, m[0], m[1], m[2], m[3], m[4], m[5]
                        );
                        found.nets.push(n);
                    }
                    Err(e) => println!("dom0: virtio-net {:#x}: {e}", d.base),
                }
            }
            other => println!("dom0: virtio-mmio {:#x}: {other:?} not driven", d.base),
        }
    }
    found
}

/// [`init`], [`device_list`] and [`probe`] in one, reporting failures.
pub fn bring_up(si: &StartInfo) -> Found {
    if let Err(e) = init(si) {
        println!("dom0: virtio: {e}");
        return Found::default();
    }
    match device_list() {
        Ok(list) => {
            let mut found = probe(&list);
            found.cards = crate::sdhci::probe(&list);
            found
        }
        Err(e) => {
            println!("dom0: virtio: {e}");
            Found::default()
        }
    }
}
