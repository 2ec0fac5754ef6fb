//! `time_op` (guest ABI major 1, call 7): the one-shot timer and the time page.
//!
//! Guests read time from the virtual counter (`CNTVCT_EL0`, frequency
//! `CNTFRQ_EL0`) directly. Each domain's virtual counter reads 0 when the
//! domain is created (the hypervisor sets `CNTVOFF_EL2` per domain), so every
//! deadline below is a value of the caller's own virtual counter.
//!
//! The time of day is published in a [`TimeInfo`] in a page of the guest's
//! RAM that it registers with [`Op::InitTimePage`]: wall-clock seconds and
//! nanoseconds at a given virtual-counter value, under a sequence counter.
//! dom0 sets the wall clock with `domctl set_wallclock`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::Error;
use crate::call::Call;
use crate::spec::{CallSpec, LayoutDesc, SubOpSpec, layout_desc};

abi_enum! {
    /// Sub-operations of `time_op`, in `x1`.
    pub enum Op: u16, unknown = NotImplemented {
        /// Arm the calling vCPU's one-shot timer: at or after virtual-counter
        /// value `x2` the hypervisor raises `Virq::Timer` on this vCPU (and
        /// wakes it if blocked). A deadline in the past fires at once; 0
        /// cancels. A new deadline replaces the old one. No errors.
        SetTimer = 0 => "set_timer",
        /// Register the time page: `x2` = IPA of a [`TimeInfo`], 64-byte
        /// aligned (so it never crosses a page), in the caller's RAM. The hypervisor fills it at once and
        /// whenever dom0 sets the wall clock. A new registration replaces the
        /// old one. Errors: `BadAddress`.
        InitTimePage = 1 => "init_time_page",
    }
}

/// The time page. Every field is OUT; the hypervisor writes it as a
/// sequence lock: `version` becomes odd, the fields change, `version`
/// becomes even again. A reader reads `version`, retries while it is odd,
/// reads the fields, and retries if `version` changed.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct TimeInfo {
    /// OUT: the sequence counter (odd while the hypervisor writes).
    pub version: u64,
    /// OUT: virtual-counter ticks per second (`CNTFRQ_EL0`).
    pub counter_freq: u64,
    /// OUT: whole seconds since 1970-01-01T00:00:00Z at `wall_counter`; 0
    /// together with `wall_nsec` when dom0 has not set the clock.
    pub wall_sec: u64,
    /// OUT: nanoseconds to add to `wall_sec`, below 1,000,000,000.
    pub wall_nsec: u64,
    /// OUT: the value of this domain's virtual counter at which the wall
    /// clock read `wall_sec.wall_nsec`.
    pub wall_counter: u64,
    /// Reserved, zero.
    pub reserved: [u64; 3],
}
const _: () = assert!(size_of::<TimeInfo>() == 64);

impl TimeInfo {
    /// The registered size: the page must hold this many bytes.
    pub const SIZE: u64 = size_of::<Self>() as u64;
}

/// Field table of [`TimeInfo`].
pub const TIME_INFO_LAYOUT: LayoutDesc = layout_desc!(TimeInfo {
    version: u64 => Out,
    counter_freq: u64 => Out,
    wall_sec: u64 => Out,
    wall_nsec: u64 => Out,
    wall_counter: u64 => Out,
    reserved: [u64; 3] => Reserved,
});

/// Nanoseconds per second.
pub const NS_PER_S: u64 = 1_000_000_000;

/// Converts counter ticks to nanoseconds at `freq` ticks per second without
/// overflow for any `ticks` (saturating past `u64::MAX` ns, ~584 years).
pub const fn ticks_to_ns(ticks: u64, freq: u64) -> u64 {
    if freq == 0 {
        return 0;
    }
    let ns = ticks as u128 * NS_PER_S as u128 / freq as u128;
    if ns > u64::MAX as u128 {
        u64::MAX
    } else {
        ns as u64
    }
}

/// Converts nanoseconds to counter ticks at `freq`, rounding up (so a
/// deadline computed from a duration is never early); saturating.
pub const fn ns_to_ticks(ns: u64, freq: u64) -> u64 {
    let t = (ns as u128 * freq as u128).div_ceil(NS_PER_S as u128);
    if t > u64::MAX as u128 {
        u64::MAX
    } else {
        t as u64
    }
}

/// Description of `time_op` for `specs/hypercalls.md`.
pub const SPEC: CallSpec = CallSpec {
    name: Call::TimeOp.name(),
    major: Call::MAJOR,
    call: Call::TimeOp.raw(),
    caller: Call::TimeOp.caller(),
    sub_ops: &[
        SubOpSpec {
            name: Op::SetTimer.name(),
            value: Some(Op::SetTimer.raw()),
            args: &["x2=deadline"],
            returns: &[],
            errors: &[],
        },
        SubOpSpec {
            name: Op::InitTimePage.name(),
            value: Some(Op::InitTimePage.raw()),
            args: &["x2=page"],
            returns: &[],
            errors: &[Error::BadAddress],
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_matches_enum() {
        let all: std::vec::Vec<_> = Op::ALL.iter().map(|o| (o.name(), o.raw())).collect();
        crate::spec::assert_sub_ops_match(&SPEC, &all);
    }

    #[test]
    fn conversions() {
        assert_eq!(ticks_to_ns(62_500_000, 62_500_000), NS_PER_S);
        assert_eq!(ticks_to_ns(1, 62_500_000), 16);
        assert_eq!(ns_to_ticks(1, 62_500_000), 1, "rounds up");
        assert_eq!(ns_to_ticks(16, 62_500_000), 1);
        assert_eq!(ns_to_ticks(17, 62_500_000), 2);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ns_to_ticks(u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(ticks_to_ns(5, 0), 0);
    }
}
