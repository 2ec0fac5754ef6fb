//! Host tests of `sched_op send_wait`: a port handed to a waiting vCPU in
//! `x1` instead of through its event page, and every case that must fall
//! back to the page.

use tern_abi::Error;
use tern_abi::call::SCHED_OP;
use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{EventPage, Op as EvOp};
use tern_abi::sched::Op as SchedOp;
use zerocopy::IntoBytes;

use super::Next;
use super::tests_events::{EV_PAGE, Hv, U1, U2, call_on, ev, guest_word, hyp, init, put, result};
use crate::domain::VcpuState;

fn send_wait(hv: &mut Hv, who: u32, vcpu: usize, port: u64) -> ([u64; 4], Next) {
    call_on(
        hv,
        who,
        vcpu,
        &[SCHED_OP.into(), SchedOp::SendWait.raw().into(), port],
    )
}

/// `x1` of `vcpu` of `who` as its context holds it (where a blocked vCPU's
/// registers are).
fn ctx_x1(hv: &Hv, who: u32, vcpu: usize) -> u64 {
    hv.domains.get(DomainId(who)).unwrap().vcpus[vcpu].ctx.gp.x[1]
}

fn state(hv: &Hv, who: u32, vcpu: usize) -> VcpuState {
    hv.domains.get(DomainId(who)).unwrap().vcpus[vcpu].state
}

/// The guest's words of vCPU 0 and port word 0: pending, selector, upcall.
fn page(hv: &Hv, who: u32) -> [u64; 3] {
    [
        guest_word(hv, who, EV_PAGE + EventPage::pending_offset(0)),
        guest_word(hv, who, EV_PAGE + EventPage::pending_sel_offset(0)),
        guest_word(hv, who, EV_PAGE + EventPage::upcall_pending_offset(0)),
    ]
}

/// What a guest does with what the page showed: clears it all.
fn consume(hv: &Hv, who: u32) {
    for off in [
        EventPage::pending_offset(0),
        EventPage::pending_sel_offset(0),
        EventPage::upcall_pending_offset(0),
    ] {
        put(hv, who, EV_PAGE + off, 0u64.as_bytes());
    }
}

/// U1 and U2 initialised and connected: (U1's port, U2's port).
fn pair(hv: &mut Hv) -> (u64, u64) {
    init(hv, U1);
    init(hv, U2);
    let [p1, ..] = ev(hv, U1, EvOp::AllocUnbound, &[U2.into()]).unwrap();
    let [p2, ..] = ev(hv, U2, EvOp::BindInterdomain, &[U1.into(), p1]).unwrap();
    (p1, p2)
}

#[test]
fn a_waiting_vcpu_takes_the_answer_in_x1() {
    let mut hv = hyp();
    let (p1, p2) = pair(&mut hv);
    // U2 sends (through U1's page: U1 does not wait) and blocks.
    assert_eq!(send_wait(&mut hv, U2, 0, p2), ([0; 4], Next::Block));
    assert_eq!(page(&hv, U1), [1 << p1, 1, 1]);
    assert!(hv.events.waits_direct(DomainId(U2), 0));
    // U1 handles its event, answers and blocks in turn: U2 wakes with the
    // port in x1 and nothing in its page.
    consume(&hv, U1);
    assert_eq!(send_wait(&mut hv, U1, 0, p1), ([0; 4], Next::Block));
    assert_eq!(state(&hv, U2, 0), VcpuState::Runnable);
    assert_eq!(ctx_x1(&hv, U2, 0), p2);
    assert_eq!(page(&hv, U2), [0; 3]);
    assert!(!hv.events.waits_direct(DomainId(U2), 0));
    // And back: U1 wakes the same way.
    assert_eq!(send_wait(&mut hv, U2, 0, p2), ([0; 4], Next::Block));
    assert_eq!(state(&hv, U1, 0), VcpuState::Runnable);
    assert_eq!(ctx_x1(&hv, U1, 0), p1);
    assert_eq!(page(&hv, U1), [0; 3]);
    // A failed send neither blocks nor leaves a wait behind.
    let (r, next) = send_wait(&mut hv, U1, 0, 99);
    assert_eq!((result(r), next), (Err(Error::NotFound), Next::Resume));
    assert!(!hv.events.waits_direct(DomainId(U1), 0));
}

