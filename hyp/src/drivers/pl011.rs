//! Arm PrimeCell PL011 UART (Arm DDI 0183, "PrimeCell UART (PL011) Technical
//! Reference Manual", chapter 3 "Programmers model"): transmit, and receive by
//! polling (the console input of `crate::console_in`), with the receive
//! interrupt saying when there is something to poll.
//!
//! The base address comes from the device tree. The baud rate is left as the
//! firmware (or QEMU, which ignores it) set it: the reference clock is not
//! known to `hyp`.

use core::fmt;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

use crate::addr::PhysAddr;
use crate::console_in::InputRing;

register_bitfields! {u32,
    /// UARTDR, data register (TRM 3.3.1).
    DR [
        DATA OFFSET(0) NUMBITS(8) [],
        /// Framing error: the received character had no valid stop bit.
        FE OFFSET(8) NUMBITS(1) [],
        /// Parity error.
        PE OFFSET(9) NUMBITS(1) [],
        /// Break: the line was held low for longer than a character (the data
        /// reads as 0).
        BE OFFSET(10) NUMBITS(1) [],
        /// Overrun: a character was lost because the FIFO was full. This
        /// character itself is good.
        OE OFFSET(11) NUMBITS(1) []
    ],
    /// UARTFR, flag register (TRM 3.3.3).
    FR [
        /// Transmit FIFO empty (with FIFOs enabled).
        TXFE OFFSET(7) NUMBITS(1) [],
        /// Receive FIFO full.
        RXFF OFFSET(6) NUMBITS(1) [],
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
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
        /// Receive timeout interrupt mask: bytes wait in the FIFO below its
        /// trigger level.
        RTIM OFFSET(6) NUMBITS(1) [],
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
    /// Bytes received before [`Pl011::init`] reprogrammed the UART, which
    /// would have flushed them; handed out first by the console input.
    early_rx: spin::Mutex<InputRing>,
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
        Self {
            regs,
            early_rx: spin::Mutex::new(InputRing::new()),
        }
    }

    /// Sets the baud-rate divisor for `baud` from a reference clock of
    /// `clock_hz`: clock / (16 × baud) as a 16.6 fixed-point number, the
    /// fraction rounded (TRM 3.3.6). Boards whose firmware leaves the divisor
    /// unset call this before [`Self::init`], whose LCR_H write latches it.
    /// The UART is disabled first: the divisor must not change while it runs
    /// (TRM 3.3.6); `init` enables it again.
    pub fn set_baud(&self, clock_hz: u32, baud: u32) {
        self.regs.cr.set(0);
        while self.regs.fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
        // UARTFBRD holds six fraction bits; the UART samples 16 times a bit.
        const FRACTION_BITS: u32 = 6;
        const OVERSAMPLING: u64 = 16;
        let (clock, baud) = (u64::from(clock_hz), u64::from(baud.max(1)));
        let scaled = clock << FRACTION_BITS;
        let divisor = (scaled / OVERSAMPLING + baud / 2) / baud;
        self.regs.ibrd.set((divisor >> FRACTION_BITS) as u32);
        self.regs
            .fbrd
            .set((divisor & ((1 << FRACTION_BITS) - 1)) as u32);
    }

    /// Enables the transmitter (and receiver) with 8-bit words and FIFOs, as
    /// TRM 3.3.8 says: disable, wait for the end of transmission, program,
    /// enable. Interrupts stay masked until the console input owner first reads
    /// (`crate::console_in`).
    pub fn init(&self) {
        self.regs.cr.set(0);
        while self.regs.fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
        // Input typed before now sits in the receive FIFO (or, with FIFOs
        // off as after reset, the one-byte holding register), and changing
        // LCR_H.FEN below flushes it. Keep it: `printf ... | run.sh` types
        // before the hypervisor is up. Draining also matters under QEMU,
        // whose serial multiplexer holds further input back until a read of
        // the data register says the UART has room again; a flush without a
        // read would leave that input stuck.
        self.save_early_rx();
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

    /// Takes the next good received byte, if any: reads the data register
    /// while the receive FIFO is not empty (TRM 3.3.1, 3.3.3), dropping
    /// characters that arrived with a framing or parity error or as a break.
    pub fn getc(&self) -> Option<u8> {
        while !self.regs.fr.is_set(FR::RXFE) {
            let dr = self.regs.dr.extract();
            if dr.is_set(DR::FE) || dr.is_set(DR::PE) || dr.is_set(DR::BE) {
                continue;
            }
            return Some(dr.read(DR::DATA) as u8);
        }
        None
    }

    /// Moves what the receiver holds into `early_rx`, as much as fits.
    fn save_early_rx(&self) {
        let mut early = self.early_rx.lock();
        while early.free() > 0 {
            match self.getc() {
                Some(b) => early.push(&[b]),
                None => break,
            };
        }
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

impl crate::console_in::InputSource for Pl011 {
    fn read(&self, buf: &mut [u8]) -> usize {
        let mut n = self.early_rx.lock().pop(buf);
        while n < buf.len() {
            match self.getc() {
                Some(b) => buf[n] = b,
                None => break,
            }
            n += 1;
        }
        n
    }

    /// Receive and receive-timeout together: between them every byte
    /// received raises the interrupt, whatever the FIFO's trigger level.
    fn set_rx_interrupt(&self, on: bool) {
        if on {
            self.regs.imsc.write(IMSC::RXIM::SET + IMSC::RTIM::SET);
        } else {
            self.regs.imsc.set(0);
        }
    }
}

impl fmt::Write for &Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}
