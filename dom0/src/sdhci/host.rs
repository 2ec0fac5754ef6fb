//! An SD memory card behind an SDHCI controller, driven by programmed I/O
//! (no DMA, no interrupt: every wait polls the Interrupt Status register
//! against a deadline), as the Host Controller spec's sequences lay out:
//! reset and clock (3.2), power (3.3), commands (3.7.1), transfers by
//! the buffer data port (3.7.2), and the card's initialisation (Physical
//! Layer spec 4.2: CMD0, CMD8, ACMD41, CMD2, CMD3, then CMD9, CMD7, CMD16
//! for standard capacity, ACMD6). Nothing depends on what firmware left:
//! the controller is reset and its clock set up from scratch.

use core::fmt;

use pv_guest_sdk::time::Deadline;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use super::card::{self, Cmd, Response};
use super::regs::{BLOCK, CMDTM, CONTROL0, CONTROL1, INTERRUPT, PRNSTS, Regs, SPEC_3_00, VERSION};
use crate::blkback::disk::{BlockDevice, SECTOR};
use crate::blkback::engine::IoFailed;

/// Identification-mode clock limit (Physical Layer spec 4.2).
const ID_CLOCK_HZ: u64 = 400_000;
/// Default-speed data clock limit.
const DATA_CLOCK_HZ: u64 = 25_000_000;
/// Base clock assumed when the capabilities do not give one: the fastest
/// the BCM2711 runs its EMMC2 at, so that the card is never overclocked.
const FALLBACK_BASE_HZ: u64 = 250_000_000;
/// Largest data timeout counter value (TMCLK * 2^27).
const MAX_DATA_TIMEOUT: u32 = 0xe;
/// Wait limits: a reset or clock, a command, one data block, ACMD41's
/// power-up (1 s in Physical Layer spec 4.2.3).
const RESET_MS: u64 = 100;
const CMD_MS: u64 = 500;
const BLOCK_MS: u64 = 2_000;
const POWER_UP_MS: u64 = 1_000;
/// Most blocks one transfer moves (Block Count is 16 bits; smaller keeps a
/// failed transfer cheap to retry).
const MAX_BLOCKS: usize = 128;

/// Why the card failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdError {
    /// The controller did not finish a reset or its clock in time.
    Controller(&'static str),
    /// No SD memory card answered (none inserted, or not a memory card).
    NoCard,
    /// A command failed: its index and the error bits of Interrupt Status.
    Command(u8, u32),
    /// A command's card status reported an error.
    Status(u8, u32),
    /// A data transfer failed: the error bits of Interrupt Status.
    Data(u32),
    /// Something did not complete in time.
    Timeout(&'static str),
    /// The card's CSD has a structure version this driver does not know.
    UnknownCsd,
}

impl fmt::Display for SdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdError::Controller(what) => write!(f, "controller: {what}"),
            SdError::NoCard => f.write_str("no SD memory card"),
            SdError::Command(i, e) => write!(f, "CMD{i} failed (interrupt status {e:#x})"),
            SdError::Status(i, s) => write!(f, "CMD{i}: card status {s:#x}"),
            SdError::Data(e) => write!(f, "transfer failed (interrupt status {e:#x})"),
            SdError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            SdError::UnknownCsd => f.write_str("unknown CSD structure"),
        }
    }
}

/// An initialised SD memory card, selected and in transfer state.
pub struct Card {
    /// Registers' address (identity-mapped into dom0 by the hypervisor).
    base: usize,
    high_capacity: bool,
    sectors: u64,
    read_only: bool,
}

impl Card {
    /// Resets the controller whose registers are at `base` and initialises
    /// the card in its slot.
    ///
    /// # Safety
    ///
    /// `base` must be the address of an SDHCI register block mapped for
    /// dom0's whole life, and nothing else may drive it.
    pub unsafe fn init(base: usize) -> Result<Self, SdError> {
        let mut c = Card {
            base,
            high_capacity: false,
            sectors: 0,
            read_only: false,
        };
        c.bring_up()?;
        Ok(c)
    }

    /// The registers' address (names the card in messages).
    pub fn base(&self) -> usize {
        self.base
    }

