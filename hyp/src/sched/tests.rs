//! Scheduler unit tests: configuration and validation, and the operations
//! step by step (the policy over time is in `policy_tests`).

use tern_abi::domctl::DomainId;

use super::cpumask::CpuMask;
use super::sim::{HZ, ms};
use super::*;
use crate::domain::table::DomainTable;
use crate::domain::{DomainConfig, Lifecycle, VcpuState};
use crate::percpu::CpuIndex;
use crate::physmem::testing::Arena;
use tern_abi::domctl::DomainFlags;

const fn params(weight: u32, cap: u32) -> DomainParams {
    DomainParams { weight, cap }
}

#[test]
fn default_config_is_10ms_slice_30ms_period() {
    let s = Scheduler::new(2, SchedConfig::new(HZ)).unwrap();
    assert_eq!(s.slice_ticks(), ms(10));
    assert_eq!(s.period_ticks(), ms(30));
    assert_eq!(s.cpu_count(), 2);
}

#[test]
fn bad_configs_are_rejected() {
    let bad = |slice_us, period_us, ticks_per_s| SchedConfig {
        ticks_per_s,
        slice_us,
        period_us,
    };
    for cfg in [
        bad(50, 30_000, HZ),
        bad(10_000, 5_000, HZ),
        bad(10_000, 2_000_000, HZ),
        bad(10_000, 30_000, 0),
    ] {
        assert_eq!(
            Scheduler::new(1, cfg).unwrap_err(),
            SchedError::BadConfig,
            "{cfg:?}"
        );
    }
    let cfg = SchedConfig::new(HZ);
    assert_eq!(Scheduler::new(0, cfg).unwrap_err(), SchedError::BadCpuCount);
    assert_eq!(
        Scheduler::new(65, cfg).unwrap_err(),
        SchedError::BadCpuCount
    );
    let s = Scheduler::new(1, bad(1_000, 4_000, HZ)).unwrap();
    assert_eq!((s.slice_ticks(), s.period_ticks()), (ms(1), ms(4)));
}

#[test]
fn bad_weights_caps_and_affinities_are_rejected() {
    let mut s = Scheduler::new(4, SchedConfig::new(HZ)).unwrap();
    let d = DomainId(1);
    let all = CpuMask::first(4);
    assert_eq!(
        s.add_domain(d, params(0, 0), 1, all),
        Err(SchedError::BadWeight)
    );
    assert_eq!(
        s.add_domain(d, params(65_536, 0), 1, all),
        Err(SchedError::BadWeight)
    );
    assert_eq!(
        s.add_domain(d, params(256, 101), 1, all),
        Err(SchedError::BadCap)
    );
    assert_eq!(
        s.add_domain(d, params(256, 0), 0, all),
        Err(SchedError::BadVcpuCount)
    );
    assert_eq!(
        s.add_domain(d, params(256, 0), 1, CpuMask(0b1_0000)),
        Err(SchedError::BadAffinity)
    );
    assert!(s.params(d).is_none(), "nothing half-added");
    s.add_domain(d, params(65_535, 200), 2, all).unwrap();
    assert_eq!(
        s.add_domain(d, params(256, 0), 1, all),
        Err(SchedError::Exists)
    );
    assert_eq!(s.set_weight(d, 0), Err(SchedError::BadWeight));
    assert_eq!(s.set_weight(d, 70_000), Err(SchedError::BadWeight));
    assert_eq!(s.set_cap(d, 201), Err(SchedError::BadCap));
    assert_eq!(
        s.set_affinity((d, 0), CpuMask::EMPTY),
        Err(SchedError::BadAffinity)
    );
    assert_eq!(
        s.set_affinity((d, 0), CpuMask(0xf0)),
        Err(SchedError::BadAffinity)
    );
    assert_eq!(s.set_affinity((d, 2), all), Err(SchedError::NoSuchVcpu));
    assert_eq!(s.set_weight(DomainId(9), 1), Err(SchedError::NoSuchDomain));
    assert_eq!(
        s.params(d),
        Some(params(65_535, 200)),
        "refused changes change nothing"
    );
    s.set_weight(d, 1).unwrap();
    s.set_cap(d, 0).unwrap();
    assert_eq!(s.params(d), Some(params(1, 0)));
    // CPUs the scheduler does not drive are dropped from a mask.
    s.set_affinity((d, 1), CpuMask(0b1100_0010)).unwrap();
    assert_eq!(s.affinity((d, 1)), Some(CpuMask(0b10)));
    assert_eq!(
        tern_abi::Error::from(SchedError::BadCap),
        tern_abi::Error::InvalidArgument
    );
    assert_eq!(
        tern_abi::Error::from(SchedError::NoSuchDomain),
        tern_abi::Error::NoSuchDomain
    );
    s.remove_domain(d).unwrap();
    assert_eq!(s.remove_domain(d), Err(SchedError::NoSuchDomain));
}

