//! Time: the virtual counter, deadlines, sleeping, the one-shot timer and
//! the wall clock.
//!
//! The virtual counter (`CNTVCT_EL0`) counts from 0 at this domain's
//! creation at `CNTFRQ_EL0` ticks per second (specs/memory-map.md, "Time");
//! reading it needs no hypercall. Sleeping arms the hypervisor's one-shot
//! timer (`time_op set_timer`) and blocks; the guest never touches timer
//! registers.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tern_abi::evtchn::EVENT_VCPUS;
use tern_abi::time::{self, Op, TimeInfo, ns_to_ticks, ticks_to_ns};
use tern_abi::{Call, Error};

use crate::hypercall::{self, ipa_of};

/// The virtual counter now (0 off the target).
pub fn counter() -> u64 {
    #[cfg(target_arch = "aarch64")]
    return crate::arch::counter();
    #[cfg(not(target_arch = "aarch64"))]
    0
}

/// Counter ticks per second (1 off the target, so conversions stay defined).
pub fn frequency() -> u64 {
    #[cfg(target_arch = "aarch64")]
    return crate::arch::counter_frequency().max(1);
    #[cfg(not(target_arch = "aarch64"))]
    1
}

/// Nanoseconds since this domain was created.
pub fn now() -> u64 {
    ticks_to_ns(counter(), frequency())
}

/// An instant on the virtual counter by which something must happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(pub u64);

impl Deadline {
    /// `ns` nanoseconds from now (rounded up to a whole tick: never early).
    pub fn after_ns(ns: u64) -> Self {
        Self(counter().saturating_add(ns_to_ticks(ns, frequency())))
    }
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        Self::after_ns(ms.saturating_mul(1_000_000))
    }
    /// Whether the counter has reached it.
    pub fn passed(self) -> bool {
        counter() >= self.0
    }
    /// Nanoseconds left (0 once passed).
    pub fn remaining_ns(self) -> u64 {
        ticks_to_ns(self.0.saturating_sub(counter()), frequency())
    }
}

/// Arms this vCPU's one-shot timer for counter value `deadline` (0
/// cancels): `Virq::Timer` is raised, and the vCPU woken, at or after it.
pub fn set_timer(deadline: u64) {
    if let Some(armed) = ARMED.get(crate::vcpu_index()) {
        armed.store(deadline, Ordering::Relaxed);
    }
    // set_timer defines no errors; without time_op there is nothing to arm
    // and sleeping falls back to polling the counter.
    let _ = hypercall::call(Call::TimeOp, Op::SetTimer.raw(), [deadline, 0, 0, 0, 0]);
}

/// Per vCPU: the deadline its timer was last armed for by [`set_timer`]
/// (0: cancelled, or never armed). Every arming goes through `set_timer`.
static ARMED: [AtomicU64; EVENT_VCPUS] = [const { AtomicU64::new(0) }; EVENT_VCPUS];

/// Makes sure this vCPU is woken by `deadline`: arms the timer for it,
/// unless the timer is armed for no later, has not fired yet (the counter
/// is still before it; the hypervisor never fires a timer early), and is
/// at least half as far off as `deadline`. Waits with a timeout a little
/// later each time (one per request) then arm the timer about once per
/// half timeout instead of once per wait, and the timer armed is always
/// replaced before it fires as long as the waits come more often than
/// that (an early firing would cost more than the `set_timer` saved).
pub(crate) fn arm_by(deadline: u64) {
    let armed = ARMED
        .get(crate::vcpu_index())
        .map_or(0, |a| a.load(Ordering::Relaxed));
    let now = counter();
    if armed != 0 && armed <= deadline && now < armed && (armed - now) >= (deadline - now) / 2 {
        return;
    }
    set_timer(deadline);
}

