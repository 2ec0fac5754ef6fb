//! Host tests of the timer-interrupt fast path (`Events::fire_loaded_timer`)
//! and its per-CPU slots: it must leave the event state as `fire_due` would,
//! minus the notification of the running vCPU itself, and must refuse every
//! other case unchanged.

use std::vec;

use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{EventPage, Port, Virq};

use super::*;
use crate::addr::PAGE_SIZE;
use crate::physmem::testing::Arena;

const BASE: u64 = 0x8000_0000;
const A: DomainId = DomainId(1);
const B: DomainId = DomainId(2);

fn setup() -> (Arena, Events) {
    let mem = Arena::new(BASE, 4);
    mem.zero(PhysAddr(BASE), 4 * PAGE_SIZE);
    let mut ev = Events::new();
    for d in [A, B] {
        ev.init_shared(d, page(d)).unwrap();
    }
    (mem, ev)
}

fn page(d: DomainId) -> PhysAddr {
    PhysAddr(BASE + u64::from(d.0) * PAGE_SIZE)
}

/// Fires CPU `cpu`'s slot after loading `(dom, vcpu)` on it (as the arch
/// layer does when it runs the vCPU).
fn fire(ev: &mut Events, mem: &Arena, now: u64, dom: DomainId, vcpu: usize) -> Option<Fired> {
    let cpu = cpu_of(dom, vcpu);
    if ev.slots[cpu].key != timers::pack((dom, vcpu, timers::TimerKind::Guest)) {
        load(ev, cpu, dom, vcpu);
    }
    ev.fire_loaded_timer(mem, now, cpu)
}

/// Loads `(dom, vcpu)` on `cpu` and refreshes its slot, as the first
/// generic timer interrupt after the load does.
fn load(ev: &mut Events, cpu: usize, dom: DomainId, vcpu: usize) {
    ev.load_slot(cpu, dom, vcpu);
    assert_eq!(ev.fire_loaded_timer(&Arena::new(BASE, 1), 0, cpu), None);
    ev.refresh_slot(cpu);
}

fn pending(mem: &dyn PhysMem, d: DomainId, p: Port) -> bool {
    let at = PhysAddr(page(d).0 + EventPage::pending_offset(p.word()));
    mem.load_u64(at) & p.bit() != 0
}

#[test]
fn running_timer_fires_without_a_notification() {
    let (mem, mut ev) = setup();
    let t = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    ev.set_timer(A, 0, 100);
    ev.set_timer(B, 0, 300);
    assert_eq!(fire(&mut ev, &mem, 99, A, 0), None, "not due yet");
    assert!(!pending(&mem, A, t));
    assert_eq!(
        fire(&mut ev, &mem, 150, A, 0),
        Some(Fired {
            upcall: true,
            next: 300
        }),
        "the earliest deadline left is answered"
    );
    assert!(pending(&mem, A, t));
    assert!(ev.upcall_pending(&mem, A, 0), "the caller raises the line");
    assert!(!ev.has_notifies(), "the running vCPU needs no wake-up");
    assert!(ev.take_timer_fired(A, 0), "block must not sleep past it");
    assert_eq!(ev.timer(A, 0), None);
    assert_eq!(ev.next_deadline(), Some(300), "other timers stay armed");
}

#[test]
fn refuses_other_cases_unchanged() {
    let (mem, mut ev) = setup();
    ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    ev.set_timer(A, 0, 100);
    ev.set_timer(B, 0, 120);
    // Two deadlines due: the generic path must fire both, in order.
    assert_eq!(fire(&mut ev, &mem, 200, A, 0), None);
    assert_eq!(ev.timer(A, 0), Some(100));
    assert_eq!(ev.timer(B, 0), Some(120));
    // The due deadline belongs to another vCPU.
    assert_eq!(fire(&mut ev, &mem, 110, A, 1), None);
    assert_eq!(fire(&mut ev, &mem, 110, B, 0), None);
    assert_eq!(ev.next_deadline(), Some(100));
    assert!(!ev.has_notifies());
    // With no port bound the generic path ends the timer (block returns),
    // silently.
    ev.set_timer(A, 0, 0);
    assert_eq!(fire(&mut ev, &mem, 130, B, 0), None, "no timer port");
    assert_eq!(ev.timer(B, 0), Some(120));
    ev.fire_due(&mem, 130);
    assert!(!ev.upcall_pending(&mem, B, 0));
    assert!(ev.take_timer_fired(B, 0));
    assert_eq!(ev.next_deadline(), None);
}

