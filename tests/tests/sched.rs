//! The credit scheduler under load (issue 4): weights share a contended CPU
//! in proportion, a cap is a ceiling even on an idle machine, a lone domain
//! gets a whole CPU, and eight busy vCPUs keep four CPUs busy; and FP/SIMD
//! registers stay with their domain when vCPUs switch (lazily, see
//! hyp/src/arch/aarch64/guest.rs).
//!
//! The guests are `burn` domains (CPU-bound, never blocking) from dedicated
//! bundles (`scripts/build.sh`). What each got is the hypervisor's own CPU
//! time accounting (`DomainInfo::cpu_time_ns`), which dom0 samples every
//! second with `dom0.top=1000` while dom0 itself sleeps on a timer: what
//! the scheduler handed out, in counter ticks. The burners' iteration
//! counts are printed for the record; they cover each burner's whole run,
//! not the measured window, so they are not compared.
//!
//! QEMU runs with `-icount`: the counter then advances with the
//! instructions executed (16 ns each) instead of with the host's clock. On
//! a host whose cores are shared (other QEMUs of the suite, builds), a
//! descheduled QEMU thread would otherwise make time jump under whichever
//! vCPU was running and blur the shares; with icount what is measured is
//! the scheduler's policy alone, the same on any host, and the runs are
//! short (about a second of host time each).

use std::collections::BTreeMap;
use std::time::Duration;
use tern_tests::{Qemu, image, re};

const STEP: Duration = Duration::from_secs(30);

/// Virtual time from instructions: 2^4 ns each; when every CPU idles, time
/// skips to the next timer instead of passing in real time.
const ICOUNT: &str = "shift=4,sleep=off";

/// One `dom0.top` period: its length and the CPU time each domain got.
#[derive(Debug)]
struct Period {
    ns: u64,
    got: BTreeMap<String, u64>,
}

impl Period {
    /// What `name` got, in percent of one CPU.
    fn percent(&self, name: &str) -> f64 {
        self.got[name] as f64 * 100.0 / self.ns as f64
    }
}

/// Boots `bundle` on `smp` CPUs with `dom0.top=1000` and returns the first
/// `periods` reports, each with every domain of `names`. Checks that every
/// burner then ran to its end and the machine powered off.
fn measure(bundle: &str, smp: u32, names: &[&str], periods: usize) -> Vec<Period> {
    let mut vm = Qemu::builder()
        .smp(smp)
        .args(["-icount", ICOUNT])
        .initrd(image(bundle).unwrap())
        .append("loglevel=warn -- dom0.top=1000")
        .fail_on("dom0: cannot start")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for n in 1..=periods {
        let head = vm
            .expect(
                re(&format!(r"\[dom0\] dom0: top: period {n} of (\d+) ns")),
                STEP,
            )
            .unwrap();
        let lines: Vec<_> = names
            .iter()
            .map(|name| re(&format!(r"\[dom0\] dom0: top: {name} \(\d+\) (\d+) ns = ")))
            .collect();
        let got = vm.expect_all(&lines, STEP).unwrap();
        out.push(Period {
            ns: head.group(1).parse().unwrap(),
            got: names
                .iter()
                .zip(&got)
                .map(|(name, m)| (name.to_string(), m.group(1).parse().unwrap()))
                .collect(),
        });
    }
    let done: Vec<_> = names
        .iter()
        .map(|name| re(&format!(r"\[{name}\] burn: {name} did (\d+) units")))
        .collect();
    let units = vm.expect_all(&done, STEP).unwrap();
    vm.expect("[dom0] dom0: no domains left", STEP).unwrap();
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
    for (p, period) in out.iter().enumerate() {
        let shares: Vec<_> = names
            .iter()
            .map(|n| format!("{n} {:.1}%", period.percent(n)))
            .collect();
        println!("period {} ({} ns): {}", p + 1, period.ns, shares.join(", "));
    }
    for (name, m) in names.iter().zip(&units) {
        println!("{name}: {} units of work (not compared)", m.group(1));
    }
    out
}

/// Sum over the periods: (CPU time of each of `names`, total length).
fn totals(periods: &[Period], names: &[&str]) -> (Vec<u64>, u64) {
    let got = names
        .iter()
        .map(|n| periods.iter().map(|p| p.got[*n]).sum())
        .collect();
    (got, periods.iter().map(|p| p.ns).sum())
}

/// Three CPU-bound domains with weights 256, 512 and 1024 on one CPU get
/// CPU time 1:2:4, within 5% each, over 3 s.
#[test]
fn weights_share_one_cpu_in_proportion() {
    let names = ["burn-w256", "burn-w512", "burn-w1024"];
    let weights = [256.0, 512.0, 1024.0];
    let periods = measure("bundle-sched-weights.cpio", 1, &names, 3);
    let (got, window) = totals(&periods, &names);
    let per_weight: Vec<f64> = got
        .iter()
        .zip(weights)
        .map(|(&g, w)| g as f64 / w)
        .collect();
    let mean = per_weight.iter().sum::<f64>() / per_weight.len() as f64;
    for ((name, g), pw) in names.iter().zip(&got).zip(&per_weight) {
        let rel = pw / mean;
        println!(
            "{name}: {} ms of {} ms ({:.1}%), {rel:.3} of its weighted share",
            g / 1_000_000,
            window / 1_000_000,
            *g as f64 * 100.0 / window as f64
        );
        assert!(
            (0.95..=1.05).contains(&rel),
            "{name} got {rel:.3} of its weighted share (1:2:4 within 5%): {got:?} ns"
        );
    }
    // Nothing else ran: the three used the CPU (dom0 slept).
    let busy = got.iter().sum::<u64>() as f64 / window as f64;
    assert!(busy >= 0.95, "the CPU was busy {busy:.3} of the time");
}

