//! `hand_off` against the general way it short-cuts (`wake`, then
//! `schedule` with the blocking vCPU not runnable): the same decision and
//! the same scheduler state afterwards, over random histories.

use core::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use tern_abi::domctl::DomainId;

use super::cpumask::CpuMask;
use super::sim::{HZ, ms};
use super::{DomainParams, SchedConfig, Scheduler, VcpuRef};
use crate::percpu::CpuIndex;

const CPUS: usize = 3;
const DOMS: u32 = 3;

#[derive(Clone, Debug)]
enum Op {
    Wake(u32, usize),
    Block(u32, usize),
    Yield(u32, usize),
    Cap(u32, u32),
    Affinity(u32, usize, u64),
    Schedule(usize, u64, bool),
    /// The vCPU running on this CPU hands it to this one, ticks later.
    HandOff(usize, u32, usize, u64),
}

fn op() -> impl Strategy<Value = Op> {
    let dom = 0..DOMS;
    let v = 0..2usize;
    let dt = 0..20_000u64;
    prop_oneof![
        (dom.clone(), v.clone()).prop_map(|(d, v)| Op::Wake(d, v)),
        (dom.clone(), v.clone()).prop_map(|(d, v)| Op::Block(d, v)),
        (dom.clone(), v.clone()).prop_map(|(d, v)| Op::Yield(d, v)),
        // Mostly lifting caps: any cap in force rules hand-offs out.
        (dom.clone(), prop_oneof![3 => Just(0u32), 1 => 1..150u32])
            .prop_map(|(d, c)| Op::Cap(d, c)),
        (dom.clone(), v.clone(), 1..8u64).prop_map(|(d, v, m)| Op::Affinity(d, v, m)),
        (0..CPUS, dt.clone(), any::<bool>()).prop_map(|(c, t, r)| Op::Schedule(c, t, r)),
        (0..CPUS, dom.clone(), v.clone(), dt.clone())
            .prop_map(|(c, d, v, t)| Op::HandOff(c, d, v, t)),
        (0..CPUS, dom, v, dt).prop_map(|(c, d, v, t)| Op::HandOff(c, d, v, t)),
    ]
}

fn machine() -> Scheduler {
    let mut s = Scheduler::new(CPUS, SchedConfig::new(HZ)).unwrap();
    for d in 0..DOMS {
        let params = DomainParams {
            weight: 256 * (d + 1),
            cap: 0,
        };
        s.add_domain(DomainId(d), params, 2, CpuMask::first(CPUS))
            .unwrap();
        // One vCPU of each confined to one CPU, as every vCPU is on a
        // one-CPU machine (the only kind `hand_off` takes).
        s.set_affinity((DomainId(d), 0), CpuMask::only(CpuIndex(d as usize % CPUS)))
            .unwrap();
        s.unpause_domain(DomainId(d)).unwrap();
    }
    s
}

/// Two schedulers with the same history; `fast` hands off where it can.
struct Pair {
    fast: Scheduler,
    slow: Scheduler,
    now: u64,
    running: [Option<VcpuRef>; CPUS],
    handed: usize,
    /// Hand-offs to a vCPU that may also run on other CPUs.
    handed_wide: usize,
}

