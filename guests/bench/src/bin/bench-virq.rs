//! bench-virq: timer interrupt to guest handler (kvm-unit-tests
//! `arm/micro-bench` "virq"/timer). The guest binds `Virq::Timer`, unmasks
//! the upcall IRQ and, `iters=<n>` times, arms its one-shot timer
//! (`time_op set_timer`) `delta_ns=<d>` (default 20000) ahead and spins until
//! its handler has run. The timer is the hypervisor's EL2 timer: when it
//! fires, EL2 takes the interrupt, raises `Virq::Timer` in the event page
//! and the upcall (HCR_EL2.VI) and returns to the spinning vCPU, which takes
//! the virtual IRQ in the SDK's IRQ vector; `events::dispatch` runs the
//! handler, then acknowledges with `evtchn_op upcall_done`.
//!
//! Spinning, not waiting: a WFI is trapped and turned into a yield at EL2,
//! and `sched_op block` would add a vCPU switch (or the idle loop) to the
//! path measured here.
//!
//! Two phases of `n` events each, every event its own region:
//! - `set_timer`: the region holds the `set_timer` hypercall alone;
//! - `irq`: the region opens after `set_timer` returned and closes as the
//!   handler's first act: the spin, the EL2 interrupt (timer IRQ to `eret`)
//!   and the guest's IRQ vector up to the handler. Its EL2 instructions are
//!   the interrupt-to-handler path alone; the `upcall_done` after the
//!   handler is not counted.
//!
//! "set timer to handler ran" is the sum of the two.
//!
//! Between `set_timer` and the region the guest yields once (with nothing
//! else runnable the hypervisor picks it again): the hypervisor programs its
//! EL2 timer only when it schedules, and `set_timer` does not reprogram it, so
//! without the yield the interrupt comes at the end of the time slice (10 ms)
//! or, when the slice is unbounded, never. The yield is outside every region.
//!
//! `phases=irq` runs the second phase alone (scripts/bench.sh --profile
//! profiles the interrupt path with it). Prints `bench-virq: iterations=<n>
//! delta_ns=<d> phases=<p>` before and `bench-virq: done, <e> early, <l>
//! lost` after: `e` events whose interrupt came before their region opened
//! (`delta_ns` too short), `l` events whose handler had not run
//! [`GIVE_UP_MS`] after the deadline (then the guest stops waiting, so a
//! lost interrupt fails the benchmark instead of hanging it).
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::sync::atomic::{AtomicU64, Ordering};

use bench_guests::{region_start, region_stop};
use pv_guest_sdk::abi::time::ns_to_ticks;
use pv_guest_sdk::events::{self, Port, Virq};
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(bench_virq);

/// Events per phase when the command line does not say.
const DEFAULT_ITERS: u64 = 1000;
/// How far ahead the timer is armed when the command line does not say:
/// far more than `set_timer` and the yield take, so the interrupt always
/// comes while the guest spins inside its region.
const DEFAULT_DELTA_NS: u64 = 20_000;
/// How long after its deadline an interrupt counts as lost.
const GIVE_UP_MS: u64 = 100;

/// Timer events handled.
static FIRED: AtomicU64 = AtomicU64::new(0);

fn on_timer(_: Port) {
    region_stop();
    FIRED.fetch_add(1, Ordering::AcqRel);
}

fn bench_virq(si: &StartInfo) {
    let cmdline = si.cmdline();
    let iters = cmdline.get_u64("iters").unwrap_or(DEFAULT_ITERS);
    let delta = cmdline.get_u64("delta_ns").unwrap_or(DEFAULT_DELTA_NS);
    let set_timer_phase = cmdline.get("phases") != Some("irq");
    if let Err(e) = events::init() {
        println!("bench-virq: FAIL events init: {e}");
        return;
    }
    if !events::upcalls_live() {
        println!("bench-virq: FAIL the hypervisor delivers no event upcalls");
        return;
    }
    match events::bind_virq(Virq::Timer, 0) {
        Ok(p) => events::on(p, on_timer),
        Err(e) => {
            println!("bench-virq: FAIL bind_virq timer: {e}");
            return;
        }
    }
    pv_guest_sdk::enable_irqs();
    let phases = if set_timer_phase {
        "set_timer,irq"
    } else {
        "irq"
    };
    bench_guests::enable_cycles(si.cmdline().get_u64("pmu") == Some(1));
    println!("bench-virq: iterations={iters} delta_ns={delta} phases={phases}");
    let mut tally = Tally::default();
    // One unmeasured event, so the measured ones start warm.
    event(delta, Phase::Warmup, &mut tally);
    if set_timer_phase {
        for _ in 0..iters {
            event(delta, Phase::SetTimer, &mut tally);
        }
        if let Some(c) = bench_guests::cycles_report(iters) {
            println!("bench-virq: set-timer {c}");
        }
    }
    for _ in 0..iters {
        event(delta, Phase::Irq, &mut tally);
    }
    if let Some(c) = bench_guests::cycles_report(iters) {
        println!("bench-virq: irq {c}");
    }
    println!(
        "bench-virq: done, {} early, {} lost",
        tally.early, tally.lost
    );
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    SetTimer,
    Irq,
}

/// Events that spoil the count.
#[derive(Default)]
struct Tally {
    early: u64,
    lost: u64,
}

/// Arms the timer `delta` ns ahead and spins until the handler has run,
/// with the region where `phase` says.
fn event(delta: u64, phase: Phase, tally: &mut Tally) {
    let before = FIRED.load(Ordering::Acquire);
    let fired = || FIRED.load(Ordering::Acquire) != before;
    let deadline = Deadline::after_ns(delta);
    if phase == Phase::SetTimer {
        region_start();
    }
    time::set_timer(deadline.0);
    if phase == Phase::SetTimer {
        region_stop();
    }
    // See the module documentation: makes the hypervisor program its timer.
    pv_guest_sdk::yield_now();
    if fired() {
        tally.early += u64::from(phase == Phase::Irq);
    } else if phase == Phase::Irq {
        region_start();
    }
    let patience = ns_to_ticks(GIVE_UP_MS * 1_000_000, time::frequency());
    let give_up = Deadline(deadline.0.saturating_add(patience));
    while !fired() {
        if give_up.passed() {
            tally.lost += 1;
            // Closes the region, if open, without a handler.
            region_stop();
            time::set_timer(0);
            return;
        }
        core::hint::spin_loop();
    }
}
