//! The Rust half of the runtime: start-up after `_start`, the exception
//! report, and the panic handler. Only built for the bare-metal target.

use crate::StartInfo;
use crate::console::emergency_print;
use crate::exception::vector_name;
use crate::heap::{self, IpaRange};
use core::sync::atomic::{AtomicBool, Ordering};
use tern_abi::layout::{self, START_INFO_IPA};
use tern_abi::sched::ShutdownReason;

unsafe extern "C" {
    /// First byte after the image (linker script).
    static _end: u8;
}

unsafe extern "Rust" {
    /// The guest's entry, defined by [`crate::entry!`]. A guest that forgets
    /// the macro fails to link with "undefined symbol: __pv_guest_main".
    fn __pv_guest_main(start_info: &'static StartInfo) -> !;
}

static START_INFO: spin::Once<&'static StartInfo> = spin::Once::new();

/// The start-info page of this domain, once the runtime has checked it.
pub fn start_info() -> Option<&'static StartInfo> {
    START_INFO.get().copied()
}

/// Called by `_start` with the registers the hypervisor entered us with:
/// `x0` = start-info IPA, `x1` = RAM size.
#[unsafe(no_mangle)]
extern "C" fn __pv_rust_start(start_info_ipa: u64, ram_size: u64) -> ! {
    let size = size_of::<tern_abi::StartInfo>() as u64;
    if !layout::ram_contains(ram_size, start_info_ipa, size) {
        emergency_print(format_args!(
            "pv-guest-sdk: start info {start_info_ipa:#x} not in RAM of {ram_size:#x} bytes\n"
        ));
        crate::hypercall::shutdown(ShutdownReason::Crash);
    }
    // SAFETY: the entry contract (specs/memory-map.md) puts a start-info page
    // at `x0`, and we just checked it lies inside our RAM, which is mapped and
    // which nothing else writes (VA == IPA, MMU off). The page is never
    // written by this guest, so a shared `'static` view is sound.
    let bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts(start_info_ipa as usize as *const u8, size as usize) };
    let Some(si) = StartInfo::from_bytes(bytes) else {
        emergency_print(format_args!(
            "pv-guest-sdk: no valid start info at {start_info_ipa:#x} (bad magic or ABI major)\n"
        ));
        crate::hypercall::shutdown(ShutdownReason::Crash);
    };
    START_INFO.call_once(|| si);

    let image_end = (&raw const _end) as usize as u64;
    let ram_end = layout::GUEST_RAM_BASE.saturating_add(ram_size);
    let reserved = [IpaRange {
        start: START_INFO_IPA.min(start_info_ipa),
        end: start_info_ipa + tern_abi::PAGE_SIZE,
    }];
    if let Some(range) = heap::free_range(image_end, ram_end, &reserved) {
        heap::init(range);
    }

    // Before the guest's first line, so all of it goes through the ring.
    crate::console::auto_connect(si);

    // SAFETY: `entry!` defines this symbol with exactly this signature.
    unsafe { __pv_guest_main(si) }
}

/// Called by the vector table for any exception: reports it and shuts the
/// domain down as crashed. Never returns to the faulting code.
#[unsafe(no_mangle)]
extern "C" fn __pv_rust_exception(index: u64, esr: u64, elr: u64, far: u64) -> ! {
    use aarch64_cpu::registers::ESR_EL1;
    use tock_registers::LocalRegisterCopy;

    let (kind, from) = vector_name(index);
    let syndrome = LocalRegisterCopy::<u64, ESR_EL1::Register>::new(esr);
    let ec = syndrome.read(ESR_EL1::EC);
    match syndrome.read_as_enum::<ESR_EL1::EC::Value>(ESR_EL1::EC) {
        Some(class) => emergency_print(format_args!(
            "unexpected {kind} exception from {from}: {class:?} (EC {ec:#x}) \
             ESR {esr:#x} ELR {elr:#x} FAR {far:#x}\n"
        )),
        None => emergency_print(format_args!(
            "unexpected {kind} exception from {from}: EC {ec:#x} \
             ESR {esr:#x} ELR {elr:#x} FAR {far:#x}\n"
        )),
    }
    crash()
}

/// Shuts the domain down as crashed once the report is out. Not through
/// [`crate::hypercall::shutdown`]: `emergency_print` flushed what could be
/// flushed, and the faulting code may hold what that path would wait for.
fn crash() -> ! {
    let _ = crate::hypercall::try_shutdown(ShutdownReason::Crash);
    crate::halt()
}

/// Called by the IRQ vector: the event-channel upcall.
#[unsafe(no_mangle)]
extern "C" fn __pv_rust_irq() {
    crate::events::dispatch();
}

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // A panic while reporting a panic goes straight to shutdown.
    if !PANICKING.swap(true, Ordering::Relaxed) {
        match info.location() {
            Some(l) => emergency_print(format_args!(
                "panic: {} at {}:{}\n",
                info.message(),
                l.file(),
                l.line()
            )),
            None => emergency_print(format_args!("panic: {}\n", info.message())),
        }
    }
    crash()
}
