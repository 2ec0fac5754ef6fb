//! Rust side of the entry path, running before the generic boot: choosing the
//! exception level, finding the DTB, building the identity map and turning on
//! the MMU, then handing over to `crate::boot`.

use core::sync::atomic::{AtomicUsize, Ordering};

use aarch64_cpu::registers::{CurrentEL, HCR_EL2};
use tock_registers::interfaces::{Readable, Writeable};

use super::cpu::{self, PEN_READY};
use super::{el3, mmu, vectors};
use crate::addr::{PhysAddr, PhysRange};
use crate::boot::BootInfo;
use crate::memmap::FixedList;
use crate::percpu::{self, CpuIndex};
use crate::platform::{Gic, Platform};

/// FDT header magic, stored big-endian (Devicetree Specification 5.2).
const FDT_MAGIC: u32 = 0xd00d_feed;
/// QEMU puts the DTB of a non-Linux image at the base of RAM, which on virt is
/// 1 GiB aligned (docs/system/arm/virt.rst); we probe the 1 GiB-aligned
/// address below the image.
const DTB_PROBE_ALIGN: usize = 1 << 30;

static DTB: AtomicUsize = AtomicUsize::new(0);
static IMAGE_BASE: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" {
    // Labels in entry.rs; only their addresses are used.
    static el2_entry: u8;
    static pen_wait: u8;
    static secondary_entry: u8;
    static __image_start: u8;
    static __image_end: u8;
}

/// Address PSCI CPU_ON (or the EL3 pen) must start secondaries at.
pub fn secondary_entry_address() -> u64 {
    &raw const secondary_entry as u64
}

/// The physical range the image occupies, bss and stacks included.
pub fn image_range() -> PhysRange {
    PhysRange {
        start: PhysAddr(&raw const __image_start as u64),
        end: PhysAddr(&raw const __image_end as u64),
    }
}

fn looks_like_fdt(addr: usize) -> bool {
    if addr == 0 || !addr.is_multiple_of(8) {
        return false;
    }
    // SAFETY: `addr` is either what the loader passed in x0 (the DTB by the
    // Linux boot protocol) or the base of the RAM we were loaded into; both are
    // readable, 8-byte aligned memory. The MMU is off, so no mapping is needed.
    let magic = unsafe { core::ptr::read_volatile(addr as *const u32) };
    u32::from_be(magic) == FDT_MAGIC
}

fn locate_dtb(x0: usize, image_base: usize) -> usize {
    if looks_like_fdt(x0) {
        return x0;
    }
    let probe = image_base & !(DTB_PROBE_ALIGN - 1);
    if probe != image_base && looks_like_fdt(probe) {
        return probe;
    }
    0
}

/// The DTB as a slice (its `totalsize` from the header), if one was found.
fn dtb_slice() -> Option<&'static [u8]> {
    let addr = DTB.load(Ordering::Relaxed);
    if addr == 0 {
        return None;
    }
    // SAFETY: `locate_dtb` checked the magic at `addr`; the header's second word
    // is `totalsize` (Devicetree Specification 5.2), in the same readable blob.
    let size = u32::from_be(unsafe { core::ptr::read_volatile((addr + 4) as *const u32) });
    // SAFETY: the blob is `size` bytes long by its own header, and nothing in
    // `hyp` writes to it (the heap and frame allocator exclude its range).
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, size as usize) })
}

/// Squeezes `FDT_NOP` tokens out of the DTB, in place, before anything parses
/// it: the `fdt` crate cannot skip them everywhere (see `crate::fdt_nops`).
/// A blob it cannot process is left as it is for the parser to judge.
fn strip_dtb_nops() {
    let Some(len) = dtb_slice().map(<[u8]>::len) else {
        return;
    };
    let addr = DTB.load(Ordering::Relaxed);
    // SAFETY: `dtb_slice` found a blob of `len` bytes at `addr`, in RAM the
    // loader gave us; the boot CPU runs alone with its MMU off, and no
    // reference to the blob exists yet (`dtb_slice` results are taken after).
    let blob = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len) };
    let _ = crate::fdt_nops::strip_nops(blob);
}

