//! Host tests of the timer-interrupt fast path (`Events::fire_running_timer`):
//! it must leave the event state as `fire_due` would, minus the notification
//! of the running vCPU itself, and must refuse every other case unchanged.

use std::vec;

use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{EventPage, Port, Virq};

use super::deliver::Fired;
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
    assert_eq!(ev.fire_running_timer(&mem, 99, A, 0), None, "not due yet");
    assert!(!pending(&mem, A, t));
    assert_eq!(
        ev.fire_running_timer(&mem, 150, A, 0),
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
    assert_eq!(ev.fire_running_timer(&mem, 200, A, 0), None);
    assert_eq!(ev.timer(A, 0), Some(100));
    assert_eq!(ev.timer(B, 0), Some(120));
    // The due deadline belongs to another vCPU.
    assert_eq!(ev.fire_running_timer(&mem, 110, A, 1), None);
    assert_eq!(ev.fire_running_timer(&mem, 110, B, 0), None);
    assert_eq!(ev.next_deadline(), Some(100));
    assert!(!ev.has_notifies());
    // With no port bound the timer still ends (block returns), silently.
    ev.set_timer(A, 0, 0);
    assert_eq!(
        ev.fire_running_timer(&mem, 130, B, 0).map(|f| f.upcall),
        Some(false)
    );
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
    assert_eq!(ev.fire_running_timer(&mem, 100, A, 0), None);
    assert!(!pending(&mem, A, t), "refused unchanged");
    assert_eq!(ev.timer(A, 0), Some(100));
    ev.fire_due(&mem, 100);
    assert!(!ev.is_polling(A, 1));
    assert_eq!(
        ev.take_notifies(),
        [Notify { dom: A, vcpu: 1 }, Notify { dom: A, vcpu: 0 }]
    );
}

#[test]
fn a_masked_timer_port_stays_pending_without_an_upcall() {
    let (mem, mut ev) = setup();
    let t = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    let mask = PhysAddr(page(A).0 + EventPage::mask_offset(t.word()));
    mem.fetch_or_u64(mask, t.bit());
    ev.set_timer(A, 0, 100);
    assert_eq!(
        ev.fire_running_timer(&mem, 100, A, 0).map(|f| f.upcall),
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
    assert_eq!(ev.fire_running_timer(&mem, 100, A, 0), None);
    ev.fire_due(&mem, 100);
    ev.destroy_domain(A);
    assert!(!ev.take_timer_fired(A, 0), "gone with its domain");
    assert!(ev.take_timer_fired(B, 1));
    assert!(!ev.take_timer_fired(B, 1), "taken once");
    // A latch set again after the count dropped to zero is still seen.
    ev.set_timer(B, 0, 200);
    assert_eq!(
        ev.fire_running_timer(&mem, 200, B, 0).map(|f| f.upcall),
        Some(false)
    );
    assert!(ev.take_timer_fired(B, 0));
}
