//! The standard SD host controller register block (SD Host Controller
//! Simplified Specification, version 3.00, section 2.2), read and written
//! only as 32-bit words: the BCM2835/BCM2711 controllers drop narrower
//! writes, so registers that share a word are declared as that word (the
//! 16-bit Transfer Mode and Command registers are one `CMDTM` word, and a
//! write of it issues the command).

use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_bitfields! [u32,
    /// Block Size (2.2.2) and Block Count (2.2.3).
    pub BLOCK [
        /// Transfer block size in bytes.
        SIZE OFFSET(0) NUMBITS(12) [],
        /// Blocks to transfer (when enabled in `CMDTM::BLKCNT_EN`).
        COUNT OFFSET(16) NUMBITS(16) []
    ],
    /// Transfer Mode (2.2.5) and Command (2.2.6).
    pub CMDTM [
        /// The Block Count register limits a multi-block transfer.
        BLKCNT_EN OFFSET(1) NUMBITS(1) [],
        /// Auto command after the transfer.
        AUTO_CMD OFFSET(2) NUMBITS(2) [
            None = 0,
            /// CMD12 (STOP_TRANSMISSION) after the last block.
            Cmd12 = 1
        ],
        /// Data direction: card to host.
        READ OFFSET(4) NUMBITS(1) [],
        /// More than one block.
        MULTI OFFSET(5) NUMBITS(1) [],
        /// Response length.
        RESPONSE OFFSET(16) NUMBITS(2) [
            None = 0,
            Bits136 = 1,
            Bits48 = 2,
            /// 48 bits, then the card holds DAT0 busy.
            Bits48Busy = 3
        ],
        /// The controller checks the response's CRC.
        CRC_CHECK OFFSET(19) NUMBITS(1) [],
        /// The controller checks the response's command index.
        INDEX_CHECK OFFSET(20) NUMBITS(1) [],
        /// The command moves data on the DAT lines.
        DATA OFFSET(21) NUMBITS(1) [],
        /// Command index.
        INDEX OFFSET(24) NUMBITS(6) []
    ],
    /// Present State (2.2.9).
    pub PRNSTS [
        /// The CMD line is busy: no new command may be issued.
        CMD_INHIBIT OFFSET(0) NUMBITS(1) [],
        /// The DAT lines are busy: no data command may be issued.
        DAT_INHIBIT OFFSET(1) NUMBITS(1) [],
        /// A card is inserted (meaningless where card detect is not wired).
        CARD_INSERTED OFFSET(16) NUMBITS(1) [],
        /// Write-protect switch level: 1 means writes are allowed.
        WRITE_ENABLED OFFSET(19) NUMBITS(1) []
    ],
    /// Host Control 1 (2.2.11), Power Control (2.2.12), Block Gap and Wakeup
    /// Control.
    pub CONTROL0 [
        /// 4-bit data bus (else 1-bit).
        DATA_WIDTH_4 OFFSET(1) NUMBITS(1) [],
        /// SD bus power on.
        BUS_POWER OFFSET(8) NUMBITS(1) [],
        /// SD bus voltage.
        BUS_VOLTAGE OFFSET(9) NUMBITS(3) [
            V1_8 = 5,
            V3_0 = 6,
            V3_3 = 7
        ]
    ],
    /// Clock Control (2.2.14), Timeout Control (2.2.15), Software Reset
    /// (2.2.16).
    pub CONTROL1 [
        /// Internal clock enable.
        CLK_INTERNAL_EN OFFSET(0) NUMBITS(1) [],
        /// The internal clock is stable (read only).
        CLK_STABLE OFFSET(1) NUMBITS(1) [],
        /// SD clock to the card enabled.
        CLK_SD_EN OFFSET(2) NUMBITS(1) [],
        /// Bits 9:8 of the 10-bit divider (version 3.00).
        FREQ_HI OFFSET(6) NUMBITS(2) [],
        /// Bits 7:0 of the divider.
        FREQ_LO OFFSET(8) NUMBITS(8) [],
        /// Data timeout: TMCLK * 2^(13 + value).
        DATA_TIMEOUT OFFSET(16) NUMBITS(4) [],
        /// Resets the whole controller; self-clearing.
        RESET_ALL OFFSET(24) NUMBITS(1) [],
        /// Resets the command circuit; self-clearing.
        RESET_CMD OFFSET(25) NUMBITS(1) [],
        /// Resets the data circuit; self-clearing.
        RESET_DAT OFFSET(26) NUMBITS(1) []
    ],
    /// Normal (bits 15:0) and Error (31:16) Interrupt Status (2.2.17,
    /// 2.2.18), write 1 to clear; the same layout enables them.
    pub INTERRUPT [
        CMD_DONE OFFSET(0) NUMBITS(1) [],
        DATA_DONE OFFSET(1) NUMBITS(1) [],
        WRITE_READY OFFSET(4) NUMBITS(1) [],
        READ_READY OFFSET(5) NUMBITS(1) [],
        /// Some error bit (31:16) is set.
        ERROR OFFSET(15) NUMBITS(1) [],
        CMD_TIMEOUT OFFSET(16) NUMBITS(1) [],
        CMD_CRC OFFSET(17) NUMBITS(1) [],
        CMD_END_BIT OFFSET(18) NUMBITS(1) [],
        CMD_INDEX OFFSET(19) NUMBITS(1) [],
        DATA_TIMEOUT OFFSET(20) NUMBITS(1) [],
        DATA_CRC OFFSET(21) NUMBITS(1) [],
        DATA_END_BIT OFFSET(22) NUMBITS(1) [],
        AUTO_CMD OFFSET(24) NUMBITS(1) []
    ],
    /// Capabilities, low word (2.2.26).
    pub CAPS [
        /// Base clock of the SD clock in MHz; 0: not given.
        BASE_CLOCK_MHZ OFFSET(8) NUMBITS(8) []
    ],
    /// Slot Interrupt Status (2.2.32) and Host Controller Version (2.2.33).
    pub VERSION [
        /// 0: spec 1.00, 1: 2.00, 2: 3.00.
        SPEC OFFSET(16) NUMBITS(8) []
    ]
];

register_structs! {
    /// The register block.
    pub Regs {
        (0x00 => _sdma),
        (0x04 => pub block: ReadWrite<u32, BLOCK::Register>),
        (0x08 => pub argument: ReadWrite<u32>),
        (0x0c => pub cmdtm: ReadWrite<u32, CMDTM::Register>),
        (0x10 => pub response: [ReadOnly<u32>; 4]),
        (0x20 => pub data: ReadWrite<u32>),
        (0x24 => pub prnsts: ReadOnly<u32, PRNSTS::Register>),
        (0x28 => pub control0: ReadWrite<u32, CONTROL0::Register>),
        (0x2c => pub control1: ReadWrite<u32, CONTROL1::Register>),
        (0x30 => pub interrupt: ReadWrite<u32, INTERRUPT::Register>),
        /// Which statuses latch in `interrupt`.
        (0x34 => pub status_enable: ReadWrite<u32, INTERRUPT::Register>),
        /// Which statuses raise the interrupt line.
        (0x38 => pub signal_enable: ReadWrite<u32, INTERRUPT::Register>),
        (0x3c => _control2),
        (0x40 => pub caps: ReadOnly<u32, CAPS::Register>),
        (0x44 => _reserved),
        (0xfc => pub version: ReadOnly<u32, VERSION::Register>),
        (0x100 => @END),
    }
}

/// Spec version 3.00 in `VERSION::SPEC`: the 10-bit divided clock mode.
pub const SPEC_3_00: u32 = 2;