/// On two CPUs, a domain capped at 25% gets 25% of a CPU over the run
/// (within 5%), never more, although a CPU is there for the taking; an
/// uncapped domain gets at least 90% of one in every period (work
/// conservation). The cap is checked over the whole run, as it is defined
/// per accounting period (30 ms): a one-second sample holds 33 or 34 of
/// them, and time the emulator loses to the host lands in one or the other.
#[test]
fn cap_is_a_ceiling_and_a_lone_domain_gets_a_whole_cpu() {
    let names = ["burn-cap25", "burn-alone"];
    let periods = measure("bundle-sched-cap.cpio", 2, &names, 3);
    for (i, p) in periods.iter().enumerate() {
        let alone = p.percent("burn-alone");
        assert!(
            alone >= 90.0,
            "period {}: lone domain got {alone:.1}% of a CPU",
            i + 1
        );
    }
    let (got, window) = totals(&periods, &names);
    let capped = got[0] as f64 * 100.0 / window as f64;
    println!(
        "burn-cap25: {capped:.2}% of a CPU over {} ms",
        window / 1_000_000
    );
    assert!(
        capped <= 25.0 * 1.05,
        "capped domain got {capped:.2}% of a CPU over the run"
    );
    // And it does get its 25%: a ceiling, not a starvation.
    assert!(
        capped >= 25.0 * 0.95,
        "capped domain got only {capped:.2}% of a CPU over the run"
    );
}

/// Eight CPU-bound single-vCPU domains on four CPUs: each gets about half a
/// CPU (between 35% and 65%), and together they keep more than three CPUs
/// busy, so every CPU is used.
#[test]
fn eight_busy_vcpus_use_all_four_cpus() {
    let names: Vec<String> = (1..=8).map(|i| format!("burn-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let periods = measure("bundle-sched-smp.cpio", 4, &names, 2);
    for (i, p) in periods.iter().enumerate() {
        for name in &names {
            let got = p.percent(name);
            assert!(
                (35.0..=65.0).contains(&got),
                "period {}: {name} got {got:.1}% of a CPU",
                i + 1
            );
        }
        let sum: f64 = names.iter().map(|n| p.percent(n)).sum();
        println!("period {}: {sum:.1}% of a CPU in all", i + 1);
        // Period 1 also holds the start-up: dom0 builds the eight domains
        // one after another on CPU 0 while the first ones already burn, so
        // the burners cannot have all four CPUs for the whole of it (it
        // measured 349.9-378% depending on how the hypervisor's code
        // happened to shift the -icount timing). Above 300% still takes
        // all four CPUs; later periods are steady.
        let floor = if i == 0 { 320.0 } else { 350.0 };
        assert!(
            sum > floor,
            "period {}: the 8 vCPUs got {sum:.1}% of a CPU in all: not all 4 CPUs used",
            i + 1
        );
    }
}

/// FP/SIMD isolation under lazy FP switching: three domains on one CPU each
/// fill V0..V31 and FPCR with their own pattern, yield to the others (which
/// do the same), and check that every register kept its value, 300 times.
/// A switch that leaves another domain's registers in place, or loses a
/// domain's own, shows up as a FAIL line.
#[test]
fn fp_simd_registers_stay_with_their_domain() {
    fp_check_bundle(1);
}

/// The same on two CPUs: vCPUs now move between CPUs, so a CPU's registers
/// may hold a stale copy of a vCPU's state that ran elsewhere since (which
/// the hypervisor must not take for current), and a CPU may come back to
/// the vCPU whose state it still holds (which it need not reload).
#[test]
fn fp_simd_registers_stay_with_their_domain_across_cpus() {
    fp_check_bundle(2);
}

fn fp_check_bundle(cpus: u32) {
    let mut vm = Qemu::builder()
        .smp(cpus)
        .initrd(image("bundle-sched-fp.cpio").unwrap())
        .append("loglevel=warn")
        .fail_on("fp-check: FAIL")
        .fail_on("dom0: cannot start")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let step = Duration::from_secs(60);
    vm.expect_all(
        &[
            re(r"\[fp-check-a\] fp-check: PASS 300 rounds"),
            re(r"\[fp-check-b\] fp-check: PASS 300 rounds"),
            re(r"\[fp-check-c\] fp-check: PASS 300 rounds"),
        ],
        step,
    )
    .unwrap();
    vm.expect("[dom0] dom0: no domains left", step).unwrap();
    let status = vm.wait_exit(step).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}
