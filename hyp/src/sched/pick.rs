//! Picking: `schedule`, placing woken vCPUs on a queue, and stealing work
//! for a CPU that would otherwise idle or run an OVER vCPU.

use super::VcpuRef;
use super::account::charge_vcpu;
use super::cpumask::CpuMask;
use super::credit::{CpuSched, Place, Scheduler};
use super::params::{Decision, NEVER, Prio};
use crate::percpu::CpuIndex;

impl Scheduler {
    /// Decides what `cpu` runs from `now` on. Call it on the CPU's timer
    /// deadline, on an IPI kick, and whenever its current vCPU stops (block,
    /// yield, shutdown, fault, pause). `current` is the vCPU the CPU was
    /// running, with whether it could go on running; the time since it was
    /// picked is charged to it. The answer may pick the same vCPU again.
    pub fn schedule(
        &mut self,
        cpu: CpuIndex,
        now: u64,
        current: Option<(VcpuRef, bool)>,
    ) -> Decision {
        let c = cpu.0;
        let mut kick = CpuMask::EMPTY;
        if c >= self.cpus.len() {
            return Decision {
                next: None,
                run_until: NEVER,
                kick,
            };
        }
        // The scheduler's own record of what runs here wins: a vCPU the
        // caller names but that was removed (or never picked here) is ignored.
        let mut yielder = None;
        if let Some(r) = self.cpus[c].current {
            let runnable = match current {
                Some((cr, run)) if cr == r => run,
                _ => true,
            };
            yielder = self.deschedule(r, c, now, runnable, &mut kick);
        }
        if now >= self.period_start.saturating_add(self.period) {
            self.rollover(now, c, &mut kick);
        }
        self.park_exhausted(c);
        let next = self.pick(c, yielder);
        self.tickle_idlers(c, &mut kick);
        let run_until = match next {
            Some(r) => self.start(r, c, now),
            // Parked vCPUs come back at the period's end: be awake for it.
            None if !self.parked.is_empty() => self.period_start.saturating_add(self.period),
            None => NEVER,
        };
        Decision {
            next,
            run_until,
            kick,
        }
    }

    /// Takes `r` off CPU `c` at `now`, charged, and puts it back on a queue if
    /// it can still run. Answers `r` if it yielded.
    fn deschedule(
        &mut self,
        r: VcpuRef,
        c: usize,
        now: u64,
        runnable: bool,
        kick: &mut CpuMask,
    ) -> Option<VcpuRef> {
        self.cpus[c].current = None;
        // One lookup of the vCPU for the charge, the requeue and the rest;
        // its domain is looked up only for a cap's bookkeeping (a vCPU of
        // an uncapped domain keeps its charge in `uncharged`).
        let Self {
            vcpus, doms, cpus, ..
        } = self;
        let v = vcpus.get_mut_hot(&r)?;
        let mut d = if v.dom_capped || v.grant != 0 {
            Some(doms.get_mut_hot(&r.0)?)
        } else {
            None
        };
        charge_vcpu(v, d.as_deref_mut(), cpus, now);
        v.at = Place::Off;
        v.boost = false;
        v.awake &= runnable;
        let yielded = core::mem::take(&mut v.yielded);
        let grant_back = core::mem::take(&mut v.grant);
        if let Some(d) = d {
            d.cap_granted = d.cap_granted.saturating_sub(grant_back);
        }
        if v.awake && !v.dom_paused {
            if v.affinity.contains(CpuIndex(c)) {
                // `enqueue`, with the vCPU at hand.
                cpus[c].runq.push_back(r);
                v.at = Place::Queued(c);
                v.last_cpu = c;
            } else if let Some(k) = self.make_ready(r, c) {
                kick.insert(CpuIndex(k));
            }
        }
        yielded.then_some(r)
    }

    /// Ticks of `dom`'s cap still free this period (`u64::MAX` if uncapped).
    pub(super) fn cap_left(&self, dom: tern_abi::domctl::DomainId) -> u64 {
        if self.capped == 0 {
            return u64::MAX;
        }
        match self.doms.get(&dom) {
            Some(d) if d.cap > 0 => self
                .cap_budget(d.cap)
                .saturating_sub(d.cap_used.saturating_add(d.cap_granted)),
            _ => u64::MAX,
        }
    }

    /// A cap in ticks per period.
    pub(super) fn cap_budget(&self, cap: u32) -> u64 {
        (u128::from(self.period) * u128::from(cap) / 100) as u64
    }

    /// Puts an awake, off-queue vCPU of an unpaused domain where it can run:
    /// parked if its domain's cap is used up, else on the least loaded CPU of
    /// its affinity. Answers a CPU other than `from` to kick: one that idles,
    /// or runs something of lower priority.
    pub(super) fn make_ready(&mut self, r: VcpuRef, from: usize) -> Option<usize> {
        self.ready(r, from, false)
    }

