//! The generic boot sequence, entered from the arch layer once the MMU is on
//! and the vectors are installed: console and log, memory map and heap,
//! platform summary, interrupt controller, secondary CPUs.
//!
//! Log lines matched by tests are listed in docs/architecture.md.
//!
//! Only in the bare-metal image (`target_os = "none"`).
#![cfg(target_os = "none")]

use log::{error, info, warn};
use spin::Once;

use crate::addr::{PAGE_SIZE, PhysRange};
use crate::arch::aarch64 as arch;
use crate::bootargs::{BootArgs, TestHook};
use crate::drivers::pl011::Pl011;
use crate::logger;
use crate::memmap::{self, FixedList};
use crate::percpu::CpuIndex;
use crate::platform::{Gic, Platform, UartKind};

/// What the arch layer hands to [`primary_main`].
pub struct BootInfo {
    /// The device tree blob (identity mapped, never written).
    pub dtb: &'static [u8],
    /// Where the blob lies (excluded from the heap).
    pub dtb_range: PhysRange,
    /// The hypervisor image, bss and stacks included.
    pub image: PhysRange,
    /// Whether `hyp` was entered at EL3 and dropped to EL2 itself.
    pub entered_at_el3: bool,
    /// The parsed device tree.
    pub platform: Platform<'static>,
}

static CONSOLE: Once<Pl011> = Once::new();

const MIB: u64 = 1024 * 1024;

fn console_up(platform: &Platform<'_>, args: &BootArgs<'_>) {
    let Some(uart) = platform.console.filter(|u| u.kind == UartKind::Pl011) else {
        return;
    };
    let console = CONSOLE.call_once(|| {
        // SAFETY: the DT names this PL011 as the console; the identity map
        // maps its frame as Device memory, and nothing else in `hyp` drives it.
        unsafe { Pl011::new(uart.regs.start) }
    });
    console.init();
    // Typed bytes go to the console input owner (dom0) through this UART.
    crate::console_in::register_source(console);
    let sources = logger::Sources {
        uptime: arch::uptime,
        cpu: arch::cpu_index,
    };
    logger::init(console, sources, args.log_level);
}

/// The boot CPU's path from "MMU on" to "idle".
pub fn primary_main(info: BootInfo) -> ! {
    let platform = &info.platform;
    let args = BootArgs::parse(platform.bootargs);
    console_up(platform, &args);

    let (guest, control) = (tern_abi::version::GUEST_ABI, tern_abi::version::CONTROL_ABI);
    info!(
        "tern hypervisor v{} (guest ABI {}.{}, control ABI {}.{}) at EL2 (entered at {})",
        env!("CARGO_PKG_VERSION"),
        guest.major,
        guest.minor,
        control.major,
        control.minor,
        if info.entered_at_el3 { "EL3" } else { "EL2" }
    );
    for word in args.unknown() {
        warn!("unknown boot argument '{word}' ignored");
    }

    log::debug!("boot args: '{}'", platform.bootargs);
    log::debug!(
        "image at {} (linked at 0x40200000), device tree at {}",
        info.image,
        info.dtb_range
    );
    let free = memory_map(&info);
    summary(platform);

    // Interrupt controller, then the other CPUs (each logs `cpu <n> online`).
    crate::smp::init_boot_cpu(platform);
    crate::smp::start_secondaries(platform);

    if args.test == Some(TestHook::Fault) {
        fault_test(platform);
    }
    let boot = arch::run::Dom0Boot {
        free: &free,
        initrd: platform.initrd,
        bootargs: platform.bootargs,
        dom0_devices: &platform.dom0_devices,
        console_irq: platform
            .console
            .filter(|u| u.kind == UartKind::Pl011)
            .and_then(|u| u.irq),
        timer_irq: match platform.timer {
            Some(t) => t.hyp_phys,
            None => {
                error!("no timer in the device tree: cannot schedule");
                arch::halt_this_cpu()
            }
        },
    };
    arch::run::start(&boot, {
        use aarch64_cpu::registers::Readable;
        aarch64_cpu::registers::CNTFRQ_EL0.get()
    })
}

