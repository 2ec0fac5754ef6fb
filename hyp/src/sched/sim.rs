//! A deterministic simulator for the scheduler tests: N CPUs, virtual time,
//! vCPUs that are busy or run in bursts and sleep. It calls `schedule` at each
//! deadline, kick and block exactly as the hypervisor would, records who ran
//! where and when, and checks on every step that no vCPU runs on two CPUs or
//! outside its affinity, and that the scheduler's bookkeeping holds.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use tern_abi::domctl::DomainId;

use super::cpumask::CpuMask;
use super::{DomainParams, NEVER, SchedConfig, Scheduler, VcpuRef};
use crate::percpu::CpuIndex;

/// QEMU `virt`'s counter frequency.
pub(super) const HZ: u64 = 62_500_000;

/// `n` milliseconds in ticks.
pub(super) const fn ms(n: u64) -> u64 {
    n * HZ / 1000
}

/// What a vCPU does when it runs.
#[derive(Clone, Copy, Debug)]
pub(super) enum Load {
    /// Never blocks.
    Busy,
    /// Runs `run` ticks, blocks, is woken `sleep` ticks later.
    Burst { run: u64, sleep: u64 },
}

/// One stretch of a vCPU on a CPU.
#[derive(Clone, Copy, Debug)]
pub(super) struct Segment {
    pub(super) r: VcpuRef,
    pub(super) cpu: usize,
    pub(super) start: u64,
    pub(super) end: u64,
}

#[derive(Clone, Copy, Debug)]
struct SimCpu {
    running: Option<VcpuRef>,
    since: u64,
    deadline: u64,
}

/// The simulated machine.
pub(super) struct Sim {
    pub(super) s: Scheduler,
    pub(super) now: u64,
    cpus: Vec<SimCpu>,
    loads: BTreeMap<VcpuRef, Load>,
    /// For bursty vCPUs: ticks left in the current burst.
    burst_left: BTreeMap<VcpuRef, u64>,
    wakes: Vec<(u64, VcpuRef)>,
    woken_at: BTreeMap<VcpuRef, u64>,
    pub(super) segments: Vec<Segment>,
    /// Each wake: the vCPU, when, and how many ticks until it ran.
    pub(super) wake_latency: Vec<(VcpuRef, u64, u64)>,
}

impl Sim {
    pub(super) fn new(cpus: usize) -> Self {
        Self {
            s: Scheduler::new(cpus, SchedConfig::new(HZ)).unwrap(),
            now: 0,
            cpus: (0..cpus)
                .map(|_| SimCpu {
                    running: None,
                    since: 0,
                    deadline: NEVER,
                })
                .collect(),
            loads: BTreeMap::new(),
            burst_left: BTreeMap::new(),
            wakes: Vec::new(),
            woken_at: BTreeMap::new(),
            segments: Vec::new(),
            wake_latency: Vec::new(),
        }
    }

    /// Adds and starts a domain whose vCPUs all do `load`.
    pub(super) fn domain(
        &mut self,
        id: u32,
        params: DomainParams,
        vcpus: usize,
        affinity: CpuMask,
        load: Load,
    ) {
        let dom = DomainId(id);
        self.s.add_domain(dom, params, vcpus, affinity).unwrap();
        for v in 0..vcpus {
            self.loads.insert((dom, v), load);
            self.wake((dom, v));
        }
        let kick = self.s.unpause_domain(dom).unwrap();
        self.kick(kick);
    }

    fn kick(&mut self, m: CpuMask) {
        for c in m.iter() {
            self.cpus[c.0].deadline = self.now;
        }
    }

    fn wake(&mut self, r: VcpuRef) {
        if let Some(Load::Burst { run, .. }) = self.loads.get(&r) {
            self.burst_left.insert(r, *run);
        }
        self.woken_at.insert(r, self.now);
        if let Some(c) = self.s.wake(r) {
            self.cpus[c.0].deadline = self.now;
        }
    }