#[test]
fn a_poll_in_the_domain_takes_the_generic_path() {
    let (mem, mut ev) = setup();
    let t = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    // vCPU 1 of the same domain polls vCPU 0's timer port.
    assert_eq!(ev.poll(&mem, A, 1, vec![t], 0), Ok(true));
    ev.set_timer(A, 0, 100);
    assert_eq!(fire(&mut ev, &mem, 100, A, 0), None);
    assert!(!pending(&mem, A, t), "refused unchanged");
    assert_eq!(ev.timer(A, 0), Some(100));
    ev.fire_due(&mem, 100);
    assert!(!ev.is_polling(A, 1));
    assert_eq!(ev.take_notifies(), [Notify::new(A, 1), Notify::new(A, 0)]);
}

#[test]
fn a_masked_timer_port_stays_pending_without_an_upcall() {
    let (mem, mut ev) = setup();
    let t = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    let mask = PhysAddr(page(A).0 + EventPage::mask_offset(t.word()));
    mem.fetch_or_u64(mask, t.bit());
    ev.set_timer(A, 0, 100);
    assert_eq!(
        fire(&mut ev, &mem, 100, A, 0).map(|f| f.upcall),
        Some(false)
    );
    assert!(pending(&mem, A, t));
    assert!(!ev.upcall_pending(&mem, A, 0));
    // Unmasking delivers it then, as for any port.
    ev.unmask(&mem, A, t).unwrap();
    assert!(ev.upcall_pending(&mem, A, 0));
}

#[test]
fn the_timer_port_stays_with_its_vcpu() {
    // The fast path signals the running vCPU without looking at the port's
    // vCPU: per-vCPU virqs must not move.
    let (mem, mut ev) = setup();
    let t = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    assert!(ev.bind_vcpu(A, t, 1).is_err());
    assert_eq!(ev.status(A, t).vcpu, 0);
}

#[test]
fn timer_latches_survive_a_destroy_and_are_taken_once() {
    let (mem, mut ev) = setup();
    ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    ev.set_timer(A, 0, 100);
    ev.set_timer(B, 1, 100);
    // Both due: the generic path latches both.
    assert_eq!(fire(&mut ev, &mem, 100, A, 0), None);
    ev.fire_due(&mem, 100);
    ev.destroy_domain(A);
    assert!(!ev.take_timer_fired(A, 0), "gone with its domain");
    assert!(ev.take_timer_fired(B, 1));
    assert!(!ev.take_timer_fired(B, 1), "taken once");
    // A latch set again after the count dropped to zero is still seen.
    ev.bind_virq(&mem, B, Virq::Timer, 0).unwrap();
    ev.set_timer(B, 0, 200);
    assert_eq!(fire(&mut ev, &mem, 200, B, 0).map(|f| f.upcall), Some(true));
    assert!(ev.take_timer_fired(B, 0));
    assert!(!ev.take_timer_fired(B, 0), "taken once");
    // A fast-path latch of a destroyed domain goes with it.
    ev.set_timer(B, 0, 300);
    assert!(fire(&mut ev, &mem, 300, B, 0).is_some());
    ev.destroy_domain(B);
    assert!(!ev.take_timer_fired(B, 0));
    assert_eq!(ev.timer_latches, 0);
}

/// The CPU `fire` loads `(dom, vcpu)` on.
fn cpu_of(dom: DomainId, vcpu: usize) -> usize {
    usize::try_from(dom.0).unwrap() * 2 + vcpu
}

