//! `dom0.pirq-test`: the interrupt of a device the hypervisor gave dom0
//! arrives as an event. Uses QEMU `virt`'s PL031 RTC (ARM DDI 0224): arms
//! its match register one second ahead, waits for the alarm's event, clears
//! the device and acknowledges with `pirq_eoi`. Prints
//! `dom0: pirq-test: PASS ...` or `dom0: pirq-test: FAIL ...`.

use core::sync::atomic::{AtomicU32, Ordering};

use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::{println, time};

/// PL031 registers on QEMU `virt` (identity-mapped in dom0's device window).
const RTC_BASE: usize = 0x0901_0000;
/// The RTC's interrupt: SPI 2 (the device tree's `interrupts = <0 2 4>`).
const RTC_INTID: u32 = 34;
/// Data (current seconds), match, interrupt mask set/clear, interrupt clear.
const RTCDR: usize = 0x000;
const RTCMR: usize = 0x004;
const RTCIMSC: usize = 0x010;
const RTCICR: usize = 0x01c;
/// Bit 0 of RTCIMSC / RTCICR: the match interrupt.
const RTC_MATCH_IRQ: u32 = 1;

static FIRED: AtomicU32 = AtomicU32::new(0);

fn reg(offset: usize) -> *mut u32 {
    (RTC_BASE + offset) as *mut u32
}

fn read(offset: usize) -> u32 {
    // SAFETY: the hypervisor maps the PL031's register page into dom0's
    // stage 2 at its physical address (dom0's MMU is off: VA == IPA); a
    // 32-bit access to a defined register has no other effect.
    unsafe { reg(offset).read_volatile() }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`; the registers written are the RTC's own.
    unsafe { reg(offset).write_volatile(value) }
}

fn on_rtc(_: Port) {
    FIRED.fetch_add(1, Ordering::AcqRel);
}

/// Runs the test; prints the result.
pub fn run() {
    let port = match events::bind_pirq(RTC_INTID) {
        Ok(p) => p,
        Err(e) => return println!("dom0: pirq-test: FAIL bind_pirq({RTC_INTID}): {e}"),
    };
    events::on(port, on_rtc);
    write(RTCMR, read(RTCDR).wrapping_add(1));
    write(RTCIMSC, RTC_MATCH_IRQ);
    let deadline = time::Deadline::after_ms(3_000).0;
    let arrived = events::wait_until(|| FIRED.load(Ordering::Acquire) > 0, Some(deadline));
    write(RTCIMSC, 0);
    write(RTCICR, RTC_MATCH_IRQ);
    if !arrived {
        return println!("dom0: pirq-test: FAIL no event within 3 s");
    }
    if let Err(e) = events::pirq_eoi(port) {
        return println!("dom0: pirq-test: FAIL pirq_eoi: {e}");
    }
    println!(
        "dom0: pirq-test: PASS rtc interrupt {RTC_INTID} arrived as an event on port {}",
        port.0
    );
}