/// Called by `primary_entry` once relocated, with a stack. Returns 1 when the
/// caller must `eret` (entered at EL3; ELR/SPSR set for `el2_entry`), 0 at EL2.
#[unsafe(no_mangle)]
extern "C" fn early_el_setup(x0: usize, image_base: usize) -> usize {
    let dtb = locate_dtb(x0, image_base);
    DTB.store(dtb, Ordering::Relaxed);
    IMAGE_BASE.store(image_base, Ordering::Relaxed);
    let el = CurrentEL.read_as_enum(CurrentEL::EL);
    let drop = match el {
        Some(CurrentEL::EL::Value::EL3) => {
            cpu::set_entered_at_el3();
            el3::setup_this_cpu();
            // `secure_init` covers the boot CPU's banked registers too.
            el3::secure_gic_init_boot_cpu(dtb_slice());
            el3::prepare_drop_to_el2(&raw const el2_entry as usize);
            1
        }
        Some(CurrentEL::EL::Value::EL2) => 0,
        // Entered at EL1 (or EL0): no hypervisor is possible and there is no
        // UART set-up yet to say so. Park.
        _ => cpu::halt(),
    };
    // Let CPUs waiting in the pen continue (they poll with their MMU off; we
    // still have ours off, so the store goes to memory).
    PEN_READY.store(1, Ordering::Release);
    aarch64_cpu::asm::sev();
    drop
}

/// Called by a CPU in the holding pen once the image is relocated. Returns 1
/// when the caller must `eret` to EL2 (ELR/SPSR set for `pen_wait`).
#[unsafe(no_mangle)]
extern "C" fn pen_setup(_slot: usize) -> usize {
    match CurrentEL.read_as_enum(CurrentEL::EL) {
        Some(CurrentEL::EL::Value::EL3) => {
            el3::setup_this_cpu();
            el3::secure_gic_init_this_cpu();
            el3::prepare_drop_to_el2(&raw const pen_wait as usize);
            1
        }
        Some(CurrentEL::EL::Value::EL2) => 0,
        _ => cpu::halt(),
    }
}

/// EL2 register state `hyp` relies on, before anything else: EL1 is AArch64,
/// nothing else trapped or routed yet (the lead programs guests' HCR later).
fn init_el2_regs() {
    HCR_EL2.write(HCR_EL2::RW::EL1IsAarch64);
}

/// Boot CPU, at EL2, MMU off, on CPU 0's stack.
#[unsafe(no_mangle)]
extern "C" fn primary_early() -> ! {
    init_el2_regs();
    percpu::init_this_cpu(CpuIndex::BOOT);
    vectors::install();
    strip_dtb_nops();
    let Some(dtb) = dtb_slice() else {
        // No device tree: no UART to report on. Nothing more can be done.
        cpu::halt()
    };
    let Ok(platform) = Platform::parse(dtb) else {
        cpu::halt()
    };
    if mmu::init_boot_cpu(&platform.memory, &mmio_frames(&platform)).is_err() {
        cpu::halt()
    }
    // Board set-up the device tree calls for, before the console is used.
    crate::drivers::bcm2711_gpio::console_setup(&platform);
    crate::power::init(&platform);
    let dtb_range = PhysRange::from_base_size(dtb.as_ptr() as u64, dtb.len() as u64);
    crate::boot::primary_main(BootInfo {
        dtb,
        dtb_range,
        image: image_range(),
        entered_at_el3: cpu::entered_at_el3(),
        platform,
    })
}

/// The MMIO frames `hyp` itself touches: the console UART and the GIC frames
/// it programs (not GICV, which only guests see through stage 2).
fn mmio_frames(platform: &Platform<'_>) -> FixedList<PhysRange, 16> {
    let mut frames = FixedList::new();
    let mut add = |r: PhysRange| {
        let _ = frames.push(r);
    };
    if let Some(uart) = platform.console {
        add(uart.regs);
    }
    match &platform.gic {
        Some(Gic::V2(v2)) => {
            add(v2.dist);
            add(v2.cpu);
            if let Some(hyp) = v2.hyp {
                add(hyp);
            }
        }
        Some(Gic::V3(v3)) => {
            add(v3.dist);
            for r in v3.redists.iter() {
                add(*r);
            }
        }
        None => {}
    }
    // Raspberry Pi: the power manager (reset, power-off) and the GPIO block
    // (console pins).
    for r in [platform.pm_watchdog, platform.bcm2711_gpio]
        .into_iter()
        .flatten()
    {
        add(r);
    }
    frames
}

/// Secondary CPU, at EL2, MMU off, on its own stack (see `secondary_entry`).
#[unsafe(no_mangle)]
extern "C" fn secondary_early(cpu_index: usize) -> ! {
    init_el2_regs();
    mmu::enable_this_cpu();
    vectors::install();
    percpu::init_this_cpu(CpuIndex(cpu_index));
    crate::boot::secondary_main(cpu_index)
}
