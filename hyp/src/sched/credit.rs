//! The credit scheduler's state and the operations the rest of the
//! hypervisor calls (everything but `schedule`, which lives in `pick`, and
//! the accounting, which lives in `account`).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use tern_abi::domctl::DomainId;

use super::VcpuRef;
use super::cpumask::CpuMask;
use super::params::{CAP_PER_VCPU, DomainParams, Prio, SchedConfig, SchedError};
use crate::percpu::CpuIndex;
use crate::slot_map::{DomainMap, VcpuMap};

/// Where a vCPU is, as the scheduler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// On no queue and no CPU: blocked, down, or its domain is paused.
    Off,
    /// Waiting in this CPU's run queue.
    Queued(usize),
    /// Running on this CPU (until that CPU next calls `schedule`).
    Running(usize),
    /// Wants to run but its domain used its cap: waits for the next period.
    Parked,
}

/// The scheduler's view of one vCPU.
#[derive(Clone, Debug)]
pub(super) struct VcpuSched {
    /// Not blocked and not down.
    pub(super) awake: bool,
    pub(super) at: Place,
    /// The CPU it last ran or queued on: preferred when placing it again.
    pub(super) last_cpu: usize,
    /// Woken with credit left and not descheduled since.
    pub(super) boost: bool,
    /// Asked to give way at its next deschedule.
    pub(super) yielded: bool,
    /// Ticks it may still use this period at UNDER priority (negative: OVER).
    pub(super) credit: i64,
    /// CPUs it may run on (never empty, only CPUs that exist).
    pub(super) affinity: CpuMask,
    /// While running: the tick up to which it has been charged.
    pub(super) started: u64,
    /// While running in a capped domain: ticks of the cap reserved for it.
    pub(super) grant: u64,
    /// Ran during the current period (so it shares in the next credit).
    pub(super) ran_in_period: bool,
    /// CPU time used, in ticks.
    pub(super) time: u64,
    /// Its domain is paused (`DomSched::paused`, copied here so that placing
    /// a woken vCPU needs no look-up of its domain).
    pub(super) dom_paused: bool,
    /// Its domain has a cap (`DomSched::cap > 0`, copied here so that
    /// descheduling a vCPU of an uncapped domain needs no look-up of it).
    pub(super) dom_capped: bool,
    /// Ticks charged to it while its domain was uncapped and not yet added
    /// to the domain's `cap_used` (descheduling skipped the look-up): folded
    /// in when the domain is capped, dropped at the period's end (when an
    /// uncapped domain's `cap_used` restarts from 0 anyway).
    pub(super) uncharged: u64,
}

impl VcpuSched {
    pub(super) const fn prio(&self) -> Prio {
        if self.boost {
            Prio::Boost
        } else if self.credit >= 0 {
            Prio::Under
        } else {
            Prio::Over
        }
    }
}

/// The scheduler's view of one domain.
#[derive(Clone, Debug)]
pub(super) struct DomSched {
    pub(super) weight: u32,
    /// Percent of one CPU; 0 = uncapped.
    pub(super) cap: u32,
    pub(super) paused: bool,
    pub(super) nr_vcpus: usize,
    /// Ticks used in the current period (while uncapped, part of it may
    /// still be in its vCPUs' `VcpuSched::uncharged`).
    pub(super) cap_used: u64,
    /// Ticks of this period's cap reserved by its running vCPUs.
    pub(super) cap_granted: u64,
    /// Accounting scratch: vCPUs sharing in this period's credit.
    pub(super) active: u64,
    /// Accounting scratch: credit it receives this period.
    pub(super) share: u64,
}

/// One physical CPU.
#[derive(Debug, Default)]
pub(super) struct CpuSched {
    /// vCPUs waiting for this CPU, oldest first.
    pub(super) runq: VecDeque<VcpuRef>,
    /// The vCPU it runs.
    pub(super) current: Option<VcpuRef>,
    /// Ticks it ran vCPUs.
    pub(super) busy: u64,
}

impl CpuSched {
    /// Queued plus running vCPUs: what placement balances.
    pub(super) fn load(&self) -> usize {
        self.runq.len() + usize::from(self.current.is_some())
    }
}

/// A proportional-share (credit) scheduler for every physical CPU. See the
/// module documentation of [`crate::sched`] for the policy and how to call it.
#[derive(Debug)]
pub struct Scheduler {
    pub(super) slice: u64,
    pub(super) period: u64,
    pub(super) all: CpuMask,
    pub(super) cpus: Vec<CpuSched>,
    pub(super) vcpus: VcpuMap<VcpuSched>,
    pub(super) doms: DomainMap<DomSched>,
    /// vCPUs waiting for the next period because their domain hit its cap.
    pub(super) parked: VecDeque<VcpuRef>,
    /// Start of the current accounting period (a multiple of `period`).
    pub(super) period_start: u64,
    /// How many domains have a cap: while none has, `cap_left` answers
    /// without looking the domain up.
    pub(super) capped: usize,
}

