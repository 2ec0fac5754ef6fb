//! The PL011 register block (Arm PrimeCell UART (PL011) Technical Reference
//! Manual, DDI 0183, section 3.2 "Summary of registers"), as 32-bit
//! registers with their bits by name.

use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_bitfields! [u32,
    /// Data register (3.3.1): a received character with its error bits, or
    /// a character to send.
    pub DR [
        DATA OFFSET(0) NUMBITS(8) [],
        /// Framing error (no valid stop bit).
        FE OFFSET(8) NUMBITS(1) [],
        /// Parity error.
        PE OFFSET(9) NUMBITS(1) [],
        /// Break condition.
        BE OFFSET(10) NUMBITS(1) [],
        /// Overrun: the receive FIFO was full and a character was lost.
        OE OFFSET(11) NUMBITS(1) []
    ],
    /// Flag register (3.3.3).
    pub FR [
        /// Transmitting (or the transmit FIFO is not empty).
        BUSY OFFSET(3) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Transmit FIFO empty.
        TXFE OFFSET(7) NUMBITS(1) []
    ],
    /// Integer part of the baud rate divisor (3.3.6).
    pub IBRD [
        DIVINT OFFSET(0) NUMBITS(16) []
    ],
    /// Fractional part of the baud rate divisor, in 64ths (3.3.7).
    pub FBRD [
        DIVFRAC OFFSET(0) NUMBITS(6) []
    ],
    /// Line control (3.3.7); writing it latches IBRD and FBRD.
    pub LCR_H [
        /// Send a break.
        BRK OFFSET(0) NUMBITS(1) [],
        /// Parity enable.
        PEN OFFSET(1) NUMBITS(1) [],
        /// Even parity (with PEN).
        EPS OFFSET(2) NUMBITS(1) [],
        /// Two stop bits.
        STP2 OFFSET(3) NUMBITS(1) [],
        /// FIFOs enabled (else one-character holding registers).
        FEN OFFSET(4) NUMBITS(1) [],
        /// Data bits per character.
        WLEN OFFSET(5) NUMBITS(2) [
            Bits5 = 0,
            Bits6 = 1,
            Bits7 = 2,
            Bits8 = 3
        ],
        /// Stick parity.
        SPS OFFSET(7) NUMBITS(1) []
    ],
    /// Control (3.3.8).
    pub CR [
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) [],
        /// Loopback.
        LBE OFFSET(7) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Request to send (nUARTRTS asserted).
        RTS OFFSET(11) NUMBITS(1) [],
        /// RTS hardware flow control.
        RTSEN OFFSET(14) NUMBITS(1) [],
        /// CTS hardware flow control.
        CTSEN OFFSET(15) NUMBITS(1) []
    ],
    /// FIFO levels at which the FIFO interrupts fire (3.3.9).
    pub IFLS [
        /// Transmit: when the FIFO drops to this fill level.
        TXIFLSEL OFFSET(0) NUMBITS(3) [
            Eighth = 0,
            Quarter = 1,
            Half = 2,
            ThreeQuarters = 3,
            SevenEighths = 4
        ],
        /// Receive: when the FIFO reaches this fill level.
        RXIFLSEL OFFSET(3) NUMBITS(3) [
            Eighth = 0,
            Quarter = 1,
            Half = 2,
            ThreeQuarters = 3,
            SevenEighths = 4
        ]
    ],
    /// The interrupt bits, alike in IMSC (mask set/clear: 1 enables), RIS
    /// (raw), MIS (masked) and ICR (write 1 to clear) (3.3.10-3.3.13).
    pub INT [
        /// Receive FIFO reached its level.
        RX OFFSET(4) NUMBITS(1) [],
        /// Transmit FIFO dropped to its level.
        TX OFFSET(5) NUMBITS(1) [],
        /// Receive timeout: characters wait in the FIFO below its level.
        RT OFFSET(6) NUMBITS(1) [],
        /// Framing error.
        FE OFFSET(7) NUMBITS(1) [],
        /// Parity error.
        PE OFFSET(8) NUMBITS(1) [],
        /// Break.
        BE OFFSET(9) NUMBITS(1) [],
        /// Overrun.
        OE OFFSET(10) NUMBITS(1) [],
        /// Every interrupt source (the modem ones included), for ICR.
        ALL OFFSET(0) NUMBITS(11) []
    ]
];

register_structs! {
    /// The register block.
    pub Regs {
        (0x00 => pub dr: ReadWrite<u32, DR::Register>),
        (0x04 => pub rsr_ecr: ReadWrite<u32>),
        (0x08 => _reserved0),
        (0x18 => pub fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x20 => pub ilpr: ReadWrite<u32>),
        (0x24 => pub ibrd: ReadWrite<u32, IBRD::Register>),
        (0x28 => pub fbrd: ReadWrite<u32, FBRD::Register>),
        (0x2c => pub lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x30 => pub cr: ReadWrite<u32, CR::Register>),
        (0x34 => pub ifls: ReadWrite<u32, IFLS::Register>),
        (0x38 => pub imsc: ReadWrite<u32, INT::Register>),
        (0x3c => pub ris: ReadOnly<u32, INT::Register>),
        (0x40 => pub mis: ReadOnly<u32, INT::Register>),
        (0x44 => pub icr: WriteOnly<u32, INT::Register>),
        (0x48 => pub dmacr: ReadWrite<u32>),
        (0x4c => @END),
    }
}