#[test]
fn a_closed_or_rebound_timer_port_is_not_used() {
    let (mem, mut ev) = setup();
    let t = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    ev.set_timer(A, 0, 100);
    assert!(fire(&mut ev, &mem, 100, A, 0).is_some());
    ev.close(&mem, A, t).unwrap();
    ev.set_timer(A, 0, 200);
    assert_eq!(fire(&mut ev, &mem, 200, A, 0), None, "closed: refused");
    ev.refresh_slot(cpu_of(A, 0));
    assert_eq!(fire(&mut ev, &mem, 200, A, 0), None, "still no port");
    // Bound again (another port first, so the timer gets a new number).
    let other = ev.bind_ipi(&mem, A, 0).unwrap();
    let t2 = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    assert_ne!(t2, t);
    assert_eq!(fire(&mut ev, &mem, 200, A, 0), None, "not refreshed yet");
    ev.refresh_slot(cpu_of(A, 0));
    assert!(fire(&mut ev, &mem, 200, A, 0).is_some());
    assert!(pending(&mem, A, t2));
    assert!(!pending(&mem, A, other) && !pending(&mem, A, t));
}

#[test]
fn a_slot_loaded_before_the_page_waits_for_it() {
    let mem = Arena::new(BASE, 4);
    mem.zero(PhysAddr(BASE), 4 * PAGE_SIZE);
    let mut ev = Events::new();
    ev.set_counter_offset(A, 0);
    load(&mut ev, cpu_of(A, 0), A, 0);
    ev.set_timer(A, 0, 100);
    assert_eq!(ev.fire_loaded_timer(&mem, 100, cpu_of(A, 0)), None);
    ev.init_shared(A, page(A)).unwrap();
    let t = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    ev.refresh_slot(cpu_of(A, 0));
    assert!(ev.fire_loaded_timer(&mem, 100, cpu_of(A, 0)).is_some());
    assert!(pending(&mem, A, t));
}

#[test]
fn a_poll_makes_the_slot_refuse_until_refreshed() {
    let (mem, mut ev) = setup();
    let t = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    let ipi = ev.bind_ipi(&mem, A, 1).unwrap();
    load(&mut ev, cpu_of(A, 0), A, 0);
    // vCPU 1 polls after vCPU 0's slot was made ready.
    assert_eq!(ev.poll(&mem, A, 1, vec![ipi], 0), Ok(true));
    ev.set_timer(A, 0, 100);
    assert_eq!(fire(&mut ev, &mem, 100, A, 0), None);
    ev.refresh_slot(cpu_of(A, 0));
    assert_eq!(fire(&mut ev, &mem, 100, A, 0), None, "still polling");
    ev.end_poll(A, 1);
    ev.refresh_slot(cpu_of(A, 0));
    assert!(fire(&mut ev, &mem, 100, A, 0).is_some());
    assert!(pending(&mem, A, t));
}

#[test]
fn a_destroyed_domain_has_no_slot() {
    let (mem, mut ev) = setup();
    ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    load(&mut ev, cpu_of(A, 0), A, 0);
    ev.destroy_domain(A);
    ev.refresh_slot(cpu_of(A, 0));
    ev.set_timer(A, 0, 100);
    assert_eq!(ev.fire_loaded_timer(&mem, 100, cpu_of(A, 0)), None);
}