    /// [`Self::make_ready`]; first, if `waking`, what `wake` does to the
    /// vCPU (with the one lookup of it): marks it awake and boosts it if it
    /// has credit left, stopping there if it was awake or is still running.
    pub(super) fn ready(&mut self, r: VcpuRef, from: usize, waking: bool) -> Option<usize> {
        // Answered before the vCPU is looked up (once, mutably).
        let capped_out = self.cap_left(r.0) == 0;
        let Self {
            vcpus,
            cpus,
            parked,
            ..
        } = self;
        let v = vcpus.get_mut_hot(&r)?;
        if waking {
            if v.awake {
                return None;
            }
            v.awake = true;
            if matches!(v.at, Place::Running(_)) {
                // It blocked but its CPU has not descheduled it yet: it goes on.
                return None;
            }
            // Only a vCPU with credit left is boosted, so waking often cannot
            // buy more than a fair share.
            v.boost = v.credit >= 0;
        }
        if !v.awake || v.at != Place::Off || v.dom_paused {
            return None;
        }
        if capped_out {
            v.at = Place::Parked;
            parked.push_back(r);
            // The cap use may be from a period that ended while every CPU
            // slept: wake one that may run it, to roll the period over or to
            // set its timer for the period's end.
            return v
                .affinity
                .iter()
                .map(|c| c.0)
                .find(|&c| c != from && cpus[c].current.is_none());
        }
        let (prio, last) = (v.prio(), v.last_cpu);
        let target = if v.affinity.0.is_power_of_two() {
            // One CPU allowed (every vCPU on a one-CPU machine): the search
            // below could only answer it.
            v.affinity.0.trailing_zeros() as usize
        } else {
            v.affinity
                .iter()
                .map(|c| c.0)
                .min_by_key(|&c| (cpus[c].load(), c != last, c))?
        };
        // `enqueue`, with the vCPU at hand.
        cpus[target].runq.push_back(r);
        v.at = Place::Queued(target);
        v.last_cpu = target;
        let busy_with = match cpus[target].current {
            Some(o) => vcpus.get_hot(&o),
            None => None,
        };
        let worth_it = busy_with.is_none_or(|o| prio > o.prio());
        (target != from && worth_it).then_some(target)
    }

    /// Moves vCPUs of domains with no cap left from `c`'s queue to the parked
    /// list.
    fn park_exhausted(&mut self, c: usize) {
        // No cap anywhere (the usual case): nothing can be out of it.
        if self.capped == 0 {
            return;
        }
        let mut i = 0;
        while i < self.cpus[c].runq.len() {
            let r = self.cpus[c].runq[i];
            if self.cap_left(r.0) == 0 {
                self.cpus[c].runq.remove(i);
                if let Some(v) = self.vcpus.get_mut(&r) {
                    v.at = Place::Parked;
                }
                self.parked.push_back(r);
            } else {
                i += 1;
            }
        }
    }

    /// Takes the vCPU `c` runs next off its queue: the best local one
    /// (priority, then most credit, then longest waiting), unless that is
    /// OVER or nothing, in which case a better one is stolen from another
    /// CPU if there is one. A `yielder` runs only if nothing else can.
    fn pick(&mut self, c: usize, yielder: Option<VcpuRef>) -> Option<VcpuRef> {
        let q = &self.cpus[c].runq;
        // One vCPU waiting that is not a yielder (a blocking vCPU handing
        // over to the one it woke), or that one and, behind it, the yielder
        // just queued (two vCPUs taking turns yielding), and either not OVER
        // or with no other CPU's queue to steal a better one from: it is the
        // best local one and nothing is stolen for it. The general search
        // below agrees.
        let alone = match q.len() {
            1 => true,
            2 => yielder.is_some() && q.back() == yielder.as_ref(),
            _ => false,
        };
        if alone
            && let Some(only) = q.front()
            && Some(*only) != yielder
            && (!others_queued(&self.cpus, c)
                || self
                    .vcpus
                    .get_hot(only)
                    .is_some_and(|v| v.prio() != Prio::Over))
        {
            return self.cpus[c].runq.pop_front();
        }
        let best = q
            .iter()
            .enumerate()
            .filter(|&(_, &r)| Some(r) != yielder)
            .filter_map(|(i, r)| self.vcpus.get(r).map(|v| (i, v.prio(), v.credit)))
            // max_by_key keeps the last of equals: compare the index reversed.
            .max_by_key(|&(i, p, cr)| (p, cr, core::cmp::Reverse(i)));
        let local_prio = best.map(|(_, p, _)| p);
        if local_prio.is_none_or(|p| p == Prio::Over)
            && let Some(r) = self.steal(c, local_prio)
        {
            return Some(r);
        }
        let i = match best {
            Some((i, ..)) => i,
            None => self.cpus[c].runq.iter().position(|&r| Some(r) == yielder)?,
        };
        // The front (the usual pick) without `remove`'s general shifting.
        if i == 0 {
            self.cpus[c].runq.pop_front()
        } else {
            self.cpus[c].runq.remove(i)
        }
    }