#[test]
fn a_capped_vcpu_woken_on_a_sleeping_machine_is_not_forgotten() {
    let mut s = Scheduler::new(1, SchedConfig::new(HZ)).unwrap();
    let r = (DomainId(1), 0);
    s.add_domain(r.0, params(256, 10), 1, CpuMask::first(1))
        .unwrap();
    s.wake(r);
    s.unpause_domain(r.0).unwrap();
    let p = s.period_ticks();
    let t0 = 10 * p;
    let d = s.schedule(CpuIndex(0), t0, None);
    assert_eq!(
        (d.next, d.run_until),
        (Some(r), t0 + p / 10),
        "runs its whole cap"
    );
    // It uses all of it, blocks, and the CPU sleeps with no timer.
    s.block(r);
    let d = s.schedule(CpuIndex(0), d.run_until, Some((r, false)));
    assert_eq!((d.next, d.run_until), (None, NEVER));
    // Periods later it wakes. Its cap looks spent until the period rolls
    // over, which takes a CPU calling `schedule`: the wake must ask for one.
    let t1 = t0 + 5 * p + 7;
    assert_eq!(s.wake(r), Some(CpuIndex(0)));
    let d = s.schedule(CpuIndex(0), t1, None);
    assert_eq!((d.next, d.run_until), (Some(r), t1 + p / 10), "a fresh cap");
}

#[test]
fn time_used_before_a_cap_is_set_counts_against_it() {
    let mut s = Scheduler::new(1, SchedConfig::new(HZ)).unwrap();
    let r = (DomainId(1), 0);
    s.add_domain(r.0, params(256, 0), 1, CpuMask::first(1))
        .unwrap();
    s.wake(r);
    s.unpause_domain(r.0).unwrap();
    let p = s.period_ticks();
    let t0 = 10 * p;
    let d = s.schedule(CpuIndex(0), t0, None);
    assert_eq!(d.next, Some(r));
    // Uncapped, it runs a twentieth of the period and blocks; then it is
    // capped at a tenth of a CPU in the same period.
    let used = p / 20;
    s.block(r);
    let d = s.schedule(CpuIndex(0), t0 + used, Some((r, false)));
    assert_eq!(d.next, None);
    s.set_cap(r.0, 10).unwrap();
    s.check_invariants().unwrap();
    s.wake(r);
    let t1 = t0 + used;
    let d = s.schedule(CpuIndex(0), t1, None);
    assert_eq!(
        (d.next, d.run_until),
        (Some(r), t1 + p / 10 - used),
        "what is left of the cap"
    );
    assert_eq!(s.domain_time(r.0, t1), Some(used));
}

#[test]
fn descheduled_not_runnable_is_blocked_without_block() {
    // The hot `sched_op block` path: the running vCPU's CPU deschedules it
    // in the same trap, and the scheduler is not told `block` first.
    let mut s = Scheduler::new(1, SchedConfig::new(HZ)).unwrap();
    let r = (DomainId(1), 0);
    s.add_domain(r.0, params(256, 0), 1, CpuMask::first(1))
        .unwrap();
    s.wake(r);
    s.unpause_domain(r.0).unwrap();
    assert_eq!(s.schedule(CpuIndex(0), 100, None).next, Some(r));
    let d = s.schedule(CpuIndex(0), 200, Some((r, false)));
    assert_eq!((d.next, d.run_until), (None, NEVER), "it does not run on");
    s.check_invariants().unwrap();
    assert_eq!(s.wake(r), Some(CpuIndex(0)), "a wake finds it blocked");
    assert_eq!(s.schedule(CpuIndex(0), 300, None).next, Some(r));
}

