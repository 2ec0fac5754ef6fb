//! BCM2711 GPIO block: routing the console PL011 to the Raspberry Pi 4's
//! header pins (BCM2711 ARM Peripherals, chapter 5 "General Purpose I/O").
//!
//! The firmware's `enable_uart=1` puts the *mini UART* on GPIO14/15 and gives
//! the PL011 (uart0) to Bluetooth, unless an overlay (`disable-bt`) swaps
//! them; Debian's firmware package ships no overlays. `hyp` drives only the
//! PL011, so it selects uart0's TXD0/RXD0 (alternate function 0) on GPIO14/15
//! itself, with the receive line pulled up (a UART line idles high; an
//! unconnected RX then reads no noise). Under QEMU the writes are harmless.

use tock_registers::interfaces::ReadWriteable;
use tock_registers::registers::ReadWrite;
use tock_registers::{register_bitfields, register_structs};

use super::pl011::Pl011;
use crate::addr::PhysAddr;
use crate::platform::{Platform, UartKind};

register_bitfields! {u32,
    /// GPFSEL1: function of GPIO10..19, three bits each (datasheet 5.3).
    GPFSEL1 [
        FSEL15 OFFSET(15) NUMBITS(3) [
            /// Alternate function 0: RXD0 on GPIO15.
            Alt0 = 0b100
        ],
        FSEL14 OFFSET(12) NUMBITS(3) [
            /// Alternate function 0: TXD0 on GPIO14.
            Alt0 = 0b100
        ]
    ],
    /// GPIO_PUP_PDN_CNTRL_REG0: pull of GPIO0..15, two bits each (datasheet 5.3).
    PUP_PDN0 [
        PULL15 OFFSET(30) NUMBITS(2) [
            Up = 0b01
        ],
        PULL14 OFFSET(28) NUMBITS(2) [
            None = 0b00
        ]
    ]
}

register_structs! {
    /// The registers this driver touches.
    Registers {
        (0x00 => _gpfsel0),
        (0x04 => gpfsel1: ReadWrite<u32, GPFSEL1::Register>),
        (0x08 => _reserved),
        (0xe4 => pup_pdn0: ReadWrite<u32, PUP_PDN0::Register>),
        (0xe8 => @END),
    }
}

/// UART clock the firmware sets up for the PL011s (`init_uart_clock`, 48 MHz
/// by default; `scripts/mksdcard.sh` writes it into `config.txt` too). The
/// device tree names the clock but not its rate.
pub const UART_CLOCK_HZ: u32 = 48_000_000;
/// The console's baud rate on the Raspberry Pi (8N1).
pub const CONSOLE_BAUD: u32 = 115_200;

/// Puts PL011 uart0 on GPIO14 (TXD0) and GPIO15 (RXD0).
///
/// # Safety
/// `base` must be the BCM2711 GPIO block (`brcm,bcm2711-gpio`), mapped as
/// Device memory, and no other CPU may be changing pin functions.
pub unsafe fn route_uart0_to_gpio14_15(base: PhysAddr) {
    // SAFETY: the caller guarantees the GPIO block at `base` (identity map).
    let regs = unsafe { &*(base.get() as *const Registers) };
    regs.gpfsel1
        .modify(GPFSEL1::FSEL14::Alt0 + GPFSEL1::FSEL15::Alt0);
    regs.pup_pdn0
        .modify(PUP_PDN0::PULL14::None + PUP_PDN0::PULL15::Up);
}

/// On a BCM2711 (its GPIO block in the device tree) with a PL011 console:
/// routes uart0 to GPIO14/15 and sets the console's baud rate, before
/// `boot` takes the console over. Elsewhere it does nothing.
pub fn console_setup(platform: &Platform<'_>) {
    let (Some(gpio), Some(uart)) = (platform.bcm2711_gpio, platform.console) else {
        return;
    };
    if uart.kind != UartKind::Pl011 {
        return;
    }
    // SAFETY: the device tree's `brcm,bcm2711-gpio` block, identity mapped as
    // Device memory (early `mmio_frames`); only the boot CPU runs.
    unsafe { route_uart0_to_gpio14_15(gpio.start) };
    // SAFETY: the console PL011 from the device tree, mapped as Device memory;
    // nothing else uses it yet (`boot` takes it over after this).
    let console = unsafe { Pl011::new(uart.regs.start) };
    console.set_baud(UART_CLOCK_HZ, CONSOLE_BAUD);
}
