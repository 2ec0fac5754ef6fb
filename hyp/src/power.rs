//! Switching the machine off or resetting it with what the device tree
//! offers: PSCI SYSTEM_OFF / SYSTEM_RESET where firmware provides PSCI (QEMU
//! `virt`), else the BCM2835-family power manager's watchdog (the Raspberry
//! Pi 4, whose firmware has no PSCI).
//!
//! Only in the bare-metal image.
#![cfg(target_os = "none")]

use spin::Once;

use crate::arch::aarch64::psci::{self, PsciError};
use crate::drivers::bcm2835_pm::Bcm2835Pm;
use crate::platform::Platform;

static PM: Once<Bcm2835Pm> = Once::new();

/// Why the machine is still running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerError {
    /// The PSCI call failed (or there is no PSCI and no other way).
    Psci(PsciError),
    /// The watchdog was armed but the reset did not happen.
    WatchdogDidNotFire,
}

/// Boot CPU, once the identity map covers the platform's power manager:
/// records the board's power controls.
pub fn init(platform: &Platform<'_>) {
    if let Some(pm) = platform.pm_watchdog {
        PM.call_once(|| {
            // SAFETY: the device tree names this block as the power manager;
            // the identity map maps it as Device memory (early `mmio_frames`)
            // and only this module drives it.
            unsafe { Bcm2835Pm::new(pm.start) }
        });
    }
}

/// The power manager, when the board has one and no PSCI firmware.
fn watchdog() -> Option<&'static Bcm2835Pm> {
    if psci::conduit().is_some() {
        None
    } else {
        PM.get()
    }
}

/// Switches the machine off. Returns only when that failed.
pub fn system_off() -> PowerError {
    match watchdog() {
        Some(pm) => {
            pm.power_off();
            PowerError::WatchdogDidNotFire
        }
        None => PowerError::Psci(psci::system_off()),
    }
}

/// Resets the machine. Returns only when that failed.
pub fn system_reset() -> PowerError {
    match watchdog() {
        Some(pm) => {
            pm.reset();
            PowerError::WatchdogDidNotFire
        }
        None => PowerError::Psci(psci::system_reset()),
    }
}
