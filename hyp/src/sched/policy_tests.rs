//! The policy measured on the simulator: shares by weight, caps, work
//! conservation, balance across CPUs, affinity, wake-up latency. Each test
//! prints what it measured (`cargo test -p hyp --lib sched -- --nocapture`).

use std::println;
use std::vec::Vec;

use tern_abi::domctl::DomainId;

use super::cpumask::CpuMask;
use super::sim::{HZ, Load, Sim, ms};
use super::*;
use crate::percpu::CpuIndex;

const fn params(weight: u32, cap: u32) -> DomainParams {
    DomainParams { weight, cap }
}

/// `part / whole` as a fraction.
fn frac(part: u64, whole: u64) -> f64 {
    part as f64 / whole as f64
}

#[test]
fn weights_1_2_4_on_one_cpu_share_in_that_ratio() {
    let mut sim = Sim::new(1);
    for (id, w) in [(1, 256), (2, 512), (3, 1024)] {
        sim.domain(id, params(w, 0), 1, CpuMask::first(1), Load::Busy);
    }
    let (from, to) = (ms(300), ms(300) + HZ * 20);
    sim.run_until(to);
    let total = to - from;
    let shares: Vec<f64> = (1..=3)
        .map(|id| frac(sim.dom_ran(id, from, to), total))
        .collect();
    println!("weights 1:2:4 on one CPU over 20 s: shares {shares:.4?}");
    assert!(
        (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9,
        "the CPU never idles"
    );
    for (share, w) in shares.iter().zip([1.0, 2.0, 4.0]) {
        let want = w / 7.0;
        assert!(
            (share - want).abs() <= 0.05 * want,
            "share {share} vs {want}"
        );
    }
}

#[test]
fn weights_hold_across_cpus_with_several_vcpus() {
    // 2 CPUs, 3 domains × 2 busy vCPUs, weights 1:2:4: shares of the
    // machine 1/7, 2/7, 4/7.
    let mut sim = Sim::new(2);
    for (id, w) in [(1, 100), (2, 200), (3, 400)] {
        sim.domain(id, params(w, 0), 2, CpuMask::first(2), Load::Busy);
    }
    let (from, to) = (ms(300), ms(300) + HZ * 20);
    sim.run_until(to);
    let total = 2 * (to - from);
    let shares: Vec<f64> = (1..=3)
        .map(|id| frac(sim.dom_ran(id, from, to), total))
        .collect();
    println!("weights 1:2:4, 2 vCPUs each, 2 CPUs: shares {shares:.4?}");
    for (share, w) in shares.iter().zip([1.0, 2.0, 4.0]) {
        let want = w / 7.0;
        assert!(
            (share - want).abs() <= 0.05 * want,
            "share {share} vs {want}"
        );
    }
}

/// Checks that domain `id` ran at most `cap` percent of one CPU in every
/// accounting period up to `to`, and answers its overall share of one CPU.
fn assert_capped(sim: &Sim, id: u32, cap: u64, to: u64) -> f64 {
    let p = sim.s.period_ticks();
    let budget = p * cap / 100;
    for k in 0..to / p {
        let used = sim.dom_ran(id, k * p, (k + 1) * p);
        assert!(used <= budget, "period {k}: used {used} > cap {budget}");
    }
    frac(sim.dom_ran(id, 0, to), to)
}

#[test]
fn a_cap_holds_in_every_period_even_on_an_idle_machine() {
    let mut sim = Sim::new(2);
    sim.domain(1, params(256, 25), 1, CpuMask::first(2), Load::Busy);
    let to = HZ * 10;
    sim.run_until(to);
    let share = assert_capped(&sim, 1, 25, to);
    println!("cap 25%, alone on 2 idle CPUs: {share:.4} of a CPU");
    assert!(
        share > 0.24,
        "the capped domain still gets its cap: {share}"
    );
}

#[test]
fn a_cap_on_several_vcpus_counts_them_together() {
    let mut sim = Sim::new(4);
    sim.domain(1, params(256, 50), 3, CpuMask::first(4), Load::Busy);
    sim.domain(
        2,
        params(256, 0),
        1,
        CpuMask::first(4),
        Load::Burst {
            run: ms(3),
            sleep: ms(7),
        },
    );
    let to = HZ * 10;
    sim.run_until(to);
    let share = assert_capped(&sim, 1, 50, to);
    println!("cap 50%, 3 vCPUs on 4 CPUs: {share:.4} of a CPU");
    assert!(share > 0.48, "{share}");
}

#[test]
fn a_capped_domain_under_contention_stays_below_its_cap() {
    let mut sim = Sim::new(1);
    sim.domain(1, params(1024, 20), 1, CpuMask::first(1), Load::Busy);
    sim.domain(2, params(256, 0), 1, CpuMask::first(1), Load::Busy);
    let to = HZ * 10;
    sim.run_until(to);
    let capped = assert_capped(&sim, 1, 20, to);
    let other = frac(sim.dom_ran(2, 0, to), to);
    println!("cap 20% (weight 4x) vs uncapped: {capped:.4} / {other:.4}");
    assert!(
        capped > 0.19 && other > 0.79,
        "work conserved: {capped} + {other}"
    );
}

#[test]
fn a_domain_alone_gets_the_whole_cpu() {
    let mut sim = Sim::new(1);
    sim.domain(1, params(1, 0), 1, CpuMask::first(1), Load::Busy);
    let to = HZ * 5;
    sim.run_until(to);
    assert_eq!(sim.dom_ran(1, 0, to), to);
    assert_eq!(
        sim.s.domain_time(DomainId(1), to),
        Some(to),
        "its account agrees"
    );
    assert_eq!(sim.s.cpu_busy_time(CpuIndex(0), to), to);
}

#[test]
fn time_a_heavy_domain_leaves_goes_to_a_light_one() {
    // Weight 8:1, but the heavy one only wants ~10%.
    let mut sim = Sim::new(1);
    sim.domain(
        1,
        params(2048, 0),
        1,
        CpuMask::first(1),
        Load::Burst {
            run: ms(1),
            sleep: ms(9),
        },
    );
    sim.domain(2, params(256, 0), 1, CpuMask::first(1), Load::Busy);
    let to = HZ * 10;
    sim.run_until(to);
    let (heavy, light) = (
        frac(sim.dom_ran(1, 0, to), to),
        frac(sim.dom_ran(2, 0, to), to),
    );
    println!("light-demand heavy weight vs busy light weight: {heavy:.4} / {light:.4}");
    assert!(
        (heavy + light - 1.0).abs() < 1e-9,
        "never idle while one wants to run"
    );
    assert!(
        (0.09..=0.11).contains(&heavy),
        "heavy gets what it asks: {heavy}"
    );
}

#[test]
fn eight_busy_vcpus_on_four_cpus_use_every_cpu_evenly() {
    let mut sim = Sim::new(4);
    for id in 0..4 {
        sim.domain(id, params(256, 0), 2, CpuMask::first(4), Load::Busy);
    }
    let (from, to) = (ms(300), ms(300) + HZ * 10);
    sim.run_until(to);
    let span = to - from;
    for c in 0..4 {
        assert_eq!(sim.cpu_ran(c, from, to), span, "CPU {c} never idles");
    }
    let shares: Vec<f64> = (0..4)
        .flat_map(|d| (0..2).map(move |v| (DomainId(d), v)))
        .map(|r| frac(sim.ran(from, to, |x| x == r), span))
        .collect();
    println!("8 busy vCPUs on 4 CPUs: each got {shares:.3?} of a CPU");
    for s in shares {
        assert!((s - 0.5).abs() <= 0.05, "{s}");
    }
}

#[test]
fn uneven_start_is_balanced_by_stealing() {
    // Six vCPUs all start on CPU 0 (affinity), then are let loose on 3 CPUs.
    let mut sim = Sim::new(3);
    sim.domain(1, params(256, 0), 6, CpuMask::only(CpuIndex(0)), Load::Busy);
    sim.run_until(ms(100));
    for v in 0..6 {
        // The kicks are dropped on purpose (as if the IPIs were lost): the
        // busy CPU must still wake the idle ones when it next schedules.
        let _ = sim
            .s
            .set_affinity((DomainId(1), v), CpuMask::first(3))
            .unwrap();
    }
    let (from, to) = (ms(400), ms(400) + HZ * 5);
    sim.run_until(to);
    for c in 0..3 {
        assert_eq!(sim.cpu_ran(c, from, to), to - from, "CPU {c} is used");
    }
}

#[test]
fn affinity_is_never_violated_and_pins_work() {
    // The simulator asserts affinity on every pick; here a pinned vCPU
    // shares CPU 1 with a wide one while CPUs 0 and 2 serve the rest.
    let mut sim = Sim::new(3);
    sim.domain(1, params(256, 0), 1, CpuMask::only(CpuIndex(1)), Load::Busy);
    sim.domain(2, params(256, 0), 3, CpuMask(0b101), Load::Busy);
    sim.domain(
        3,
        params(256, 0),
        1,
        CpuMask::first(3),
        Load::Burst {
            run: ms(2),
            sleep: ms(5),
        },
    );
    let to = HZ * 5;
    sim.run_until(to);
    let on = |c, id| {
        sim.segments
            .iter()
            .filter(|s| s.cpu == c && s.r.0 == DomainId(id))
            .count()
    };
    assert_eq!(on(0, 1) + on(2, 1), 0);
    assert_eq!(on(1, 2), 0);
    assert!(on(1, 1) > 0 && on(0, 2) > 0 && on(2, 2) > 0);
}

#[test]
fn a_blocked_vcpu_costs_nothing_and_runs_within_a_slice_of_waking() {
    let mut sim = Sim::new(1);
    sim.domain(1, params(256, 0), 1, CpuMask::first(1), Load::Busy);
    sim.domain(2, params(256, 0), 1, CpuMask::first(1), Load::Busy);
    sim.domain(
        3,
        params(256, 0),
        1,
        CpuMask::first(1),
        Load::Burst {
            run: ms(1),
            sleep: ms(20),
        },
    );
    let to = HZ * 10;
    sim.run_until(to);
    // The three start together; after that, count the interactive one's wakes.
    let lat: Vec<u64> = sim
        .wake_latency
        .iter()
        .filter(|w| w.0 == (DomainId(3), 0) && w.1 > ms(100))
        .map(|w| w.2)
        .collect();
    let worst = lat.iter().copied().max().unwrap();
    println!(
        "interactive vCPU: {} wakes, worst latency {:.3} ms, got {:.4} of the CPU",
        lat.len(),
        worst as f64 * 1000.0 / HZ as f64,
        frac(sim.dom_ran(3, 0, to), to)
    );
    assert!(lat.len() > 400);
    assert!(
        worst <= sim.s.slice_ticks(),
        "woken vCPU waited {worst} ticks"
    );
    // It asks for 1 ms in every 21 and gets it; the rest is split evenly.
    let got = frac(sim.dom_ran(3, 0, to), to);
    assert!((got - 1.0 / 21.0).abs() < 0.003, "{got}");
    let (a, b) = (sim.dom_ran(1, 0, to), sim.dom_ran(2, 0, to));
    assert!(frac(a.abs_diff(b), to) < 0.02);
    assert_eq!(a + b + sim.dom_ran(3, 0, to), to);
}

#[test]
fn five_busy_vcpus_on_four_cpus_share_fairly_by_migrating() {
    // No placement can be fair here: each vCPU must move between CPUs to
    // get its 4/5 of a CPU; UNDER vCPUs are stolen by CPUs running OVER ones.
    let mut sim = Sim::new(4);
    for id in 0..5 {
        sim.domain(id, params(256, 0), 1, CpuMask::first(4), Load::Busy);
    }
    let (from, to) = (ms(300), ms(300) + HZ * 10);
    sim.run_until(to);
    let span = to - from;
    for c in 0..4 {
        assert_eq!(sim.cpu_ran(c, from, to), span, "CPU {c} never idles");
    }
    let shares: Vec<f64> = (0..5)
        .map(|d| frac(sim.dom_ran(d, from, to), span))
        .collect();
    println!("5 busy vCPUs on 4 CPUs: each got {shares:.3?} of a CPU");
    for s in shares {
        assert!((s - 0.8).abs() <= 0.04, "{s}");
    }
}
