//! The direct hand-over of a CPU from a vCPU that blocks to the vCPU it has
//! just woken (`sched_op send_block`, the request/answer exchange): what
//! `wake` followed by `schedule` would decide, without the general queueing
//! and search, when the two agree by construction.

use super::VcpuRef;
use super::account::charge_vcpu;
use super::cpumask::CpuMask;
use super::credit::{Place, Scheduler};
use super::params::Decision;
use crate::percpu::CpuIndex;

impl Scheduler {
    /// `from`, running, blocks; `to`, blocked until now, is woken and
    /// takes over `from`'s CPU at `now`. Answers that CPU and the decision,
    /// exactly as [`Self::wake`]`(to)` followed by [`Self::schedule`]`(cpu,
    /// now, Some((from, false)))` would change the state and answer — the
    /// wake's own kick answer aside: it could only name that CPU, which
    /// reschedules here anyway. That holds when `from`'s CPU has nothing
    /// else queued, `to` may run only there, no cap is in force, and the
    /// period does not end: then the wake queues `to` there and the pick
    /// takes it. Otherwise answers `None` and changes nothing; the caller
    /// then goes the general way.
    pub fn hand_off(
        &mut self,
        from: VcpuRef,
        to: VcpuRef,
        now: u64,
    ) -> Option<(CpuIndex, Decision)> {
        if from == to || self.capped != 0 || now >= self.period_start.saturating_add(self.period) {
            return None;
        }
        let Place::Running(c) = self.vcpus.get_hot(&from)?.at else {
            return None;
        };
        if self.cpus[c].current != Some(from) || !self.cpus[c].runq.is_empty() {
            return None;
        }
        let others_queued = self.others_queued(c);
        let t = self.vcpus.get_hot(&to)?;
        // As `wake` leaves it: boosted if it has credit left, else OVER.
        let boost = t.credit >= 0;
        if t.awake
            || t.at != Place::Off
            || t.dom_paused
            || t.affinity != CpuMask::only(CpuIndex(c))
            // With another queue to steal from, the pick keeps an OVER
            // vCPU only after searching it: left to the general way.
            || (others_queued && !boost)
        {
            return None;
        }
        let Self { vcpus, cpus, .. } = self;
        let f = vcpus.get_mut_hot(&from)?;
        if f.dom_capped || f.grant != 0 {
            return None;
        }
        // `deschedule` of a vCPU that is not runnable: charged, off, and
        // (not awake) queued nowhere; a yield it asked for is moot.
        charge_vcpu(f, None, cpus, now);
        f.at = Place::Off;
        f.boost = false;
        f.awake = false;
        f.yielded = false;
        let mut kick = CpuMask::EMPTY;
        self.tickle_idlers(c, &mut kick);
        let t = self.vcpus.get_mut_hot(&to)?;
        t.awake = true;
        t.boost = boost;
        // `start`, uncapped.
        t.at = Place::Running(c);
        t.last_cpu = c;
        t.started = now;
        t.grant = 0;
        t.ran_in_period = true;
        self.cpus[c].current = Some(to);
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
