//! Line settings: the baud-rate divisor from the UART's reference clock,
//! and how dom0 reads them from its command line. Host-tested.

/// The reference clock dom0 assumes when `dom0.uart-clock` says nothing:
/// the Raspberry Pi firmware's default PL011 clock (config.txt
/// `init_uart_clock`, 48 MHz). QEMU ignores the divisor, so any value
/// works there.
pub const DEFAULT_CLOCK_HZ: u64 = 48_000_000;
/// The line speed when `dom0.uart-baud` says nothing.
pub const DEFAULT_BAUD: u64 = 115_200;

/// The divisor registers' values for one line speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Divisor {
    /// `UARTIBRD`: the integer part.
    pub int: u32,
    /// `UARTFBRD`: the fraction, in 64ths.
    pub frac: u32,
}

/// Largest integer divisor (`UARTIBRD` is 16 bits).
const MAX_DIVINT: u64 = 0xffff;

/// The divisor for `baud` from a `clock_hz` reference: clock / (16 x baud)
/// with the fraction rounded to 64ths (PL011 TRM 3.3.6). `None` if the
/// speed cannot be made (zero, or a divisor outside 1 ..= 0xffff + 63/64).
pub fn divisor(clock_hz: u64, baud: u64) -> Option<Divisor> {
    if baud == 0 {
        return None;
    }
    // 64 x clock / (16 x baud) = 4 x clock / baud, rounded to nearest.
    let in_64ths = clock_hz.checked_mul(4)?.checked_add(baud / 2)? / baud;
    let int = in_64ths >> 6;
    if int == 0 || int > MAX_DIVINT {
        return None;
    }
    Some(Divisor {
        int: int as u32,
        frac: (in_64ths & 0x3f) as u32,
    })
}

/// The speed a divisor really gives, for the boot report.
pub fn actual_baud(clock_hz: u64, d: Divisor) -> u64 {
    let in_64ths = (u64::from(d.int) << 6) | u64::from(d.frac);
    (clock_hz * 4).checked_div(in_64ths).unwrap_or(0)
}

/// Output bytes as a terminal wants them: each `\n` preceded by `\r`
/// (dom0's text uses bare newlines; a serial terminal needs the return).
pub fn crlf(bytes: &[u8], mut put: impl FnMut(u8)) {
    for &b in bytes {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn divisors_of_common_clocks() {
        // PL011 TRM's worked example: 4 MHz, 230400 baud -> 1.085 -> 1 + 5/64.
        assert_eq!(
            divisor(4_000_000, 230_400),
            Some(Divisor { int: 1, frac: 5 })
        );
        // The Pi's 48 MHz: 26.042 -> 26 + 3/64.
        assert_eq!(
            divisor(48_000_000, 115_200),
            Some(Divisor { int: 26, frac: 3 })
        );
        // QEMU virt's 24 MHz apb-pclk: 13.02 -> 13 + 1/64.
        assert_eq!(
            divisor(24_000_000, 115_200),
            Some(Divisor { int: 13, frac: 1 })
        );
        let d = divisor(48_000_000, 115_200).unwrap();
        let got = actual_baud(48_000_000, d);
        assert!(got.abs_diff(115_200) < 115_200 / 100, "{got}");
    }

    #[test]
    fn impossible_speeds_are_refused() {
        assert_eq!(divisor(48_000_000, 0), None);
        // Faster than clock / 16.
        assert_eq!(divisor(48_000_000, 4_000_000), None);
        // Slower than the 16-bit divisor allows.
        assert_eq!(divisor(48_000_000, 10), None);
        assert_eq!(divisor(u64::MAX, 115_200), None);
    }

    #[test]
    fn newlines_get_a_return() {
        let mut out = Vec::new();
        crlf(b"a\nb\n\n", |b| out.push(b));
        assert_eq!(out, b"a\r\nb\r\n\r\n");
    }
}
