//! timer-check: one-shot timer deadlines fire, and never before the deadline
//! asked for. With the upcall live, binds `Virq::Timer`, unmasks IRQs and
//! lets the timer interrupt a busy loop; then checks `sleep`, cancelling,
//! and the wall clock page. Prints `timer-check: PASS (<n> checks)` or
//! `timer-check: FAIL ...` lines.
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::sync::atomic::{AtomicU64, Ordering};

use pv_guest_sdk::abi::version::Features;
use pv_guest_sdk::events::{self, Port, Virq};
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::{StartInfo, println};
use test_guests::Checker;
use test_guests::events::can_run;

pv_guest_sdk::entry!(timer_check);

static FIRED: AtomicU64 = AtomicU64::new(0);
/// The counter when the handler last ran.
static FIRED_AT: AtomicU64 = AtomicU64::new(0);

fn on_timer(_: Port) {
    FIRED_AT.store(time::counter(), Ordering::Release);
    FIRED.fetch_add(1, Ordering::AcqRel);
}

fn timer_check(si: &StartInfo) {
    let mut c = Checker::new("timer-check");
    if let Err(e) = events::init() {
        c.fail(format_args!("events init: {e}"));
        c.finish();
        return;
    }
    if !can_run(si, "timer-check") {
        return;
    }
    let live = pv_guest_sdk::version().is_ok_and(|v| v.features.contains(Features::TIME));
    let freq = time::frequency();
    println!(
        "timer-check: counter {} Hz, timer virq {}",
        freq,
        if live { "live" } else { "not offered" }
    );

    // sleep never returns early.
    for ms in [1, 5, 20] {
        let start = time::counter();
        time::sleep_ms(ms);
        let took = time::counter() - start;
        let want = pv_guest_sdk::abi::time::ns_to_ticks(ms * 1_000_000, freq);
        c.check("sleep returned early", took >= want);
        println!(
            "timer-check: sleep {ms} ms took {} us",
            took * 1_000_000 / freq
        );
    }

    if live {
        match events::bind_virq(Virq::Timer, 0) {
            Ok(p) => events::on(p, on_timer),
            Err(e) => c.fail(format_args!("bind_virq timer: {e}")),
        }
        pv_guest_sdk::enable_irqs();
        // The interrupt arrives while we spin: the IRQ vector dispatches it.
        for ms in [1, 2, 10, 30] {
            let before = FIRED.load(Ordering::Acquire);
            let d = Deadline::after_ms(ms);
            time::set_timer(d.0);
            let give_up = Deadline::after_ms(ms + 2_000);
            while FIRED.load(Ordering::Acquire) == before && !give_up.passed() {
                core::hint::spin_loop();
            }
            if FIRED.load(Ordering::Acquire) == before {
                c.fail(format_args!("{ms} ms timer never fired"));
                continue;
            }
            let at = FIRED_AT.load(Ordering::Acquire);
            c.check("timer fired before its deadline", at >= d.0);
            println!(
                "timer-check: {ms} ms timer fired {} us after its deadline",
                at.saturating_sub(d.0) * 1_000_000 / freq
            );
        }
        // A cancelled timer does not fire. The deadline is far enough that
        // being preempted between the two calls (a few 10 ms slices) cannot
        // let it expire first.
        let before = FIRED.load(Ordering::Acquire);
        time::set_timer(Deadline::after_ms(200).0);
        time::set_timer(0);
        let wait = Deadline::after_ms(300);
        while !wait.passed() {
            core::hint::spin_loop();
        }
        c.expect_eq(
            "cancelled timer fired",
            FIRED.load(Ordering::Acquire),
            before,
        );
    }

    match time::init() {
        Ok(()) => println!("timer-check: wall clock {:?}", time::wallclock()),
        Err(e) => c.fail(format_args!("init_time_page: {e}")),
    }
    c.finish();
}
