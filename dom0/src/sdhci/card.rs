//! What the SD protocol says, apart from any controller (SD Physical Layer
//! Simplified Specification, version 9.00): the commands dom0 sends with
//! their response types, the OCR and card-status bits it looks at, the
//! capacity in the CSD, and the SD clock divider. Host-tested.

/// Response type of a command (Physical Layer spec 4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// None (CMD0).
    None,
    /// R1: card status, CRC and index checked.
    R1,
    /// R1b: R1, then busy on DAT0.
    R1b,
    /// R2: 136 bits (CID or CSD), CRC checked, no index.
    R2,
    /// R3: OCR, neither CRC nor index valid.
    R3,
    /// R6: published RCA (same checks as R1).
    R6,
    /// R7: interface condition (same checks as R1).
    R7,
}

/// A command: its index and response type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cmd {
    /// Command index (0..=63).
    pub index: u8,
    /// What the card answers.
    pub response: Response,
}

const fn cmd(index: u8, response: Response) -> Cmd {
    Cmd { index, response }
}

/// CMD0 GO_IDLE_STATE.
pub const GO_IDLE: Cmd = cmd(0, Response::None);
/// CMD2 ALL_SEND_CID.
pub const ALL_SEND_CID: Cmd = cmd(2, Response::R2);
/// CMD3 SEND_RELATIVE_ADDR.
pub const SEND_RELATIVE_ADDR: Cmd = cmd(3, Response::R6);
/// CMD7 SELECT_CARD.
pub const SELECT_CARD: Cmd = cmd(7, Response::R1b);
/// CMD8 SEND_IF_COND.
pub const SEND_IF_COND: Cmd = cmd(8, Response::R7);
/// CMD9 SEND_CSD.
pub const SEND_CSD: Cmd = cmd(9, Response::R2);
/// CMD16 SET_BLOCKLEN.
pub const SET_BLOCKLEN: Cmd = cmd(16, Response::R1);
/// CMD17 READ_SINGLE_BLOCK.
pub const READ_SINGLE: Cmd = cmd(17, Response::R1);
/// CMD18 READ_MULTIPLE_BLOCK.
pub const READ_MULTIPLE: Cmd = cmd(18, Response::R1);
/// CMD24 WRITE_BLOCK.
pub const WRITE_SINGLE: Cmd = cmd(24, Response::R1);
/// CMD25 WRITE_MULTIPLE_BLOCK.
pub const WRITE_MULTIPLE: Cmd = cmd(25, Response::R1);
/// CMD55 APP_CMD: the next command is application-specific.
pub const APP_CMD: Cmd = cmd(55, Response::R1);
/// ACMD6 SET_BUS_WIDTH.
pub const SET_BUS_WIDTH: Cmd = cmd(6, Response::R1);
/// ACMD41 SD_SEND_OP_COND.
pub const SD_SEND_OP_COND: Cmd = cmd(41, Response::R3);

/// CMD8's argument: voltage 2.7-3.6 V (bits 11:8 = 1) and the check
/// pattern 0xaa, which the card echoes (4.3.13).
pub const IF_COND_ARG: u32 = 0x1aa;
/// OCR: card power-up done (5.1).
pub const OCR_READY: u32 = 1 << 31;
/// OCR: card capacity status (block addressing), and in ACMD41's argument,
/// host capacity support.
pub const OCR_CCS: u32 = 1 << 30;
/// OCR voltage window 2.7-3.6 V (bits 23:15).
pub const OCR_VOLTAGES: u32 = 0x00ff_8000;
/// ACMD6's argument for a 4-bit bus.
pub const BUS_WIDTH_4: u32 = 2;
/// Card status (R1) error bits (4.10.1): out of range, address, block
/// length, erase, write protect, lock failed, CRC, illegal command, ECC,
/// controller error, general error.
pub const R1_ERRORS: u32 = 0xfdf8_0000;

/// The 128-bit register (CSD) a controller returns for an R2 response:
/// SDHCI's Response registers hold bits 127:8 of it in bits 119:0 (the CRC
/// byte is dropped, 2.2.7), `words[0]` lowest.
pub fn r2_register(words: [u32; 4]) -> u128 {
    let raw = words
        .iter()
        .rev()
        .fold(0u128, |acc, &w| (acc << 32) | u128::from(w));
    raw << 8
}

/// Bits `hi..=lo` of a 128-bit register.
fn bits(reg: u128, hi: u32, lo: u32) -> u64 {
    ((reg >> lo) & ((1u128 << (hi - lo + 1)) - 1)) as u64
}