    fn regs(&self) -> &Regs {
        // SAFETY: `init`'s contract: the block is mapped for dom0's life and
        // this card is its only driver; MMIO through `tock-registers` is
        // volatile.
        unsafe { &*(self.base as *const Regs) }
    }

    fn wait(
        &self,
        what: &'static str,
        ms: u64,
        mut done: impl FnMut() -> bool,
    ) -> Result<(), SdError> {
        let deadline = Deadline::after_ms(ms);
        while !done() {
            if deadline.passed() {
                return Err(SdError::Timeout(what));
            }
            core::hint::spin_loop();
        }
        Ok(())
    }

    fn reset(
        &self,
        field: tock_registers::fields::Field<u32, CONTROL1::Register>,
    ) -> Result<(), SdError> {
        let r = self.regs();
        r.control1.modify(field.val(1));
        self.wait("reset", RESET_MS, || !r.control1.is_set(field))
            .map_err(|_| SdError::Controller("reset did not complete"))
    }

    /// Sets the SD clock to at most `hz` (Host Controller spec 3.2.3: SD
    /// clock off, divider, internal clock stable, SD clock on).
    fn set_clock(&self, hz: u64) -> Result<(), SdError> {
        let r = self.regs();
        let base = match r.caps.read(super::regs::CAPS::BASE_CLOCK_MHZ) {
            0 => FALLBACK_BASE_HZ,
            mhz => u64::from(mhz) * 1_000_000,
        };
        let ten_bit = r.version.read(VERSION::SPEC) >= SPEC_3_00;
        let n = card::divider(base, hz, ten_bit);
        r.control1.modify(CONTROL1::CLK_SD_EN::CLEAR);
        r.control1.modify(
            CONTROL1::FREQ_LO.val(n & 0xff)
                + CONTROL1::FREQ_HI.val(n >> 8)
                + CONTROL1::CLK_INTERNAL_EN::SET
                + CONTROL1::DATA_TIMEOUT.val(MAX_DATA_TIMEOUT),
        );
        self.wait("clock", RESET_MS, || {
            r.control1.is_set(CONTROL1::CLK_STABLE)
        })
        .map_err(|_| SdError::Controller("internal clock not stable"))?;
        r.control1.modify(CONTROL1::CLK_SD_EN::SET);
        Ok(())
    }

    fn bring_up(&mut self) -> Result<(), SdError> {
        let r = self.regs();
        self.reset(CONTROL1::RESET_ALL)?;
        // Bus voltage first, then power (3.3).
        r.control0.write(CONTROL0::BUS_VOLTAGE::V3_3);
        r.control0
            .write(CONTROL0::BUS_VOLTAGE::V3_3 + CONTROL0::BUS_POWER::SET);
        self.set_clock(ID_CLOCK_HZ)?;
        // Every status this driver waits for latches; none raises the line.
        r.status_enable.set(u32::MAX);
        r.signal_enable.set(0);
        r.interrupt.set(u32::MAX);

        self.command(card::GO_IDLE, 0)?;
        // A version 2.00+ card echoes CMD8's check pattern; an older one
        // does not answer (and must not be told we support high capacity).
        let v2 = match self.command(card::SEND_IF_COND, card::IF_COND_ARG) {
            Ok(echo) => echo & 0xfff == card::IF_COND_ARG,
            Err(SdError::Command(..)) => false,
            Err(e) => return Err(e),
        };
        let hcs = if v2 { card::OCR_CCS } else { 0 };
        let deadline = Deadline::after_ms(POWER_UP_MS);
        let ocr = loop {
            let ocr = self
                .app_command(card::SD_SEND_OP_COND, hcs | card::OCR_VOLTAGES, 0)
                .map_err(|e| match e {
                    SdError::Command(..) => SdError::NoCard,
                    e => e,
                })?;
            if ocr & card::OCR_READY != 0 {
                break ocr;
            }
            if deadline.passed() {
                return Err(SdError::Timeout("card power-up (ACMD41)"));
            }
            pv_guest_sdk::yield_now();
        };
        let high_capacity = ocr & card::OCR_CCS != 0;
        self.command(card::ALL_SEND_CID, 0)?;
        let rca = self.command(card::SEND_RELATIVE_ADDR, 0)? & 0xffff_0000;
        self.command(card::SEND_CSD, rca)?;
        let words = [0, 1, 2, 3].map(|i| r.response[i].get());
        let sectors = card::csd_sectors(card::r2_register(words)).ok_or(SdError::UnknownCsd)?;
        self.command(card::SELECT_CARD, rca)?;
        if !high_capacity {
            // Standard capacity cards take byte addresses and a block length.
            self.command(card::SET_BLOCKLEN, SECTOR as u32)?;
        }
        self.app_command(card::SET_BUS_WIDTH, card::BUS_WIDTH_4, rca)?;
        r.control0.modify(CONTROL0::DATA_WIDTH_4::SET);
        self.set_clock(DATA_CLOCK_HZ)?;
        let read_only = !r.prnsts.is_set(PRNSTS::WRITE_ENABLED);
        self.high_capacity = high_capacity;
        self.sectors = sectors;
        self.read_only = read_only;
        Ok(())
    }