#[test]
fn two_vcpus_of_a_domain_on_two_cpus() {
    let (mem, mut ev) = setup();
    let t0 = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    let t1 = ev.bind_virq(&mem, A, Virq::Timer, 1).unwrap();
    load(&mut ev, cpu_of(A, 0), A, 0);
    load(&mut ev, cpu_of(A, 1), A, 1);
    ev.set_timer(A, 0, 200);
    ev.set_timer(A, 1, 100);
    // vCPU 0's CPU cannot fire vCPU 1's timer.
    assert_eq!(ev.fire_loaded_timer(&mem, 100, cpu_of(A, 0)), None);
    assert_eq!(
        ev.fire_loaded_timer(&mem, 100, cpu_of(A, 1)),
        Some(Fired {
            upcall: true,
            next: 200
        })
    );
    assert!(pending(&mem, A, t1) && !pending(&mem, A, t0));
    assert!(ev.upcall_pending(&mem, A, 1) && !ev.upcall_pending(&mem, A, 0));
    assert!(!ev.take_timer_fired(A, 0));
    // Unloaded, the latch goes to the domain, and is taken once.
    ev.unload_slot(cpu_of(A, 1));
    assert!(ev.take_timer_fired(A, 1));
    assert!(!ev.take_timer_fired(A, 1));
    assert_eq!(
        ev.fire_loaded_timer(&mem, 200, cpu_of(A, 1)),
        None,
        "unloaded"
    );
    assert!(ev.fire_loaded_timer(&mem, 200, cpu_of(A, 0)).is_some());
    assert!(ev.take_timer_fired(A, 0));
    assert_eq!(ev.timer_latches, 0);
}

#[test]
fn a_fast_latch_and_a_generic_latch_are_one() {
    let (mem, mut ev) = setup();
    ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    ev.set_timer(A, 0, 100);
    assert!(fire(&mut ev, &mem, 100, A, 0).is_some());
    ev.set_timer(A, 0, 200);
    ev.set_timer(B, 0, 200);
    ev.fire_due(&mem, 200);
    assert!(ev.take_timer_fired(A, 0));
    assert!(!ev.take_timer_fired(A, 0), "taken once");
    // Both set again, then merged on unload.
    ev.set_timer(A, 0, 300);
    assert!(fire(&mut ev, &mem, 300, A, 0).is_some());
    ev.set_timer(A, 0, 400);
    ev.fire_due(&mem, 400);
    ev.unload_slot(cpu_of(A, 0));
    assert!(ev.take_timer_fired(A, 0));
    assert!(ev.take_timer_fired(B, 0));
    assert_eq!(ev.timer_latches, 0);
}

#[test]
fn a_loaded_slot_waits_for_a_refresh() {
    let (mem, mut ev) = setup();
    let t = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    ev.load_slot(cpu_of(A, 0), A, 0);
    ev.set_timer(A, 0, 100);
    assert_eq!(ev.fire_loaded_timer(&mem, 100, cpu_of(A, 0)), None);
    assert!(!pending(&mem, A, t));
    ev.refresh_slot(cpu_of(A, 0));
    assert!(ev.fire_loaded_timer(&mem, 100, cpu_of(A, 0)).is_some());
    assert!(pending(&mem, A, t));
}

#[test]
fn an_unloaded_slot_refuses_and_a_reload_keeps_it() {
    let (mem, mut ev) = setup();
    ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    ev.bind_virq(&mem, B, Virq::Timer, 0).unwrap();
    let cpu = cpu_of(A, 0);
    load(&mut ev, cpu, A, 0);
    ev.set_timer(A, 0, 100);
    ev.unload_slot(cpu);
    assert_eq!(ev.fire_loaded_timer(&mem, 100, cpu), None, "not loaded");
    // The same vCPU back (a yield): ready at once.
    ev.load_slot(cpu, A, 0);
    assert!(ev.fire_loaded_timer(&mem, 100, cpu).is_some());
    // Another vCPU on the CPU: not ready until refreshed, and the first
    // one's latch is still taken once.
    ev.unload_slot(cpu);
    ev.load_slot(cpu, B, 0);
    ev.set_timer(B, 0, 200);
    assert_eq!(ev.fire_loaded_timer(&mem, 200, cpu), None);
    assert!(ev.take_timer_fired(A, 0));
    assert!(!ev.take_timer_fired(A, 0));
    ev.refresh_slot(cpu);
    assert!(ev.fire_loaded_timer(&mem, 200, cpu).is_some());
    assert!(ev.take_timer_fired(B, 0));
    assert_eq!(ev.timer_latches, 0);
}