impl Scheduler {
    /// A scheduler for CPUs `0..cpus`, with no domains.
    pub fn new(cpus: usize, config: SchedConfig) -> Result<Self, SchedError> {
        let (slice, period) = config.checked()?;
        if cpus == 0 || cpus > CpuMask::BITS {
            return Err(SchedError::BadCpuCount);
        }
        Ok(Self {
            slice,
            period,
            all: CpuMask::first(cpus),
            cpus: (0..cpus).map(|_| CpuSched::default()).collect(),
            vcpus: VcpuMap::new(),
            doms: DomainMap::new(),
            parked: VecDeque::new(),
            period_start: 0,
            capped: 0,
        })
    }

    /// The time slice, in ticks.
    pub const fn slice_ticks(&self) -> u64 {
        self.slice
    }

    /// The accounting period, in ticks.
    pub const fn period_ticks(&self) -> u64 {
        self.period
    }

    /// How many CPUs it drives.
    pub fn cpu_count(&self) -> usize {
        self.cpus.len()
    }

    /// Registers a domain with `vcpus` vCPUs, each allowed on `affinity`. The
    /// domain starts paused and its vCPUs blocked: [`Self::wake`] each vCPU
    /// that is up and [`Self::unpause_domain`] when it may run.
    pub fn add_domain(
        &mut self,
        dom: DomainId,
        params: DomainParams,
        vcpus: usize,
        affinity: CpuMask,
    ) -> Result<(), SchedError> {
        if self.doms.contains_key(&dom) {
            return Err(SchedError::Exists);
        }
        if vcpus == 0 {
            return Err(SchedError::BadVcpuCount);
        }
        check_weight(params.weight)?;
        check_cap(params.cap, vcpus)?;
        let affinity = self.check_affinity(affinity)?;
        let first = affinity.iter().next().map_or(0, |c| c.0);
        for v in 0..vcpus {
            let s = VcpuSched {
                awake: false,
                at: Place::Off,
                last_cpu: first,
                boost: false,
                yielded: false,
                credit: 0,
                affinity,
                started: 0,
                grant: 0,
                ran_in_period: false,
                time: 0,
                dom_paused: true,
                dom_capped: params.cap > 0,
                uncharged: 0,
            };
            self.vcpus.insert((dom, v), s);
        }
        self.capped += usize::from(params.cap > 0);
        self.doms.insert(
            dom,
            DomSched {
                weight: params.weight,
                cap: params.cap,
                paused: true,
                nr_vcpus: vcpus,
                cap_used: 0,
                cap_granted: 0,
                active: 0,
                share: 0,
            },
        );
        // Every queue may come to hold every vCPU: grow them now so that the
        // scheduling path itself never allocates.
        let total = self.vcpus.len();
        for c in &mut self.cpus {
            c.runq.reserve(total.saturating_sub(c.runq.len()));
        }
        self.parked.reserve(total.saturating_sub(self.parked.len()));
        Ok(())
    }

    /// Forgets a domain. Its vCPUs leave every queue; the CPUs in the answer
    /// were running one of them and must be kicked to call `schedule` (which
    /// ignores the forgotten vCPU: its last moments are not charged).
    pub fn remove_domain(&mut self, dom: DomainId) -> Result<CpuMask, SchedError> {
        let n = self
            .doms
            .get(&dom)
            .ok_or(SchedError::NoSuchDomain)?
            .nr_vcpus;
        let kick = self.take_off(dom, n);
        for v in 0..n {
            self.vcpus.remove(&(dom, v));
        }
        if self.doms.remove(&dom).is_some_and(|d| d.cap > 0) {
            self.capped -= 1;
        }
        for (c, cpu) in self.cpus.iter_mut().enumerate() {
            if cpu.current.is_some_and(|r| r.0 == dom) {
                cpu.current = None;
                debug_assert!(kick.contains(CpuIndex(c)));
            }
        }
        Ok(kick)
    }

    /// vCPU `r` wants to run (woken by an event, brought up, given an entry
    /// point). Answers the CPU to kick with an IPI, if any (possibly the
    /// calling CPU: then it just reschedules). Unknown vCPUs are ignored.
    pub fn wake(&mut self, r: VcpuRef) -> Option<CpuIndex> {
        self.ready(r, usize::MAX, true).map(CpuIndex)
    }

    /// vCPU `r` no longer wants to run (blocked, brought down). If it is
    /// running, it stays on its CPU until that CPU calls `schedule`.
    pub fn block(&mut self, r: VcpuRef) {
        let Some(v) = self.vcpus.get_mut_hot(&r) else {
            return;
        };
        v.awake = false;
        v.boost = false;
        // Mostly it blocks while running: on no queue, nothing to take off.
        if matches!(v.at, Place::Queued(_) | Place::Parked) {
            self.unqueue(r);
        }
    }