impl Pair {
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Wake(d, v) => {
                let r = (DomainId(d), v);
                prop_assert_eq!(self.fast.wake(r), self.slow.wake(r));
            }
            Op::Block(d, v) => {
                self.fast.block((DomainId(d), v));
                self.slow.block((DomainId(d), v));
            }
            Op::Yield(d, v) => {
                self.fast.yield_now((DomainId(d), v));
                self.slow.yield_now((DomainId(d), v));
            }
            Op::Cap(d, c) => {
                let a = self.fast.set_cap(DomainId(d), c);
                prop_assert_eq!(a, self.slow.set_cap(DomainId(d), c));
            }
            Op::Affinity(d, v, m) => {
                let r = (DomainId(d), v);
                let a = self.fast.set_affinity(r, CpuMask(m));
                prop_assert_eq!(a, self.slow.set_affinity(r, CpuMask(m)));
            }
            Op::Schedule(c, dt, run) => {
                self.now += dt;
                let cur = self.running[c].map(|r| (r, run));
                let a = self.fast.schedule(CpuIndex(c), self.now, cur);
                prop_assert_eq!(a, self.slow.schedule(CpuIndex(c), self.now, cur));
                self.running[c] = a.next;
            }
            Op::HandOff(c, d, v, dt) => {
                let Some(from) = self.running[c] else {
                    return Ok(());
                };
                self.now += dt;
                let to = (DomainId(d), v);
                let wide = self
                    .fast
                    .vcpus
                    .get(&to)
                    .is_some_and(|t| t.affinity != CpuMask::only(CpuIndex(c)));
                match self.fast.hand_off(from, to, self.now) {
                    Some((cpu, decision)) => {
                        self.handed += 1;
                        self.handed_wide += usize::from(wide);
                        prop_assert_eq!(cpu, CpuIndex(c));
                        self.slow.wake(to);
                        let slow = self
                            .slow
                            .schedule(CpuIndex(c), self.now, Some((from, false)));
                        prop_assert_eq!(decision, slow);
                        self.running[c] = decision.next;
                    }
                    None => {
                        // Refused: the fast one is untouched; both go the
                        // general way.
                        prop_assert_eq!(
                            std::format!("{:?}", self.fast),
                            std::format!("{:?}", self.slow)
                        );
                        self.fast.wake(to);
                        self.slow.wake(to);
                        let cur = Some((from, false));
                        let a = self.fast.schedule(CpuIndex(c), self.now, cur);
                        prop_assert_eq!(a, self.slow.schedule(CpuIndex(c), self.now, cur));
                        self.running[c] = a.next;
                    }
                }
            }
        }
        prop_assert_eq!(
            std::format!("{:?}", self.fast),
            std::format!("{:?}", self.slow)
        );
        self.fast.check_invariants().map_err(TestCaseError::fail)
    }
}

#[test]
fn hand_off_decides_and_leaves_what_wake_and_schedule_would() {
    let mut runner = TestRunner::new(ProptestConfig::with_cases(512));
    let handed = Cell::new(0);
    let handed_wide = Cell::new(0);
    runner
        .run(&proptest::collection::vec(op(), 1..150), |ops| {
            let mut p = Pair {
                fast: machine(),
                slow: machine(),
                now: 0,
                running: [None; CPUS],
                handed: 0,
                handed_wide: 0,
            };
            for op in &ops {
                p.apply(op)?;
            }
            handed.set(handed.get() + p.handed);
            handed_wide.set(handed_wide.get() + p.handed_wide);
            Ok(())
        })
        .unwrap();
    // About one case in ten gets there; none would make this test vacuous.
    assert!(handed.get() > 0, "no history reached a hand-off");
    assert!(
        handed_wide.get() > 0,
        "no hand-off to a vCPU that may run elsewhere"
    );
}

#[test]
fn a_blocking_vcpu_hands_its_cpu_to_the_one_it_woke() {
    let mut s = Scheduler::new(1, SchedConfig::new(HZ)).unwrap();
    let (a, b) = ((DomainId(1), 0), (DomainId(2), 0));
    for r in [a, b] {
        s.add_domain(
            r.0,
            DomainParams {
                weight: 256,
                cap: 0,
            },
            1,
            CpuMask::first(1),
        )
        .unwrap();
        s.unpause_domain(r.0).unwrap();
    }
    s.wake(a);
    assert_eq!(s.schedule(CpuIndex(0), 10, None).next, Some(a));
    let (cpu, d) = s.hand_off(a, b, 20).expect("b blocked, nothing queued");
    assert_eq!(
        (cpu, d.next, d.run_until),
        (CpuIndex(0), Some(b), 20 + ms(10))
    );
    assert_eq!(s.current(CpuIndex(0)), Some(b));
    // And back; a woken one is refused (it is not blocked).
    let (_, d) = s.hand_off(b, a, 35).unwrap();
    assert_eq!(d.next, Some(a));
    assert_eq!(s.vcpu_time(b, HZ), Some(15));
    assert_eq!(s.hand_off(a, a, 40), None, "itself");
    s.wake(b);
    assert_eq!(s.hand_off(a, b, 40), None, "already awake");
    s.check_invariants().unwrap();
    // A capped domain anywhere: the general way.
    s.block(b);
    s.set_cap(DomainId(2), 50).unwrap();
    assert_eq!(s.hand_off(a, b, 50), None, "a cap is in force");
}