/// A card's capacity in 512-byte sectors from its CSD (5.3): version 1.0
/// (standard capacity), 2.0 (high and extended capacity) or 3.0 (ultra
/// capacity); `None` for another structure version.
pub fn csd_sectors(csd: u128) -> Option<u64> {
    match bits(csd, 127, 126) {
        0 => {
            let c_size = bits(csd, 73, 62);
            let mult = bits(csd, 49, 47);
            let read_bl_len = bits(csd, 83, 80);
            // (C_SIZE + 1) * 2^(C_SIZE_MULT + 2) blocks of 2^READ_BL_LEN bytes.
            Some(((c_size + 1) << (mult + 2 + read_bl_len)) / 512)
        }
        // (C_SIZE + 1) * 512 KiB.
        1 => Some((bits(csd, 69, 48) + 1) * 1024),
        2 => Some((bits(csd, 75, 48) + 1) * 1024),
        _ => None,
    }
}

/// The SD clock divider field for at most `target_hz` from `base_hz`
/// (Host Controller spec 2.2.14): version 3.00's 10-bit divided clock mode
/// (SDCLK = base / 2N, N = 0 meaning base), or before it an 8-bit power of
/// two (the same formula, N in 1, 2, 4 ... 128). The slowest divider
/// if even that is too fast.
pub fn divider(base_hz: u64, target_hz: u64, ten_bit: bool) -> u32 {
    if base_hz <= target_hz {
        return 0;
    }
    let n = base_hz.div_ceil(2 * target_hz.max(1));
    if ten_bit {
        n.min(0x3ff) as u32
    } else {
        n.next_power_of_two().min(0x80) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inverse of [`r2_register`]: what the controller would hold.
    fn words(reg: u128) -> [u32; 4] {
        let raw = reg >> 8;
        [0, 1, 2, 3].map(|i| (raw >> (32 * i)) as u32)
    }

    fn set(reg: &mut u128, hi: u32, lo: u32, v: u64) {
        let mask = ((1u128 << (hi - lo + 1)) - 1) << lo;
        *reg = (*reg & !mask) | ((u128::from(v) << lo) & mask);
    }

    #[test]
    fn r2_words_round_trip_without_the_crc_byte() {
        let reg = 0x4000_0e00_325b_5900_00ed_c87f_800a_4000u128;
        assert_eq!(r2_register(words(reg)), reg & !0xff);
    }

    #[test]
    fn standard_capacity_csd() {
        // 64 MiB: 512-byte blocks, C_SIZE_MULT 7 (x512), C_SIZE 255.
        let mut csd = 0u128;
        set(&mut csd, 83, 80, 9);
        set(&mut csd, 49, 47, 7);
        set(&mut csd, 73, 62, 255);
        assert_eq!(csd_sectors(r2_register(words(csd))), Some(131_072));
        // 2 GiB: 1024-byte blocks, C_SIZE 4095, C_SIZE_MULT 7.
        set(&mut csd, 83, 80, 10);
        set(&mut csd, 73, 62, 4095);
        assert_eq!(csd_sectors(csd), Some(4 << 20));
    }

    #[test]
    fn high_and_ultra_capacity_csd() {
        let mut csd = 0u128;
        set(&mut csd, 127, 126, 1);
        // A "8 GB" card: C_SIZE 0x3b37 -> 15,160 * 512 KiB.
        set(&mut csd, 69, 48, 0x3b37);
        assert_eq!(csd_sectors(csd), Some(15_160 * 1024));
        // Bits 75:70 are not part of version 2.0's C_SIZE, but are of 3.0's.
        set(&mut csd, 75, 70, 1);
        assert_eq!(csd_sectors(csd), Some(15_160 * 1024));
        set(&mut csd, 127, 126, 2);
        assert_eq!(csd_sectors(csd), Some(((1 << 22) + 0x3b37 + 1) * 1024));
        set(&mut csd, 127, 126, 3);
        assert_eq!(csd_sectors(csd), None);
    }

    #[test]
    fn dividers_never_exceed_the_target() {
        // 52 MHz base: 400 kHz identification, 25 MHz transfer.
        assert_eq!(divider(52_000_000, 400_000, true), 65);
        assert_eq!(divider(52_000_000, 25_000_000, true), 2);
        assert_eq!(divider(52_000_000, 400_000, false), 0x80);
        assert_eq!(divider(52_000_000, 25_000_000, false), 2);
        assert_eq!(divider(20_000_000, 25_000_000, false), 0);
        // Unreachable targets take the slowest divider.
        assert_eq!(divider(250_000_000, 1, true), 0x3ff);
        for (base, target) in [(100_000_000, 400_000), (41_666_666, 25_000_000)] {
            for ten in [true, false] {
                let n = u64::from(divider(base, target, ten));
                assert!(base / (2 * n) <= target, "{base} {target} {ten}");
            }
        }
    }
}