    /// vCPU `r` (running) gives way: at its CPU's next `schedule`, any other
    /// vCPU queued on that CPU runs first.
    pub fn yield_now(&mut self, r: VcpuRef) {
        // On every `sched_op yield` (the domain-switch round trip).
        if let Some(v) = self.vcpus.get_mut_hot(&r) {
            v.yielded = true;
        }
    }

    /// Stops every vCPU of `dom` from being picked. The answer holds the CPUs
    /// running one of them now: kick them.
    pub fn pause_domain(&mut self, dom: DomainId) -> Result<CpuMask, SchedError> {
        let d = self.doms.get_mut(&dom).ok_or(SchedError::NoSuchDomain)?;
        d.paused = true;
        let n = d.nr_vcpus;
        self.set_dom_paused(dom, n, true);
        Ok(self.take_off(dom, n))
    }

    /// Lets the awake vCPUs of `dom` run again. The answer holds the CPUs to
    /// kick.
    pub fn unpause_domain(&mut self, dom: DomainId) -> Result<CpuMask, SchedError> {
        let d = self.doms.get_mut(&dom).ok_or(SchedError::NoSuchDomain)?;
        d.paused = false;
        let n = d.nr_vcpus;
        self.set_dom_paused(dom, n, false);
        let mut kick = CpuMask::EMPTY;
        for v in 0..n {
            let r = (dom, v);
            if self
                .vcpus
                .get(&r)
                .is_some_and(|s| s.awake && s.at == Place::Off)
                && let Some(c) = self.make_ready(r, usize::MAX)
            {
                kick.insert(CpuIndex(c));
            }
        }
        Ok(kick)
    }

    /// Sets a domain's weight (`1..=65535`); it counts from the next period.
    pub fn set_weight(&mut self, dom: DomainId, weight: u32) -> Result<(), SchedError> {
        check_weight(weight)?;
        self.doms
            .get_mut(&dom)
            .ok_or(SchedError::NoSuchDomain)?
            .weight = weight;
        Ok(())
    }

    /// Sets a domain's cap in percent of one CPU (0 = none, at most 100 × its
    /// vCPUs). A lower cap takes effect at the next pick (a running vCPU may
    /// finish its slice); a higher one releases parked vCPUs at once. The
    /// answer holds the CPUs to kick.
    pub fn set_cap(&mut self, dom: DomainId, cap: u32) -> Result<CpuMask, SchedError> {
        let d = self.doms.get(&dom).ok_or(SchedError::NoSuchDomain)?;
        let n = d.nr_vcpus;
        check_cap(cap, n)?;
        // Its vCPUs' uncharged ticks join `cap_used`, which counts from here
        // on through the domain again if it is capped now.
        let mut uncharged = 0u64;
        for v in 0..n {
            if let Some(s) = self.vcpus.get_mut(&(dom, v)) {
                uncharged = uncharged.saturating_add(core::mem::take(&mut s.uncharged));
                s.dom_capped = cap > 0;
            }
        }
        let d = self.doms.get_mut(&dom).ok_or(SchedError::NoSuchDomain)?;
        d.cap_used = d.cap_used.saturating_add(uncharged);
        let was_capped = d.cap > 0;
        d.cap = cap;
        self.capped = self.capped + usize::from(cap > 0) - usize::from(was_capped);
        let mut kick = CpuMask::EMPTY;
        if self.cap_left(dom) > 0 {
            for _ in 0..self.parked.len() {
                let Some(r) = self.parked.pop_front() else {
                    break;
                };
                if r.0 != dom {
                    self.parked.push_back(r);
                    continue;
                }
                if let Some(v) = self.vcpus.get_mut(&r) {
                    v.at = Place::Off;
                }
                if let Some(c) = self.make_ready(r, usize::MAX) {
                    kick.insert(CpuIndex(c));
                }
            }
        }
        Ok(kick)
    }

    /// Restricts vCPU `r` to the CPUs in `mask` (those the scheduler does not
    /// drive are ignored; at least one must remain). A queued vCPU is placed
    /// again at once; a running one outside the new mask moves when its CPU
    /// next calls `schedule`. The answer holds the CPUs to kick.
    pub fn set_affinity(&mut self, r: VcpuRef, mask: CpuMask) -> Result<CpuMask, SchedError> {
        let mask = self.check_affinity(mask)?;
        let v = self.vcpus.get_mut(&r).ok_or(SchedError::NoSuchVcpu)?;
        v.affinity = mask;
        let mut kick = CpuMask::EMPTY;
        match v.at {
            Place::Running(c) if !mask.contains(CpuIndex(c)) => kick.insert(CpuIndex(c)),
            // Placed again: the new mask may offer an idle CPU.
            Place::Queued(_) => {
                self.unqueue(r);
                if let Some(k) = self.make_ready(r, usize::MAX) {
                    kick.insert(CpuIndex(k));
                }
            }
            _ => {}
        }
        Ok(kick)
    }

