//! What the test guests share: the target address of a hostile guest, the
//! "still alive" report, and the ABI checker's bookkeeping.
//!
//! Hostile guests take their target from the command line (`addr=<IPA>`,
//! decimal or `0x` hex) so a test configuration can aim them at whatever the
//! platform puts there; each has a default for QEMU `virt`.
#![no_std]

extern crate alloc;

pub mod events;
pub mod rings;

use core::fmt::Debug;
use pv_guest_sdk::{ShutdownReason, StartInfo, println};

/// GIC distributor on QEMU `virt` (its DTB: `intc@8000000`).
pub const QEMU_VIRT_GICD: u64 = 0x0800_0000;
/// PL011 UART on QEMU `virt` (its DTB: `pl011@9000000`), the hypervisor's console.
pub const QEMU_VIRT_UART: u64 = 0x0900_0000;

/// The IPA a hostile guest aims at: `addr=` from the command line, else
/// `default`.
pub fn target(si: &StartInfo, default: u64) -> u64 {
    si.cmdline().get_u64("addr").unwrap_or(default)
}

/// The first IPA past this guest's RAM.
///
/// On QEMU `virt` host RAM also starts at 0x4000_0000 and holds the
/// hypervisor, dom0 and every other domain's frames, so IPAs just past a
/// guest's RAM are, physically, memory the guest must never see. A stage 2
/// that maps more than the domain's RAM (identity maps, blocks rounded up)
/// would let an access there succeed; a correct one faults.
pub fn past_ram(si: &StartInfo) -> u64 {
    si.ram().end
}

/// Reports that a hostile guest survived its bad deed, then powers off.
pub fn still_alive(name: &str) -> ! {
    println!("{name}: STILL ALIVE (isolation broken)");
    pv_guest_sdk::shutdown(ShutdownReason::Poweroff)
}

/// Counts failed checks and prints each failure as `<prefix>: FAIL <what>`.
#[derive(Debug)]
pub struct Checker {
    prefix: &'static str,
    failures: u32,
    checks: u32,
}

impl Checker {
    /// A checker whose lines start with `prefix`.
    pub const fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            failures: 0,
            checks: 0,
        }
    }

    /// Checks that `cond` holds.
    pub fn check(&mut self, what: &str, cond: bool) {
        self.checks += 1;
        if !cond {
            self.failures += 1;
            println!("{}: FAIL {what}", self.prefix);
        }
    }

    /// Records a failure described by `args`.
    pub fn fail(&mut self, args: core::fmt::Arguments<'_>) {
        self.checks += 1;
        self.failures += 1;
        println!("{}: FAIL {args}", self.prefix);
    }

    /// Checks `got == want`, printing both on failure.
    pub fn expect_eq<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T) {
        self.checks += 1;
        if got != want {
            self.failures += 1;
            println!(
                "{}: FAIL {what}: expected {want:?}, got {got:?}",
                self.prefix
            );
        }
    }

    /// Number of failed checks so far.
    pub const fn failures(&self) -> u32 {
        self.failures
    }

    /// Prints `<prefix>: PASS (<n> checks)` or `<prefix>: FAIL <n> of <m>
    /// checks`; true if everything passed.
    pub fn finish(&self) -> bool {
        if self.failures == 0 {
            println!("{}: PASS ({} checks)", self.prefix, self.checks);
        } else {
            println!(
                "{}: FAIL {} of {} checks",
                self.prefix, self.failures, self.checks
            );
        }
        self.failures == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_counts() {
        let mut c = Checker::new("t");
        c.check("ok", true);
        c.expect_eq("eq", 1, 1);
        assert_eq!(c.failures(), 0);
        c.expect_eq("ne", 1, 2);
        c.check("no", false);
        c.fail(format_args!("x {}", 1));
        assert_eq!(c.failures(), 3);
        assert!(!c.finish());
    }
}