#[test]
fn a_call_that_does_not_block_leaves_no_wait() {
    let mut hv = hyp();
    let (p1, p2) = pair(&mut hv);
    // U1's own upcall is pending: it sends and returns at once, x1 = 0.
    ev(&mut hv, U2, EvOp::Send, &[p2]).unwrap();
    assert_eq!(send_wait(&mut hv, U1, 0, p1), ([0; 4], Next::Resume));
    assert!(!hv.events.waits_direct(DomainId(U1), 0));
    // So a later send to it goes through its page (the bit is still
    // pending from before: nothing changes, nothing is handed over).
    consume(&hv, U1);
    ev(&mut hv, U2, EvOp::Send, &[p2]).unwrap();
    assert_eq!(page(&hv, U1), [1 << p1, 1, 1]);
    assert_eq!(ctx_x1(&hv, U1, 0), 0);
}

#[test]
fn masked_or_pending_ports_and_pollers_go_through_the_page() {
    let mut hv = hyp();
    let (p1, p2) = pair(&mut hv);
    // Masked: pending in the page, no upcall, U2 stays blocked and waiting.
    assert_eq!(send_wait(&mut hv, U2, 0, p2), ([0; 4], Next::Block));
    put(
        &hv,
        U2,
        EV_PAGE + EventPage::mask_offset(0),
        (1u64 << p2).as_bytes(),
    );
    ev(&mut hv, U1, EvOp::Send, &[p1]).unwrap();
    assert_eq!(page(&hv, U2), [1 << p2, 0, 0]);
    assert_eq!(state(&hv, U2, 0), VcpuState::Blocked);
    assert_eq!(ctx_x1(&hv, U2, 0), 0);
    assert!(hv.events.waits_direct(DomainId(U2), 0));
    // Unmasked but still pending (the guest has not handled it): the send
    // changes nothing and hands nothing over.
    put(
        &hv,
        U2,
        EV_PAGE + EventPage::mask_offset(0),
        0u64.as_bytes(),
    );
    ev(&mut hv, U1, EvOp::Send, &[p1]).unwrap();
    assert_eq!(page(&hv, U2), [1 << p2, 0, 0]);
    assert_eq!(ctx_x1(&hv, U2, 0), 0);
    // Somebody polls: the page, and the upcall wakes U2, ending its wait.
    consume(&hv, U2);
    let [ipi, ..] = ev(&mut hv, U2, EvOp::BindIpi, &[1]).unwrap();
    put(&hv, U2, 0x4010_0000, (ipi as u32).as_bytes());
    let poll = [
        SCHED_OP.into(),
        SchedOp::Poll.raw().into(),
        0x4010_0000,
        1,
        0,
    ];
    assert_eq!(call_on(&mut hv, U2, 1, &poll), ([0; 4], Next::Block));
    ev(&mut hv, U1, EvOp::Send, &[p1]).unwrap();
    assert_eq!(page(&hv, U2), [1 << p2, 1, 1]);
    assert_eq!(state(&hv, U2, 0), VcpuState::Runnable);
    assert_eq!(ctx_x1(&hv, U2, 0), 0);
    assert!(!hv.events.waits_direct(DomainId(U2), 0), "woken otherwise");
}

#[test]
fn a_vcpu_still_on_its_cpu_gets_the_port_through_the_page() {
    let mut hv = hyp();
    init(&mut hv, U1);
    // An IPI port of U1's vCPU 0, which sends to itself from its CPU: the
    // port cannot go into registers that are live on a CPU, so it ends
    // pending and the vCPU runnable.
    let [ipi, ..] = ev(&mut hv, U1, EvOp::BindIpi, &[0]).unwrap();
    hv.domains.get_mut(DomainId(U1)).unwrap().vcpus[0].on_cpu = Some(0);
    let (r, _) = send_wait(&mut hv, U1, 0, ipi);
    assert_eq!(r, [0; 4]);
    // What the trap does last: the queued notifications.
    hv.apply_notifies();
    assert_eq!(page(&hv, U1), [1 << ipi, 1, 1]);
    assert_eq!(state(&hv, U1, 0), VcpuState::Runnable);
    assert_eq!(ctx_x1(&hv, U1, 0), 0);
    assert!(!hv.events.waits_direct(DomainId(U1), 0));
}