#[test]
fn blocked_time_is_not_charged() {
    let mut s = Scheduler::new(1, SchedConfig::new(HZ)).unwrap();
    let r = (DomainId(1), 0);
    s.add_domain(r.0, params(256, 0), 1, CpuMask::first(1))
        .unwrap();
    assert_eq!(s.wake(r), None, "paused: not queued");
    assert_eq!(s.unpause_domain(r.0).unwrap(), CpuMask::only(CpuIndex(0)));
    let d = s.schedule(CpuIndex(0), 100, None);
    assert_eq!((d.next, d.run_until), (Some(r), 100 + ms(10)));
    s.block(r);
    let d = s.schedule(CpuIndex(0), 600, Some((r, false)));
    assert_eq!((d.next, d.run_until), (None, NEVER), "idle CPU sleeps");
    assert_eq!(s.vcpu_time(r, HZ), Some(500));
    // It overdrew its (not yet handed out) credit: woken without a boost.
    assert_eq!(s.credit(r), Some((Prio::Over, -500)));
    assert_eq!(s.wake(r), Some(CpuIndex(0)));
    assert_eq!(s.credit(r).unwrap().0, Prio::Over);
    let d = s.schedule(CpuIndex(0), HZ, None);
    assert_eq!(d.next, Some(r));
    assert_eq!(s.vcpu_time(r, HZ + 7), Some(507));
    assert_eq!(s.domain_time(r.0, HZ + 7), Some(507));
}

#[test]
fn yield_lets_another_vcpu_run_first() {
    let mut s = Scheduler::new(1, SchedConfig::new(HZ)).unwrap();
    let (a, b) = ((DomainId(1), 0), (DomainId(2), 0));
    for r in [a, b] {
        s.add_domain(r.0, params(256, 0), 1, CpuMask::first(1))
            .unwrap();
        s.wake(r);
        s.unpause_domain(r.0).unwrap();
    }
    let first = s.schedule(CpuIndex(0), 10, None).next.unwrap();
    let other = if first == a { b } else { a };
    // Both were woken with credit: `other`, still boosted, goes next; then
    // both are OVER, `first` with more credit left (-1 against -5).
    assert_eq!(
        s.schedule(CpuIndex(0), 11, Some((first, true))).next,
        Some(other)
    );
    assert_eq!(
        s.schedule(CpuIndex(0), 16, Some((other, true))).next,
        Some(first)
    );
    assert_eq!(
        s.schedule(CpuIndex(0), 17, Some((first, true))).next,
        Some(first)
    );
    s.yield_now(first);
    assert_eq!(
        s.schedule(CpuIndex(0), 18, Some((first, true))).next,
        Some(other)
    );
    // Alone, a yielder runs again.
    s.block(first);
    s.yield_now(other);
    assert_eq!(
        s.schedule(CpuIndex(0), 19, Some((other, true))).next,
        Some(other)
    );
}

#[test]
fn pause_and_remove_take_vcpus_off_their_cpus() {
    let mut s = Scheduler::new(2, SchedConfig::new(HZ)).unwrap();
    let d = DomainId(3);
    s.add_domain(d, params(256, 0), 3, CpuMask::first(2))
        .unwrap();
    for v in 0..3 {
        assert_eq!(s.wake((d, v)), None);
    }
    assert_eq!(
        s.unpause_domain(d).unwrap(),
        CpuMask::first(2),
        "both CPUs idle"
    );
    let a = s.schedule(CpuIndex(0), 1, None).next.unwrap();
    let b = s.schedule(CpuIndex(1), 1, None).next.unwrap();
    assert_ne!(a, b);
    assert_eq!(s.pause_domain(d).unwrap(), CpuMask::first(2));
    s.check_invariants().unwrap();
    assert_eq!(s.schedule(CpuIndex(0), 5, Some((a, true))).next, None);
    assert_eq!(s.unpause_domain(d).unwrap(), CpuMask::only(CpuIndex(0)));
    assert!(s.schedule(CpuIndex(0), 6, None).next.is_some());
    assert_eq!(s.remove_domain(d).unwrap(), CpuMask::first(2));
    s.check_invariants().unwrap();
    // The CPU still reports the forgotten vCPU: it is ignored.
    assert_eq!(s.schedule(CpuIndex(1), 9, Some((b, true))).next, None);
    assert_eq!(
        s.schedule(CpuIndex(7), 9, None).run_until,
        NEVER,
        "unknown CPU"
    );
}