    /// A domain's weight and cap.
    pub fn params(&self, dom: DomainId) -> Option<DomainParams> {
        self.doms.get(&dom).map(|d| DomainParams {
            weight: d.weight,
            cap: d.cap,
        })
    }

    /// vCPU `r`'s affinity.
    pub fn affinity(&self, r: VcpuRef) -> Option<CpuMask> {
        self.vcpus.get(&r).map(|v| v.affinity)
    }

    /// The vCPU `cpu` runs, as far as the scheduler knows.
    pub fn current(&self, cpu: CpuIndex) -> Option<VcpuRef> {
        self.cpus.get(cpu.0).and_then(|c| c.current)
    }

    /// CPU time vCPU `r` used up to `now`, in ticks.
    pub fn vcpu_time(&self, r: VcpuRef, now: u64) -> Option<u64> {
        let v = self.vcpus.get(&r)?;
        Some(v.time + self.running_for(v, now))
    }

    /// CPU time all vCPUs of `dom` used up to `now`, in ticks.
    pub fn domain_time(&self, dom: DomainId, now: u64) -> Option<u64> {
        let d = self.doms.get(&dom)?;
        Some(
            (0..d.nr_vcpus)
                .filter_map(|v| self.vcpus.get(&(dom, v)))
                .map(|v| v.time + self.running_for(v, now))
                .sum(),
        )
    }

    /// Ticks `cpu` spent running vCPUs up to `now` (the rest it idled).
    pub fn cpu_busy_time(&self, cpu: CpuIndex, now: u64) -> u64 {
        let Some(c) = self.cpus.get(cpu.0) else {
            return 0;
        };
        let running = c
            .current
            .and_then(|r| self.vcpus.get(&r))
            .map_or(0, |v| self.running_for(v, now));
        c.busy + running
    }

    /// vCPU `r`'s priority and credit (ticks), for diagnostics.
    pub fn credit(&self, r: VcpuRef) -> Option<(Prio, i64)> {
        self.vcpus.get(&r).map(|v| (v.prio(), v.credit))
    }

    fn running_for(&self, v: &VcpuSched, now: u64) -> u64 {
        match v.at {
            Place::Running(_) => now.saturating_sub(v.started),
            _ => 0,
        }
    }

    /// Copies `dom`'s paused flag into its `n` vCPUs.
    fn set_dom_paused(&mut self, dom: DomainId, n: usize, paused: bool) {
        for v in 0..n {
            if let Some(s) = self.vcpus.get_mut(&(dom, v)) {
                s.dom_paused = paused;
            }
        }
    }

    fn check_affinity(&self, mask: CpuMask) -> Result<CpuMask, SchedError> {
        let m = mask.and(self.all);
        if m.is_empty() {
            Err(SchedError::BadAffinity)
        } else {
            Ok(m)
        }
    }

    /// Takes every vCPU of `dom` off the queues and the parked list; answers
    /// the CPUs running one of them.
    fn take_off(&mut self, dom: DomainId, n: usize) -> CpuMask {
        let mut kick = CpuMask::EMPTY;
        for v in 0..n {
            let r = (dom, v);
            match self.vcpus.get(&r).map(|s| s.at) {
                Some(Place::Running(c)) => kick.insert(CpuIndex(c)),
                Some(_) => self.unqueue(r),
                None => {}
            }
        }
        kick
    }

    /// Takes `r` off its run queue or the parked list (a running vCPU stays).
    pub(super) fn unqueue(&mut self, r: VcpuRef) {
        let Some(v) = self.vcpus.get_mut(&r) else {
            return;
        };
        match v.at {
            Place::Queued(c) => {
                let q = &mut self.cpus[c].runq;
                if let Some(i) = q.iter().position(|&x| x == r) {
                    q.remove(i);
                }
            }
            Place::Parked => {
                if let Some(i) = self.parked.iter().position(|&x| x == r) {
                    self.parked.remove(i);
                }
            }
            Place::Off | Place::Running(_) => return,
        }
        v.at = Place::Off;
    }
}

fn check_weight(w: u32) -> Result<(), SchedError> {
    if (1..=u32::from(u16::MAX)).contains(&w) {
        Ok(())
    } else {
        Err(SchedError::BadWeight)
    }
}

fn check_cap(cap: u32, vcpus: usize) -> Result<(), SchedError> {
    let max = u64::from(CAP_PER_VCPU) * vcpus as u64;
    if u64::from(cap) <= max {
        Ok(())
    } else {
        Err(SchedError::BadCap)
    }
}