/// A secondary CPU's path from "MMU on" (on its own stack) to "idle".
pub fn secondary_main(cpu: usize) -> ! {
    crate::smp::secondary_up(CpuIndex(cpu));
    arch::run::secondary(cpu)
}

/// Logs RAM banks and everything carved out of them, seeds the heap, and
/// returns the free memory left for the frame allocator.
fn memory_map(info: &BootInfo) -> memmap::FreeRegions {
    let platform = &info.platform;
    for bank in platform.memory.iter() {
        info!("memory: bank {bank} {} MiB", bank.size() / MIB);
    }
    let mut exclude: FixedList<PhysRange, 24> = FixedList::new();
    let mut carve = |range: PhysRange, why: &str| {
        info!("reserved: {range} {why}");
        if exclude.push(range).is_err() {
            error!("too many reserved regions; {range} not excluded from the heap");
        }
    };
    carve(info.image, "hyp image");
    carve(info.dtb_range, "device tree");
    if let Some(initrd) = platform.initrd {
        carve(initrd, "initrd");
    }
    for r in platform.reserved.iter() {
        carve(*r, "firmware reserved");
    }
    let free = match memmap::free_regions(&platform.memory, &exclude) {
        Ok(free) => free,
        Err(e) => {
            error!("memory map unusable: {e:?}");
            arch::halt_this_cpu()
        }
    };
    // SAFETY: `free` is RAM from the DT minus the image, DTB, initrd and
    // reserved regions; the identity map maps all RAM read-write; this is the
    // only call.
    let Some(heap) = (unsafe { crate::heap::init(&free) }) else {
        error!("no free memory for the heap");
        arch::halt_this_cpu()
    };
    let free_bytes = memmap::total_size(&free) - heap.size();
    info!("reserved: {heap} hyp heap");
    info!(
        "heap: {} free pages ({} MiB)",
        free_bytes / PAGE_SIZE,
        free_bytes / MIB
    );
    match memmap::free_regions(&free, &[heap]) {
        Ok(rest) => rest,
        Err(e) => {
            error!("memory map unusable: {e:?}");
            arch::halt_this_cpu()
        }
    }
}

fn summary(platform: &Platform<'_>) {
    info!("cpus: {} in the device tree", platform.cpus.len());
    match &platform.gic {
        Some(Gic::V3(v3)) => {
            let redist = v3.redists.first().copied().unwrap_or_default();
            info!(
                "gic: v3 dist {} redist {} ({} regions)",
                v3.dist,
                redist,
                v3.redists.len()
            );
        }
        Some(Gic::V2(v2)) => info!("gic: v2 dist {} cpu {}", v2.dist, v2.cpu),
        None => warn!("gic: none in the device tree"),
    }
    match platform.psci {
        Some(m) => info!("psci: {m:?}"),
        None => info!("psci: none"),
    }
    match platform.initrd {
        Some(r) => info!("initrd: {r} ({} KiB)", r.size() / 1024),
        None => info!("initrd: none"),
    }
    if platform.dom0_devices_dropped > 0 {
        warn!(
            "dom0: {} devices beyond the first {} are given to nobody",
            platform.dom0_devices_dropped,
            crate::platform::MAX_DOM0_DEVICES
        );
    }
}

/// `hyp.test=fault`: read an address just past the last RAM bank, which the
/// identity map leaves unmapped, to produce the EL2 exception report.
fn fault_test(platform: &Platform<'_>) {
    let Some(last) = platform.memory.last() else {
        return;
    };
    warn!("hyp.test=fault: reading unmapped {:#x}", last.end.get());
    let value = arch::cpu::probe_read(last.end);
    error!("hyp.test=fault: read {value:#x} without a fault");
}

#[panic_handler]
fn panic(panic: &core::panic::PanicInfo<'_>) -> ! {
    logger::report(format_args!("hyp panic: {panic}\n"));
    arch::halt_this_cpu()
}