#[test]
fn a_woken_boosted_vcpu_preempts_a_busy_cpu() {
    let mut s = Scheduler::new(1, SchedConfig::new(HZ)).unwrap();
    let (busy, io) = ((DomainId(1), 0), (DomainId(2), 0));
    for r in [busy, io] {
        s.add_domain(r.0, params(256, 0), 1, CpuMask::first(1))
            .unwrap();
        s.unpause_domain(r.0).unwrap();
    }
    s.wake(busy);
    assert_eq!(s.schedule(CpuIndex(0), 0, None).next, Some(busy));
    assert_eq!(s.credit(busy).unwrap().0, Prio::Boost, "woken with credit");
    // A boosted vCPU does not preempt another boosted one.
    s.add_domain(DomainId(3), params(256, 0), 1, CpuMask::first(1))
        .unwrap();
    s.unpause_domain(DomainId(3)).unwrap();
    assert_eq!(s.wake((DomainId(3), 0)), None);
    s.block((DomainId(3), 0));
    // Descheduled, `busy` loses its boost.
    assert_eq!(
        s.schedule(CpuIndex(0), 10, Some((busy, true))).next,
        Some(busy)
    );
    assert_eq!(s.credit(busy).unwrap().0, Prio::Over);
    // A wake from the same CPU's interrupt handler names it: reschedule.
    assert_eq!(s.wake(io), Some(CpuIndex(0)));
    assert_eq!(s.credit(io).unwrap().0, Prio::Boost);
    assert_eq!(
        s.schedule(CpuIndex(0), 50, Some((busy, true))).next,
        Some(io)
    );
}

#[test]
fn round_robin_skips_what_cannot_run() {
    let mem = Arena::new(0x8000_0000, 4096);
    let mut frames = Arena::new(0x8000_0000, 4096);
    let mut t = DomainTable::new();
    for (name, vcpus) in [(&b"a"[..], 1), (b"b", 2), (b"c", 1)] {
        let cfg = DomainConfig {
            name,
            pages: 256,
            vcpus,
            cmdline: b"",
            flags: DomainFlags::from_bits_retain(0),
        };
        let id = t.create(&cfg, &mut frames, &mem).unwrap();
        let d = t.get_mut(id).unwrap();
        d.life = Lifecycle::Active;
        for v in &mut d.vcpus {
            v.state = VcpuState::Runnable;
        }
    }
    let (a, b, c) = (DomainId(0), DomainId(1), DomainId(2));
    assert_eq!(pick_next(&t, 0, None), Some((a, 0)));
    assert_eq!(pick_next(&t, 0, Some((a, 0))), Some((b, 0)));
    assert_eq!(pick_next(&t, 0, Some((b, 0))), Some((b, 1)));
    assert_eq!(pick_next(&t, 0, Some((b, 1))), Some((c, 0)));
    assert_eq!(pick_next(&t, 0, Some((c, 0))), Some((a, 0)));
    t.get_mut(b).unwrap().vcpus[0].state = VcpuState::Blocked;
    t.get_mut(c).unwrap().life = Lifecycle::Crashed;
    t.get_mut(a).unwrap().life = Lifecycle::Paused;
    assert_eq!(
        pick_next(&t, 0, Some((b, 1))),
        Some((b, 1)),
        "alone: runs again"
    );
    t.get_mut(b).unwrap().vcpus[1].on_cpu = Some(1);
    assert_eq!(pick_next(&t, 0, None), None, "on another CPU");
    assert_eq!(pick_next(&t, 1, None), Some((b, 1)));
    t.get_mut(b).unwrap().vcpus[1].on_cpu = None;
    t.get_mut(b).unwrap().life = Lifecycle::Shutdown(tern_abi::sched::ShutdownReason::Poweroff);
    assert_eq!(pick_next(&t, 0, Some((b, 1))), None);
}