/// Sleeps until `deadline`, handling events meanwhile.
pub fn sleep_until(deadline: Deadline) {
    // With the upcall live `wait_until` blocks; without it, it polls with
    // yields. Either way it returns only once the deadline passed.
    crate::events::wait_until(|| false, Some(deadline.0));
}

/// Sleeps for `ns` nanoseconds (at least).
pub fn sleep_ns(ns: u64) {
    sleep_until(Deadline::after_ns(ns));
}

/// Sleeps for `ms` milliseconds (at least).
pub fn sleep_ms(ms: u64) {
    sleep_until(Deadline::after_ms(ms));
}

/// The time page, as atomics (laid out as `tern_abi::time::TimeInfo`).
#[repr(C, align(64))]
struct TimePage([AtomicU64; 8]);
const _: () = assert!(size_of::<TimePage>() == size_of::<TimeInfo>());

static TIME_PAGE: TimePage = TimePage([const { AtomicU64::new(0) }; 8]);
static TIME_READY: AtomicBool = AtomicBool::new(false);

/// Registers the time page so [`wallclock`] works. Idempotent.
pub fn init() -> Result<(), Error> {
    if TIME_READY.load(Ordering::Acquire) {
        return Ok(());
    }
    hypercall::call(
        Call::TimeOp,
        Op::InitTimePage.raw(),
        [ipa_of(&TIME_PAGE), 0, 0, 0, 0],
    )?;
    TIME_READY.store(true, Ordering::Release);
    Ok(())
}

/// Wall-clock time as (seconds, nanoseconds) since 1970-01-01T00:00:00Z, or
/// `None` before [`init`] or while dom0 has not set the clock.
pub fn wallclock() -> Option<(u64, u64)> {
    if !TIME_READY.load(Ordering::Acquire) {
        return None;
    }
    let w = &TIME_PAGE.0;
    // Word indices of `TimeInfo`'s fields.
    let (version, freq, sec, nsec, at) = (0, 1, 2, 3, 4);
    let (s, n, c, f) = loop {
        let v1 = w[version].load(Ordering::Acquire);
        if v1 % 2 == 1 {
            core::hint::spin_loop();
            continue;
        }
        let fields = (
            w[sec].load(Ordering::Acquire),
            w[nsec].load(Ordering::Acquire),
            w[at].load(Ordering::Acquire),
            w[freq].load(Ordering::Acquire),
        );
        if w[version].load(Ordering::Acquire) == v1 {
            break fields;
        }
    };
    if s == 0 && n == 0 {
        return None;
    }
    let ns = u128::from(n) + u128::from(ticks_to_ns(counter().saturating_sub(c), f.max(1)));
    let per_s = u128::from(time::NS_PER_S);
    Some((s + (ns / per_s) as u64, (ns % per_s) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_stand_ins() {
        assert_eq!(counter(), 0);
        assert_eq!(now(), 0);
        assert!(Deadline(0).passed());
        assert!(!Deadline(1).passed());
        assert_eq!(
            Deadline::after_ns(5),
            Deadline(1),
            "rounds up to a whole tick"
        );
        assert_eq!(wallclock(), None);
        assert_eq!(init(), Err(Error::NotImplemented));
    }

    #[test]
    fn a_timer_armed_no_later_and_at_least_half_as_far_is_kept() {
        // The counter reads 0 on the host, and this is vCPU 0.
        let armed = || ARMED[0].load(Ordering::Relaxed);
        set_timer(0);
        arm_by(100);
        assert_eq!(armed(), 100, "nothing armed");
        arm_by(150);
        assert_eq!(armed(), 100, "kept: fires first, at least half as far");
        arm_by(200);
        assert_eq!(armed(), 100, "exactly half as far: kept");
        arm_by(202);
        assert_eq!(armed(), 202, "less than half as far: replaced");
        arm_by(50);
        assert_eq!(armed(), 50, "later than wanted: replaced");
        set_timer(0);
        arm_by(70);
        assert_eq!(armed(), 70, "cancelled: armed again");
    }
}