    /// CMD55 (to card `rca`) then application command `cmd`.
    fn app_command(&self, cmd: Cmd, arg: u32, rca: u32) -> Result<u32, SdError> {
        self.command(card::APP_CMD, rca)?;
        self.command(cmd, arg)
    }

    /// Issues a command without data; returns response word 0.
    fn command(&self, cmd: Cmd, arg: u32) -> Result<u32, SdError> {
        self.issue(cmd, arg, CMDTM::DATA::CLEAR)?;
        if cmd.response == Response::R1b {
            self.wait_for(INTERRUPT::DATA_DONE, CMD_MS, "busy end")
                .map_err(|e| self.recover(e))?;
        }
        Ok(self.regs().response[0].get())
    }

    /// Waits for the lines to be free, issues `cmd` with `mode` (transfer
    /// mode and data bits), and waits for its completion.
    fn issue(
        &self,
        cmd: Cmd,
        arg: u32,
        mode: tock_registers::fields::FieldValue<u32, CMDTM::Register>,
    ) -> Result<(), SdError> {
        let r = self.regs();
        let data = mode.read(CMDTM::DATA) != 0 || cmd.response == Response::R1b;
        self.wait("a free command line", CMD_MS, || {
            let busy = r.prnsts.is_set(PRNSTS::CMD_INHIBIT)
                || (data && r.prnsts.is_set(PRNSTS::DAT_INHIBIT));
            !busy
        })?;
        r.interrupt.set(u32::MAX);
        r.argument.set(arg);
        let response = match cmd.response {
            Response::None => CMDTM::RESPONSE::None,
            Response::R2 => CMDTM::RESPONSE::Bits136 + CMDTM::CRC_CHECK::SET,
            Response::R3 => CMDTM::RESPONSE::Bits48,
            Response::R1b => {
                CMDTM::RESPONSE::Bits48Busy + CMDTM::CRC_CHECK::SET + CMDTM::INDEX_CHECK::SET
            }
            Response::R1 | Response::R6 | Response::R7 => {
                CMDTM::RESPONSE::Bits48 + CMDTM::CRC_CHECK::SET + CMDTM::INDEX_CHECK::SET
            }
        };
        r.cmdtm
            .write(mode + response + CMDTM::INDEX.val(u32::from(cmd.index)));
        match self.wait_for(INTERRUPT::CMD_DONE, CMD_MS, "command completion") {
            Ok(()) => Ok(()),
            Err(SdError::Data(bits)) => Err(self.recover(SdError::Command(cmd.index, bits))),
            Err(e) => Err(self.recover(e)),
        }
    }

    /// Waits until `flag` latches in Interrupt Status (and clears it), or an
    /// error does ([`SdError::Data`] with the error bits).
    fn wait_for(
        &self,
        flag: tock_registers::fields::Field<u32, INTERRUPT::Register>,
        ms: u64,
        what: &'static str,
    ) -> Result<(), SdError> {
        let r = self.regs();
        let deadline = Deadline::after_ms(ms);
        loop {
            let status = r.interrupt.extract();
            if status.is_set(INTERRUPT::ERROR) {
                return Err(SdError::Data(status.get() & 0xffff_0000));
            }
            if status.is_set(flag) {
                r.interrupt.write(flag.val(1));
                return Ok(());
            }
            if deadline.passed() {
                return Err(SdError::Timeout(what));
            }
            core::hint::spin_loop();
        }
    }

