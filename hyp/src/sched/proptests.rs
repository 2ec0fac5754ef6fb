//! Random sequences of every scheduler operation, with the bookkeeping
//! checked after each: every vCPU that wants to run is in exactly one queue
//! (or running, or parked at its cap), none is lost or duplicated, no vCPU
//! runs on two CPUs, and affinity holds on every pick.

use proptest::prelude::*;
use tern_abi::domctl::DomainId;

use super::cpumask::CpuMask;
use super::{DomainParams, SchedConfig, Scheduler, VcpuRef};
use crate::percpu::CpuIndex;

const CPUS: usize = 4;
const DOMS: u32 = 4;
const HZ: u64 = 1_000_000;

#[derive(Clone, Debug)]
enum Op {
    Add {
        dom: u32,
        vcpus: usize,
        weight: u32,
        cap: u32,
        mask: u64,
    },
    Remove(u32),
    Wake(u32, usize),
    Block(u32, usize),
    Yield(u32, usize),
    Pause(u32),
    Unpause(u32),
    Weight(u32, u32),
    Cap(u32, u32),
    Affinity(u32, usize, u64),
    /// CPU, ticks later, whether its vCPU can go on.
    Schedule(usize, u64, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let dom = 0..DOMS;
    let v = 0..4usize;
    prop_oneof![
        (dom.clone(), 1..4usize, 0..70_000u32, 0..450u32, 0..64u64).prop_map(
            |(dom, vcpus, weight, cap, mask)| Op::Add {
                dom,
                vcpus,
                weight,
                cap,
                mask
            }
        ),
        dom.clone().prop_map(Op::Remove),
        (dom.clone(), v.clone()).prop_map(|(d, v)| Op::Wake(d, v)),
        (dom.clone(), v.clone()).prop_map(|(d, v)| Op::Block(d, v)),
        (dom.clone(), v.clone()).prop_map(|(d, v)| Op::Yield(d, v)),
        dom.clone().prop_map(Op::Pause),
        dom.clone().prop_map(Op::Unpause),
        (dom.clone(), 0..70_000u32).prop_map(|(d, w)| Op::Weight(d, w)),
        (dom.clone(), 0..450u32).prop_map(|(d, c)| Op::Cap(d, c)),
        (dom, v, 0..64u64).prop_map(|(d, v, m)| Op::Affinity(d, v, m)),
        (0..CPUS, 0..40_000u64, any::<bool>()).prop_map(|(c, dt, run)| Op::Schedule(c, dt, run)),
        (0..CPUS, 0..40_000u64, any::<bool>()).prop_map(|(c, dt, run)| Op::Schedule(c, dt, run)),
        (0..CPUS, 0..40_000u64, any::<bool>()).prop_map(|(c, dt, run)| Op::Schedule(c, dt, run)),
    ]
}

/// The machine as the hypervisor sees it: what each CPU runs.
struct Machine {
    s: Scheduler,
    now: u64,
    running: [Option<VcpuRef>; CPUS],
}

impl Machine {
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let s = &mut self.s;
        match *op {
            Op::Add {
                dom,
                vcpus,
                weight,
                cap,
                mask,
            } => {
                let p = DomainParams { weight, cap };
                let ok = (1..=65_535).contains(&weight)
                    && cap as usize <= 100 * vcpus
                    && mask & 0xf != 0
                    && s.params(DomainId(dom)).is_none();
                let r = s.add_domain(DomainId(dom), p, vcpus, CpuMask(mask));
                prop_assert_eq!(r.is_ok(), ok, "{:?}", r);
            }
            Op::Remove(d) => {
                if let Ok(kick) = s.remove_domain(DomainId(d)) {
                    // The hypervisor stops the removed vCPUs on the kicked CPUs.
                    for c in kick.iter() {
                        prop_assert_eq!(self.running[c.0].map(|r| r.0), Some(DomainId(d)));
                        self.running[c.0] = None;
                    }
                }
            }
            Op::Wake(d, v) => {
                if let Some(c) = s.wake((DomainId(d), v)) {
                    prop_assert!(c.0 < CPUS);
                }
            }
            Op::Block(d, v) => s.block((DomainId(d), v)),
            Op::Yield(d, v) => s.yield_now((DomainId(d), v)),
            Op::Pause(d) => {
                let _ = s.pause_domain(DomainId(d));
            }
            Op::Unpause(d) => {
                let _ = s.unpause_domain(DomainId(d));
            }
            Op::Weight(d, w) => {
                let r = s.set_weight(DomainId(d), w);
                if s.params(DomainId(d)).is_some() {
                    prop_assert_eq!(r.is_ok(), (1..=65_535).contains(&w));
                }
            }
            Op::Cap(d, c) => {
                let _ = s.set_cap(DomainId(d), c);
            }
            Op::Affinity(d, v, m) => {
                let r = s.set_affinity((DomainId(d), v), CpuMask(m));
                if r.is_ok() {
                    prop_assert!(m & 0xf != 0);
                }
            }
            Op::Schedule(c, dt, run) => {
                self.now += dt;
                let cur = self.running[c].map(|r| (r, run));
                let d = s.schedule(CpuIndex(c), self.now, cur);
                self.running[c] = d.next;
                if let Some(r) = d.next {
                    prop_assert!(s.affinity(r).unwrap().contains(CpuIndex(c)));
                    let elsewhere = (0..CPUS).filter(|&o| o != c && self.running[o] == Some(r));
                    prop_assert_eq!(elsewhere.count(), 0, "{:?} on two CPUs", r);
                }
                prop_assert!(d.run_until > self.now);
            }
        }
        // A CPU whose vCPU was removed still runs it until it reschedules;
        // the scheduler must agree with the machine on everything else.
        for c in 0..CPUS {
            let sched = self.s.current(CpuIndex(c));
            if sched.is_some() {
                prop_assert_eq!(sched, self.running[c]);
            }
        }
        self.s.check_invariants().map_err(TestCaseError::fail)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn random_operations_keep_every_vcpu_in_one_place(ops in proptest::collection::vec(op(), 1..200)) {
        let mut m = Machine {
            s: Scheduler::new(CPUS, SchedConfig::new(HZ)).unwrap(),
            now: 0,
            running: [None; CPUS],
        };
        for op in &ops {
            m.apply(op)?;
        }
    }
}
