//! Accounting: charging vCPUs for the time they ran, and the period
//! rollover that hands out credit by weight and renews caps.
//!
//! Credit is counted in ticks. Each period, the domains that want CPU time
//! (an awake vCPU, or one that ran during the period) share the period's
//! capacity — period × CPUs — in proportion to their weights ("water
//! filling": a domain is never given more than its active vCPUs or its cap
//! can use, and what it cannot use goes to the others by weight). A domain's
//! share is split evenly among its active vCPUs. Running costs credit tick for
//! tick. Since what is handed out equals what the CPUs can run, a vCPU that
//! keeps a positive balance is getting less than its share, and is preferred
//! (UNDER) over those that got more (OVER). Balances are clamped to ±one
//! period so that time used while nobody else wanted the CPU (work
//! conservation) is not owed forever, and unused credit cannot be hoarded.

use super::VcpuRef;
use super::cpumask::CpuMask;
use super::credit::{CpuSched, DomSched, Place, Scheduler, VcpuSched};
use crate::percpu::CpuIndex;

impl Scheduler {
    /// Charges running vCPU `r` for the time from when it was last charged to
    /// `upto`: credit, CPU time, cap use.
    pub(super) fn charge(&mut self, r: VcpuRef, upto: u64) {
        let Self {
            vcpus, doms, cpus, ..
        } = self;
        if let Some(v) = vcpus.get_mut(&r) {
            charge_vcpu(v, doms.get_mut(&r.0), cpus, upto);
        }
    }

    /// Starts the period that contains `now` (called from `schedule` on CPU
    /// `from`): closes the old one, hands out credit, renews caps and puts
    /// parked vCPUs back on queues (other CPUs to kick go into `kick`).
    pub(super) fn rollover(&mut self, now: u64, from: usize, kick: &mut CpuMask) {
        let elapsed = now.saturating_sub(self.period_start) / self.period;
        if elapsed == 0 {
            return;
        }
        let boundary = self.period_start + elapsed * self.period;
        // Time running vCPUs used before the boundary belongs to the old
        // period; what they run past it (a late timer) counts in the new one.
        for c in 0..self.cpus.len() {
            if let Some(r) = self.cpus[c].current {
                self.charge(r, boundary);
                if let Some(v) = self.vcpus.get_mut(&r) {
                    v.grant = 0;
                }
            }
        }
        self.period_start = boundary;
        let period = self.period;
        self.doms.for_each_mut(|_, d| {
            // An overrun (the timer fired late) is owed from the next budget.
            let budget = (u128::from(period) * u128::from(d.cap) / 100) as u64;
            d.cap_used = if d.cap > 0 {
                d.cap_used.saturating_sub(budget.saturating_mul(elapsed))
            } else {
                0
            };
            d.cap_granted = 0;
        });
        // What uncapped domains' vCPUs kept uncharged belongs to the old
        // period (their domains' `cap_used` just restarted from 0).
        self.vcpus.for_each_mut(|_, v| v.uncharged = 0);
        self.distribute();
        for _ in 0..self.parked.len() {
            let Some(r) = self.parked.pop_front() else {
                break;
            };
            if let Some(v) = self.vcpus.get_mut(&r) {
                v.at = Place::Off;
            }
            if let Some(k) = self.make_ready(r, from) {
                kick.insert(CpuIndex(k));
            }
        }
    }

    /// Hands out one period of credit (see the module documentation).
    fn distribute(&mut self) {
        self.doms.for_each_mut(|_, d| {
            d.active = 0;
            d.share = 0;
        });
        for (r, v) in self.vcpus.iter() {
            if let Some(d) = self.doms.get_mut(&r.0)
                && ((v.awake && !d.paused) || v.ran_in_period)
            {
                d.active += 1;
            }
        }
        let period = self.period;
        let limit = |cap: u32, active: u64| {
            let all = active.saturating_mul(period);
            if cap > 0 {
                all.min((u128::from(period) * u128::from(cap) / 100) as u64)
            } else {
                all
            }
        };
        // Water filling: `share == 0` marks a domain not yet given its share.
        let mut left = u128::from(period) * self.cpus.len() as u128;
        loop {
            let wsum: u128 = self
                .doms
                .values()
                .filter(|d| d.active > 0 && d.share == 0)
                .map(|d| u128::from(d.weight))
                .sum();
            if wsum == 0 || left == 0 {
                break;
            }
            let pool = left;
            let mut saturated = false;
            self.doms.for_each_mut(|_, d| {
                if d.active == 0 || d.share != 0 {
                    return;
                }
                let lim = limit(d.cap, d.active);
                if pool * u128::from(d.weight) / wsum >= u128::from(lim) {
                    d.share = lim;
                    left -= u128::from(lim).min(left);
                    saturated = true;
                }
            });
            if !saturated {
                self.doms.for_each_mut(|_, d| {
                    if d.active > 0 && d.share == 0 {
                        d.share = (pool * u128::from(d.weight) / wsum) as u64;
                    }
                });
                break;
            }
        }
        let bound = i64::try_from(period).unwrap_or(i64::MAX);
        let Self { vcpus, doms, .. } = self;
        vcpus.for_each_mut(|r, v| {
            let Some(d) = doms.get(&r.0) else {
                return;
            };
            if (v.awake && !d.paused) || v.ran_in_period {
                let each = i64::try_from(d.share / d.active.max(1)).unwrap_or(i64::MAX);
                v.credit = v.credit.saturating_add(each).clamp(-bound, bound);
            }
            v.ran_in_period = matches!(v.at, Place::Running(_));
        });
    }
}

