//! A device interrupt as an event: bound with `evtchn_op bind_pirq`, noted
//! by a handler, acknowledged with `pirq_eoi` once the driver has cleared
//! the device's interrupt status. Until then the hypervisor keeps the
//! interrupt active, so it cannot fire again; after it, a device that is
//! still asserting its (level) line fires again at once, so nothing is lost.

use core::sync::atomic::{AtomicU64, Ordering};

use pv_guest_sdk::abi::Error;
use pv_guest_sdk::abi::evtchn::NR_PORTS;
use pv_guest_sdk::events::{self, Port};

/// One bit per port: its event arrived since the driver last looked.
static FIRED: [AtomicU64; NR_PORTS as usize / 64] =
    [const { AtomicU64::new(0) }; NR_PORTS as usize / 64];

fn on_pirq(port: Port) {
    if let Some(w) = FIRED.get(port.0 as usize / 64) {
        w.fetch_or(1 << (port.0 % 64), Ordering::AcqRel);
    }
}

/// A bound device interrupt.
#[derive(Debug)]
pub struct Pirq {
    port: Port,
    intid: u32,
}

impl Pirq {
    /// Binds INTID `intid` (one of the devices the hypervisor gave dom0).
    pub fn bind(intid: u32) -> Result<Self, Error> {
        let port = events::bind_pirq(intid)?;
        events::on(port, on_pirq);
        Ok(Self { port, intid })
    }

    /// The INTID.
    pub fn intid(&self) -> u32 {
        self.intid
    }

    /// Whether the event arrived since the last call (and forgets it).
    pub fn take(&self) -> bool {
        let bit = 1 << (self.port.0 % 64);
        FIRED
            .get(self.port.0 as usize / 64)
            .is_some_and(|w| w.fetch_and(!bit, Ordering::AcqRel) & bit != 0)
    }

    /// If the interrupt fired, runs `clear` (which must clear the device's
    /// interrupt status) and lets it fire again.
    pub fn acknowledge(&self, clear: impl FnOnce()) {
        if self.take() {
            clear();
            // Fails only if the port is not a pirq port, which it is.
            let _ = events::pirq_eoi(self.port);
        }
    }
}

/// Unless `done()` holds, blocks until the next event of any kind comes
/// (without an interrupt: yields once); returns whether `done()` holds
/// then. Arms no timer: a timer dom0's loop armed before still wakes it,
/// and whatever else woke it is left to the loop.
pub fn wait_once(irq: Option<&Pirq>, mut done: impl FnMut() -> bool) -> bool {
    if irq.is_none() {
        if !done() {
            pv_guest_sdk::yield_now();
        }
        return done();
    }
    let mut woken = false;
    events::wait_until(|| done() || core::mem::replace(&mut woken, true), None);
    done()
}

/// Waits until `done()` holds or the virtual counter reaches `deadline`;
/// returns whether `done()` held. With an interrupt, blocks between checks
/// (its event, or any other, wakes dom0); without one, yields (polling).
pub fn wait(irq: Option<&Pirq>, mut done: impl FnMut() -> bool, deadline: u64) -> bool {
    if irq.is_some() {
        return events::wait_until(done, Some(deadline));
    }
    loop {
        if done() {
            return true;
        }
        if pv_guest_sdk::time::counter() >= deadline {
            return false;
        }
        pv_guest_sdk::yield_now();
    }
}