    /// After a failure: clears the statuses and resets the command and data
    /// circuits so that the next command starts clean (3.10).
    fn recover(&self, e: SdError) -> SdError {
        self.regs().interrupt.set(u32::MAX);
        let _ = self.reset(CONTROL1::RESET_CMD);
        let _ = self.reset(CONTROL1::RESET_DAT);
        e
    }

    fn address(&self, sector: u64) -> u32 {
        // A standard capacity card (at most 2 GiB) takes byte addresses.
        if self.high_capacity {
            sector as u32
        } else {
            (sector * SECTOR as u64) as u32
        }
    }

    /// One transfer of `blocks` blocks from `sector` on, moving each block
    /// through `each` (which reads or writes the buffer data port).
    fn transfer(
        &self,
        sector: u64,
        blocks: usize,
        read: bool,
        mut each: impl FnMut(&Regs, usize),
    ) -> Result<(), SdError> {
        let r = self.regs();
        r.block
            .write(BLOCK::SIZE.val(SECTOR as u32) + BLOCK::COUNT.val(blocks as u32));
        let multi = blocks > 1;
        let cmd = match (read, multi) {
            (true, false) => card::READ_SINGLE,
            (true, true) => card::READ_MULTIPLE,
            (false, false) => card::WRITE_SINGLE,
            (false, true) => card::WRITE_MULTIPLE,
        };
        let mut mode = CMDTM::DATA::SET + CMDTM::READ.val(u32::from(read));
        if multi {
            mode += CMDTM::MULTI::SET + CMDTM::BLKCNT_EN::SET + CMDTM::AUTO_CMD::Cmd12;
        }
        self.issue(cmd, self.address(sector), mode)?;
        let status = r.response[0].get();
        if status & card::R1_ERRORS != 0 {
            return Err(self.recover(SdError::Status(cmd.index, status)));
        }
        let ready = if read {
            INTERRUPT::READ_READY
        } else {
            INTERRUPT::WRITE_READY
        };
        for b in 0..blocks {
            self.wait_for(ready, BLOCK_MS, "the data buffer")
                .map_err(|e| self.recover(e))?;
            each(r, b);
        }
        self.wait_for(INTERRUPT::DATA_DONE, BLOCK_MS, "transfer completion")
            .map_err(|e| self.recover(e))
    }

    fn check(&self, sector: u64, len: usize) -> Result<(), IoFailed> {
        let count = (len / SECTOR) as u64;
        let fits = sector
            .checked_add(count)
            .is_some_and(|end| end <= self.sectors);
        (len > 0 && len.is_multiple_of(SECTOR) && fits)
            .then_some(())
            .ok_or(IoFailed)
    }

    fn report(e: SdError) -> IoFailed {
        pv_guest_sdk::println!("dom0: sdhci: {e}");
        IoFailed
    }
}

impl BlockDevice for Card {
    fn capacity(&self) -> u64 {
        self.sectors
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoFailed> {
        self.check(sector, buf.len())?;
        for (i, chunk) in buf.chunks_mut(MAX_BLOCKS * SECTOR).enumerate() {
            let at = sector + (i * MAX_BLOCKS) as u64;
            self.transfer(at, chunk.len() / SECTOR, true, |r, b| {
                for word in chunk[b * SECTOR..][..SECTOR].chunks_exact_mut(4) {
                    word.copy_from_slice(&r.data.get().to_le_bytes());
                }
            })
            .map_err(Self::report)?;
        }
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoFailed> {
        if self.read_only {
            return Err(IoFailed);
        }
        self.check(sector, buf.len())?;
        for (i, chunk) in buf.chunks(MAX_BLOCKS * SECTOR).enumerate() {
            let at = sector + (i * MAX_BLOCKS) as u64;
            self.transfer(at, chunk.len() / SECTOR, false, |r, b| {
                for word in chunk[b * SECTOR..][..SECTOR].chunks_exact(4) {
                    r.data
                        .set(u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
                }
            })
            .map_err(Self::report)?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoFailed> {
        // A write completes (Transfer Complete) only after the card left
        // its busy state, and SD cards have no volatile cache unless the
        // host turns one on (Physical Layer spec 4.17), which dom0 does not.
        Ok(())
    }
}
