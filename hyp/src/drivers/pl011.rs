//! Arm PrimeCell PL011 UART, transmit side (Arm DDI 0183, "PrimeCell UART
//! (PL011) Technical Reference Manual", chapter 3 "Programmers model").
//!
//! The base address comes from the device tree. The baud rate is left as the
//! firmware (or QEMU, which ignores it) set it: the reference clock is not
//! known to `hyp`.

use core::fmt;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

use crate::addr::PhysAddr;

register_bitfields! {u32,
    /// UARTDR, data register (TRM 3.3.1).
    DR [
        DATA OFFSET(0) NUMBITS(8) []
    ],
    /// UARTFR, flag register (TRM 3.3.3).
    FR [
        /// Transmit FIFO empty (with FIFOs enabled).
        TXFE OFFSET(7) NUMBITS(1) [],
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// UARTLCR_H, line control (TRM 3.3.7).
    LCR_H [
        /// Word length.
        WLEN OFFSET(5) NUMBITS(2) [
            EightBits = 0b11
        ],
        /// FIFO enable.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// UARTCR, control (TRM 3.3.8).
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// UARTIMSC, interrupt mask set/clear (TRM 3.3.10).
    IMSC [
        /// Receive interrupt mask.
        RXIM OFFSET(4) NUMBITS(1) []
    ]
}

register_structs! {
    /// PL011 register block (TRM table 3-1).
    pub Registers {
        (0x000 => dr: ReadWrite<u32, DR::Register>),
        (0x004 => _rsr_ecr),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        (0x024 => ibrd: ReadWrite<u32>),
        (0x028 => fbrd: ReadWrite<u32>),
        (0x02c => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x030 => cr: ReadWrite<u32, CR::Register>),
        (0x034 => ifls: ReadWrite<u32>),
        (0x038 => imsc: ReadWrite<u32, IMSC::Register>),
        (0x03c => ris: ReadOnly<u32>),
        (0x040 => mis: ReadOnly<u32>),
        (0x044 => icr: WriteOnly<u32>),
        (0x048 => dmacr: ReadWrite<u32>),
        (0x04c => @END),
    }
}

/// A PL011 at a fixed address.
pub struct Pl011 {
    regs: &'static Registers,
}

// SAFETY: the register block is device memory, not Rust-visible data: every
// access is a single volatile load or store that the UART serialises. Callers
// that need whole lines unbroken (the logger) hold their own lock.
unsafe impl Sync for Pl011 {}
// SAFETY: as for `Sync`; the block is at a fixed address usable from any CPU.
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` must be the address of a PL011 register block that is mapped
    /// Device memory for the rest of the program and used by nothing else.
    pub unsafe fn new(base: PhysAddr) -> Self {
        // SAFETY: the caller guarantees a live, exclusively used PL011 block at
        // `base`; the identity map makes the physical address the virtual one.
        let regs = unsafe { &*(base.get() as *const Registers) };
        Self { regs }
    }

    /// Enables the transmitter (and receiver) with 8-bit words and FIFOs, as
    /// TRM 3.3.8 says: disable, wait for the end of transmission, program,
    /// enable. Interrupts stay masked (polling only for now).
    pub fn init(&self) {
        self.regs.cr.set(0);
        while self.regs.fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
        self.regs.imsc.set(0);
        self.regs
            .lcr_h
            .write(LCR_H::WLEN::EightBits + LCR_H::FEN::SET);
        self.regs
            .cr
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn putc(&self, byte: u8) {
        while self.regs.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs.dr.write(DR::DATA.val(u32::from(byte)));
    }

    /// Sends `s`, turning `\n` into `\r\n` for terminals.
    pub fn write_bytes(&self, s: &[u8]) {
        for &b in s {
            if b == b'\n' {
                self.putc(b'\r');
            }
            self.putc(b);
        }
    }
}

impl crate::logger::Console for Pl011 {
    fn write_bytes(&self, bytes: &[u8]) {
        Pl011::write_bytes(self, bytes);
    }
}

impl fmt::Write for &Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}