    /// When the vCPU running on `c` finishes its burst, if it is bursty.
    fn burst_end(&self, c: usize) -> Option<u64> {
        let cpu = &self.cpus[c];
        let left = self.burst_left.get(&cpu.running?)?;
        Some(cpu.since + left)
    }

    /// Closes the running stretch on `c` at `now`.
    fn stop(&mut self, c: usize) -> Option<VcpuRef> {
        let cpu = self.cpus[c];
        let r = cpu.running?;
        if self.now > cpu.since {
            self.segments.push(Segment {
                r,
                cpu: c,
                start: cpu.since,
                end: self.now,
            });
        }
        if let Some(left) = self.burst_left.get_mut(&r) {
            *left = left.saturating_sub(self.now - cpu.since);
        }
        self.cpus[c].running = None;
        Some(r)
    }

    fn resched(&mut self, c: usize, still_runnable: bool) {
        let cur = self.stop(c);
        let d = self
            .s
            .schedule(CpuIndex(c), self.now, cur.map(|r| (r, still_runnable)));
        if let Some(r) = d.next {
            assert!(
                self.s.affinity(r).unwrap().contains(CpuIndex(c)),
                "{r:?} picked on CPU {c} outside its affinity"
            );
            for (o, cpu) in self.cpus.iter().enumerate() {
                assert!(cpu.running != Some(r), "{r:?} on CPUs {o} and {c}");
            }
            if let Some(t) = self.woken_at.remove(&r) {
                self.wake_latency.push((r, t, self.now - t));
            }
        }
        assert!(
            d.run_until > self.now,
            "deadline {} not after now",
            d.run_until
        );
        self.cpus[c] = SimCpu {
            running: d.next,
            since: self.now,
            deadline: d.run_until,
        };
        self.kick(d.kick);
    }

    /// Runs the machine until `end`.
    pub(super) fn run_until(&mut self, end: u64) {
        loop {
            let cpu_ev = (0..self.cpus.len())
                .map(|c| (self.cpus[c].deadline, 0, c))
                .chain((0..self.cpus.len()).filter_map(|c| self.burst_end(c).map(|t| (t, 1, c))))
                .min();
            let wake_ev = self
                .wakes
                .iter()
                .enumerate()
                .map(|(i, w)| (w.0, 2, i))
                .min();
            let Some((t, kind, i)) = cpu_ev.into_iter().chain(wake_ev).min() else {
                break;
            };
            if t > end {
                break;
            }
            self.now = t;
            match kind {
                0 => self.resched(i, true),
                1 => {
                    let r = self.cpus[i].running.unwrap();
                    self.s.block(r);
                    self.resched(i, false);
                    if let Some(Load::Burst { sleep, .. }) = self.loads.get(&r) {
                        self.wakes.push((t + sleep, r));
                    }
                }
                _ => {
                    let (_, r) = self.wakes.swap_remove(i);
                    self.wake(r);
                }
            }
            if let Err(e) = self.s.check_invariants() {
                panic!("at {t}: {e}");
            }
        }
        self.now = end;
        for c in 0..self.cpus.len() {
            if self.stop(c).is_some() {
                self.cpus[c].running = self.s.current(CpuIndex(c));
                self.cpus[c].since = end;
            }
        }
    }

    /// Ticks `pred` vCPUs ran within `[from, to)`.
    pub(super) fn ran(&self, from: u64, to: u64, pred: impl Fn(VcpuRef) -> bool) -> u64 {
        self.segments
            .iter()
            .filter(|s| pred(s.r))
            .map(|s| s.end.min(to).saturating_sub(s.start.max(from)))
            .sum()
    }

    /// Ticks domain `id` ran within `[from, to)`.
    pub(super) fn dom_ran(&self, id: u32, from: u64, to: u64) -> u64 {
        self.ran(from, to, |r| r.0 == DomainId(id))
    }

    /// Ticks CPU `c` ran vCPUs within `[from, to)`.
    pub(super) fn cpu_ran(&self, c: usize, from: u64, to: u64) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.cpu == c)
            .map(|s| s.end.min(to).saturating_sub(s.start.max(from)))
            .sum()
    }
}
