//! The direct hand-over of a CPU from a vCPU that blocks to the vCPU it has
//! just woken (`sched_op send_block`, the request/answer exchange): what
//! `wake` followed by `schedule` would decide, without the general queueing
//! and search, when the two agree by construction.

use super::VcpuRef;
use super::account::charge_vcpu_inline;
use super::cpumask::CpuMask;
use super::credit::{Place, Scheduler};
use super::params::Decision;
use super::pick::{idle_cpus, others_queued};
use crate::percpu::CpuIndex;

impl Scheduler {
    /// `from`, running, blocks; `to`, blocked until now, is woken and
    /// takes over `from`'s CPU at `now`. Answers that CPU and the decision,
    /// exactly as [`Self::wake`]`(to)` followed by [`Self::schedule`]`(cpu,
    /// now, Some((from, false)))` would change the state and answer — the
    /// wake's own kick answer aside: it could only name that CPU, which
    /// reschedules here anyway, or another CPU, which would find nothing
    /// (a sync wake-up, as Linux calls it: the waker sleeps, so the woken
    /// runs on its CPU, and no other CPU wakes up to find nothing). That
    /// holds when `from`'s CPU has nothing else queued, `to` may run there,
    /// no cap is in force and the period does not end, and either `to`
    /// may run only there or no other CPU has anything queued: then the
    /// wake queues `to` there, or on another CPU whose queue the pick
    /// steals it back from. Otherwise answers `None` and changes nothing;
    /// the caller then goes the general way.
    pub fn hand_off(
        &mut self,
        from: VcpuRef,
        to: VcpuRef,
        now: u64,
    ) -> Option<(CpuIndex, Decision)> {
        // `schedule` rolls the period over when `now >= period_start +
        // period` (saturating). The same test without the saturation: it
        // differs only when the sum overflows and `now` is `u64::MAX`, where
        // the rollover finds no period elapsed and changes nothing; and a
        // `now` before the period's start goes the general way.
        if self.capped != 0 || now.wrapping_sub(self.period_start) >= self.period {
            return None;
        }
        let Self { vcpus, cpus, .. } = self;
        // `None` for `from == to` too.
        let (f, t) = vcpus.get_pair_mut_hot(&from, &to)?;
        let Place::Running(c) = f.at else {
            return None;
        };
        let cpu = cpus.get(c)?;
        // As `wake` leaves it: boosted if it has credit left, else OVER.
        let boost = t.credit >= 0;
        // Empty past what a mask can name: `to` then may not run there.
        let here = CpuMask::only(CpuIndex(c));
        // What the bookkeeping guarantees (`check_invariants`), not tested
        // again: a running vCPU is its CPU's current one, and with no cap in
        // force no vCPU's domain has one.
        debug_assert!(cpu.current == Some(from) && !f.dom_capped);
        if !cpu.runq.is_empty()
            || f.grant != 0
            || t.awake
            || t.at != Place::Off
            || t.dom_paused
            || t.affinity.and(here).is_empty()
            // With another queue to steal from, the pick keeps an OVER
            // vCPU only after searching it, and a vCPU that may run
            // elsewhere is queued where the wake's placement says: left to
            // the general way. With nothing queued anywhere, the pick takes
            // it wherever it was queued (here, or stolen back from another
            // CPU's queue): it runs here either way.
            || ((!boost || t.affinity != here) && others_queued(cpus, c))
        {
            return None;
        }
        // `deschedule` of a vCPU that is not runnable: charged, off, and
        // (not awake) queued nowhere; a yield it asked for is moot.
        charge_vcpu_inline(f, None, cpus, now);
        f.at = Place::Off;
        f.boost = false;
        f.awake = false;
        f.yielded = false;
        t.awake = true;
        t.boost = boost;
        // `start`, uncapped.
        t.at = Place::Running(c);
        t.last_cpu = c;
        t.started = now;
        t.grant = 0;
        t.ran_in_period = true;
        cpus[c].current = Some(to);
        // `tickle_idlers` with nothing left on this CPU's queue.
        let mut kick = CpuMask::EMPTY;
        if cpus.len() > 1 {
            idle_cpus(cpus, c, &mut kick);
        }
        Some((
            CpuIndex(c),
            Decision {
                next: Some(to),
                run_until: now.saturating_add(self.slice),
                kick,
            },
        ))
    }
}