    /// Takes from another CPU's queue a vCPU allowed on `c` with a priority
    /// above `above` (any, if `None`): the highest priority, from the longest
    /// queue, with the most credit.
    fn steal(&mut self, c: usize, above: Option<Prio>) -> Option<VcpuRef> {
        // One CPU: no other queue (two vCPUs both OVER on one CPU, as when
        // they take turns yielding, ask on every pick).
        if self.cpus.len() == 1 {
            return None;
        }
        let me = CpuIndex(c);
        let mut best: Option<((Prio, usize, i64), usize, usize)> = None;
        for (p, cpu) in self.cpus.iter().enumerate() {
            if p == c {
                continue;
            }
            for (i, r) in cpu.runq.iter().enumerate() {
                let Some(v) = self.vcpus.get(r) else {
                    continue;
                };
                let prio = v.prio();
                if !v.affinity.contains(me)
                    || above.is_some_and(|a| prio <= a)
                    || self.cap_left(r.0) == 0
                {
                    continue;
                }
                let key = (prio, cpu.runq.len(), v.credit);
                if best.is_none_or(|(k, ..)| key > k) {
                    best = Some((key, p, i));
                }
            }
        }
        let (_, p, i) = best?;
        self.cpus[p].runq.remove(i)
    }

    /// Kicks idle CPUs that have work queued, or that could take work still
    /// waiting on `c`'s queue (one per waiting vCPU), so no CPU sleeps while a
    /// vCPU it may run waits (a safety net behind the kicks of `make_ready`).
    fn tickle_idlers(&self, c: usize, kick: &mut CpuMask) {
        // One CPU: no other to tickle.
        if self.cpus.len() == 1 {
            return;
        }
        let mut idle = idle_cpus(&self.cpus, c, kick);
        for r in &self.cpus[c].runq {
            if idle.is_empty() {
                return;
            }
            let affinity = self.vcpus.get(r).map_or(CpuMask::EMPTY, |v| v.affinity);
            if let Some(t) = affinity.and(idle).iter().next() {
                idle = CpuMask(idle.0 & !CpuMask::only(t).0);
                kick.insert(t);
            }
        }
    }

    /// Marks `r` running on `c` from `now`; answers its deadline: one slice,
    /// or less if its domain's cap has less left (a capped vCPU never runs
    /// past the period's end, so each period's use is counted exactly).
    fn start(&mut self, r: VcpuRef, c: usize, now: u64) -> u64 {
        let left = self.cap_left(r.0);
        let period_end = self.period_start.saturating_add(self.period);
        let mut len = self.slice;
        let mut grant = 0;
        if left != u64::MAX {
            grant = len.min(left).min(period_end.saturating_sub(now)).max(1);
            len = grant;
            if let Some(d) = self.doms.get_mut(&r.0) {
                d.cap_granted = d.cap_granted.saturating_add(grant);
            }
        }
        self.cpus[c].current = Some(r);
        let Some(v) = self.vcpus.get_mut_hot(&r) else {
            return now.saturating_add(len);
        };
        v.at = Place::Running(c);
        v.last_cpu = c;
        v.started = now;
        v.grant = grant;
        v.ran_in_period = true;
        now.saturating_add(len)
    }
}

/// Whether a CPU other than `c` has vCPUs queued (something to steal).
#[inline]
pub(super) fn others_queued(cpus: &[CpuSched], c: usize) -> bool {
    // On one CPU, with no walk at all.
    cpus.len() > 1
        && cpus
            .iter()
            .enumerate()
            .any(|(p, cpu)| p != c && !cpu.runq.is_empty())
}

/// The first half of `Scheduler::tickle_idlers`: adds to `kick` the CPUs
/// other than `c` that idle with work queued; answers those that idle with
/// none.
pub(super) fn idle_cpus(cpus: &[CpuSched], c: usize, kick: &mut CpuMask) -> CpuMask {
    let mut idle = CpuMask::EMPTY;
    for (i, cpu) in cpus.iter().enumerate() {
        if i != c && cpu.current.is_none() {
            if cpu.runq.is_empty() {
                idle.insert(CpuIndex(i));
            } else {
                kick.insert(CpuIndex(i));
            }
        }
    }
    idle
}
