//! The BCM2835-family power manager's reset watchdog (BCM2711 on the
//! Raspberry Pi 4): the board's only way to reset or power off, since its
//! firmware offers no PSCI.
//!
//! The register layout and the power-off convention are those of Linux's
//! `drivers/watchdog/bcm2835_wdt.c` (the BCM2711 datasheet does not document
//! this block): every write carries a password in bits 31:24; arming the
//! watchdog with a short timeout and selecting a full reset in RSTC restarts
//! the SoC. For power-off, the reset status register first records "boot
//! partition 63", which the Raspberry Pi firmware reads after the reset as
//! "halt: do not boot again". QEMU's `bcm2835_powermgt` model follows the same
//! convention: it ends the emulation (shutdown) on a full reset with
//! partition 63 in RSTS, and resets the machine otherwise.

use tock_registers::interfaces::{ReadWriteable, Writeable};
use tock_registers::registers::ReadWrite;
use tock_registers::{register_bitfields, register_structs};

use crate::addr::PhysAddr;

/// The password every write must carry (bcm2835_wdt.c `PM_PASSWORD`).
const PASSWORD: u32 = 0x5a;
/// Watchdog ticks before the reset: short, as bcm2835_wdt.c's restart uses
/// (one tick is 1/65536 s, so 10 ticks is about 150 µs).
const RESET_TICKS: u32 = 10;

register_bitfields! {u32,
    /// PM_RSTC, reset control.
    RSTC [
        PASSWD OFFSET(24) NUMBITS(8) [],
        /// What the watchdog does when it expires.
        WRCFG OFFSET(4) NUMBITS(2) [
            FullReset = 0b10
        ]
    ],
    /// PM_RSTS, reset status; the firmware reads the boot partition from it.
    RSTS [
        PASSWD OFFSET(24) NUMBITS(8) [],
        /// The partition to boot from after the reset, one bit in every other
        /// position (bcm2835_wdt.c `PM_RSTS_PARTITION`).
        PARTITION OFFSET(0) NUMBITS(11) [
            /// Partition 63: the Raspberry Pi firmware's "halt" marker.
            Halt = 0x555
        ]
    ],
    /// PM_WDOG, watchdog countdown.
    WDOG [
        PASSWD OFFSET(24) NUMBITS(8) [],
        TIME OFFSET(0) NUMBITS(20) []
    ]
}

register_structs! {
    /// The start of the `pm` register block, up to the watchdog.
    Registers {
        (0x00 => _reserved),
        (0x1c => rstc: ReadWrite<u32, RSTC::Register>),
        (0x20 => rsts: ReadWrite<u32, RSTS::Register>),
        (0x24 => wdog: ReadWrite<u32, WDOG::Register>),
        (0x28 => @END),
    }
}

/// The power manager at a fixed address.
pub struct Bcm2835Pm {
    regs: &'static Registers,
}

// SAFETY: the block is device memory; every access is one volatile load or
// store, and the only users (power-off, reset) end the system.
unsafe impl Sync for Bcm2835Pm {}
// SAFETY: as for `Sync`; the address is valid from any CPU.
unsafe impl Send for Bcm2835Pm {}

impl Bcm2835Pm {
    /// # Safety
    /// `base` must be the address of the `pm` register block, mapped as
    /// Device memory for the rest of the program.
    pub unsafe fn new(base: PhysAddr) -> Self {
        // SAFETY: the caller guarantees a live block at `base`; the identity
        // map makes the physical address the virtual one.
        let regs = unsafe { &*(base.get() as *const Registers) };
        Self { regs }
    }

    /// Resets the SoC through the watchdog. Returns only if the reset does not
    /// happen (after a generous wait), so the caller can report it.
    pub fn reset(&self) {
        self.regs
            .wdog
            .write(WDOG::PASSWD.val(PASSWORD) + WDOG::TIME.val(RESET_TICKS));
        // Keep the other RSTC bits as they are, as bcm2835_wdt.c does.
        self.regs
            .rstc
            .modify(RSTC::PASSWD.val(PASSWORD) + RSTC::WRCFG::FullReset);
        // The watchdog fires within microseconds; wait far longer before
        // giving up (an emulator may also need a moment to act).
        for _ in 0..100_000_000u32 {
            core::hint::spin_loop();
        }
    }

    /// Marks "halt" in the reset status, then resets: the firmware stops
    /// instead of booting again (the board's closest thing to power-off).
    pub fn power_off(&self) {
        self.regs
            .rsts
            .modify(RSTS::PASSWD.val(PASSWORD) + RSTS::PARTITION::Halt);
        self.reset();
    }
}