#[cfg(test)]
impl Scheduler {
    /// Checks the bookkeeping: every vCPU is in exactly the place its state
    /// says (one queue, one CPU, the parked list, or nowhere), queued and
    /// parked vCPUs want to run, queued ones sit on a CPU of their affinity,
    /// and cap grants add up.
    pub(super) fn check_invariants(&self) -> Result<(), alloc::string::String> {
        use alloc::format;
        for (c, cpu) in self.cpus.iter().enumerate() {
            for r in &cpu.runq {
                match self.vcpus.get(r).map(|v| v.at) {
                    Some(Place::Queued(q)) if q == c => {}
                    other => return Err(format!("{r:?} in runq {c} but at {other:?}")),
                }
            }
            if let Some(r) = cpu.current {
                match self.vcpus.get(&r).map(|v| v.at) {
                    Some(Place::Running(q)) if q == c => {}
                    other => return Err(format!("{r:?} current on {c} but at {other:?}")),
                }
            }
        }
        let capped = self.doms.values().filter(|d| d.cap > 0).count();
        if capped != self.capped {
            return Err(format!(
                "{} capped domains counted as {}",
                capped, self.capped
            ));
        }
        for r in &self.parked {
            if self.vcpus.get(r).map(|v| v.at) != Some(Place::Parked) {
                return Err(format!("{r:?} parked but not marked so"));
            }
        }
        let mut granted = alloc::collections::BTreeMap::new();
        for (r, v) in self.vcpus.iter() {
            let d = self.doms.get(&r.0).ok_or(format!("{r:?} without domain"))?;
            if v.dom_paused != d.paused || v.dom_capped != (d.cap > 0) {
                return Err(format!(
                    "{r:?}: its copy of the paused or cap flag is stale"
                ));
            }
            if d.cap > 0 && v.uncharged != 0 {
                return Err(format!("{r:?}: uncharged ticks in a capped domain"));
            }
            let wants = v.awake && !d.paused;
            let times = |n: usize, what: &str| {
                if n == 1 {
                    Ok(())
                } else {
                    Err(format!("{r:?} found {n} times in {what}"))
                }
            };
            match v.at {
                Place::Queued(c) => {
                    times(
                        self.cpus
                            .iter()
                            .flat_map(|q| &q.runq)
                            .filter(|&&x| x == *r)
                            .count(),
                        "runqs",
                    )?;
                    if !wants || !v.affinity.contains(CpuIndex(c)) {
                        return Err(format!(
                            "{r:?} queued on {c}: wants {wants}, {:?}",
                            v.affinity
                        ));
                    }
                }
                Place::Running(c) => {
                    times(
                        self.cpus.iter().filter(|q| q.current == Some(*r)).count(),
                        "currents",
                    )?;
                    times(usize::from(self.cpus[c].current == Some(*r)), "its CPU")?;
                    *granted.entry(r.0).or_insert(0u64) += v.grant;
                }
                Place::Parked => {
                    times(self.parked.iter().filter(|&&x| x == *r).count(), "parked")?;
                    if !wants {
                        return Err(format!("{r:?} parked but does not want to run"));
                    }
                }
                Place::Off => {
                    if wants {
                        return Err(format!("{r:?} wants to run but is nowhere"));
                    }
                }
            }
            if v.affinity.is_empty() || v.affinity.and(self.all) != v.affinity {
                return Err(format!("{r:?} has affinity {:?}", v.affinity));
            }
        }
        for (id, d) in self.doms.iter() {
            let g = granted.get(id).copied().unwrap_or(0);
            if g != d.cap_granted {
                return Err(format!(
                    "{id:?} granted {} but running grants sum to {g}",
                    d.cap_granted
                ));
            }
        }
        Ok(())
    }
}

/// [`Scheduler::charge`] for a vCPU and its domain already looked up (the
/// callers on the switch path have them at hand); without the domain (one
/// uncapped and holding no grant), its cap bookkeeping is left in
/// `VcpuSched::uncharged`.
pub(super) fn charge_vcpu(
    v: &mut VcpuSched,
    d: Option<&mut DomSched>,
    cpus: &mut [CpuSched],
    upto: u64,
) {
    charge_vcpu_inline(v, d, cpus, upto);
}

/// [`charge_vcpu`], inline: in `hand_off`, where the vCPU's place and CPU
/// are known and its domain is not looked up, most of it folds away.
#[inline(always)]
pub(super) fn charge_vcpu_inline(
    v: &mut VcpuSched,
    d: Option<&mut DomSched>,
    cpus: &mut [CpuSched],
    upto: u64,
) {
    let Place::Running(c) = v.at else {
        return;
    };
    let ran = upto.saturating_sub(v.started);
    if ran == 0 {
        return;
    }
    v.started = upto;
    v.credit = v
        .credit
        .saturating_sub(i64::try_from(ran).unwrap_or(i64::MAX));
    v.time = v.time.saturating_add(ran);
    let from_grant = ran.min(v.grant);
    v.grant -= from_grant;
    cpus[c].busy = cpus[c].busy.saturating_add(ran);
    match d {
        Some(d) => {
            d.cap_used = d.cap_used.saturating_add(ran);
            d.cap_granted = d.cap_granted.saturating_sub(from_grant);
        }
        // Not looked up: uncapped and holding no grant (see `uncharged`).
        None => v.uncharged = v.uncharged.saturating_add(ran),
    }
}
