//! Host tests of `sched_op send_block`: a send and a block in one call,
//! and the hand-off of the caller's CPU to the vCPU it woke.

use std::vec::Vec;

use tern_abi::Error;
use tern_abi::call::SCHED_OP;
use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{EventPage, Op as EvOp};
use tern_abi::sched::Op as SchedOp;

use super::Next;
use super::tests_events::{EV_PAGE, Hv, U1, U2, call_on, ev, guest_word, hyp, init, result};
use crate::domain::VcpuState;

#[test]
fn send_block_sends_then_blocks() {
    let mut hv = hyp();
    init(&mut hv, U1);
    init(&mut hv, U2);
    let [p1, ..] = ev(&mut hv, U1, EvOp::AllocUnbound, &[U2.into()]).unwrap();
    let [p2, ..] = ev(&mut hv, U2, EvOp::BindInterdomain, &[U1.into(), p1]).unwrap();
    let send_block = |port: u64| -> Vec<u64> {
        std::vec![SCHED_OP.into(), SchedOp::SendBlock.raw().into(), port]
    };
    let state = |hv: &Hv, who: u32| hv.domains.get(DomainId(who)).unwrap().vcpus[0].state;
    let calls = |hv: &Hv, who: u32| hv.domains.get(DomainId(who)).unwrap().hypercalls;
    let block = [SCHED_OP.into(), SchedOp::Block.raw().into()];
    assert_eq!(call_on(&mut hv, U2, 0, &block).1, Next::Block);
    // A failed send neither blocks nor changes anything; it is counted.
    let before = calls(&hv, U1);
    for (port, e) in [(4096, Error::InvalidArgument), (99, Error::NotFound)] {
        let (r, next) = call_on(&mut hv, U1, 0, &send_block(port));
        assert_eq!((result(r), next), (Err(e), Next::Resume));
        assert_ne!(state(&hv, U1), VcpuState::Blocked);
    }
    assert_eq!(calls(&hv, U1), before + 2);
    // The send wakes U2, then U1 blocks: one call.
    assert_eq!(
        call_on(&mut hv, U1, 0, &send_block(p1)),
        ([0; 4], Next::Block)
    );
    assert_eq!(calls(&hv, U1), before + 3);
    assert_eq!(state(&hv, U1), VcpuState::Blocked);
    assert_eq!(state(&hv, U2), VcpuState::Runnable);
    assert_eq!(
        guest_word(&hv, U2, EV_PAGE + EventPage::pending_offset(0)),
        1 << p2
    );
    // U2's own upcall is still pending (not consumed): its answer is sent
    // and the block returns at once, as `block` would.
    assert_eq!(
        call_on(&mut hv, U2, 0, &send_block(p2)),
        ([0; 4], Next::Resume)
    );
    assert_ne!(state(&hv, U2), VcpuState::Blocked);
    assert_eq!(state(&hv, U1), VcpuState::Runnable, "woken by the answer");
    assert_eq!(
        guest_word(&hv, U1, EV_PAGE + EventPage::upcall_pending_offset(0)),
        1
    );
}

#[test]
fn send_block_hands_the_cpu_to_the_vcpu_it_woke() {
    let mut hv = hyp();
    init(&mut hv, U1);
    init(&mut hv, U2);
    let [p1, ..] = ev(&mut hv, U1, EvOp::AllocUnbound, &[U2.into()]).unwrap();
    let [p2, ..] = ev(&mut hv, U2, EvOp::BindInterdomain, &[U1.into(), p1]).unwrap();
    // U1's vCPU 0 runs on CPU 0; U2's is blocked.
    for (who, state) in [(U1, VcpuState::Runnable), (U2, VcpuState::Blocked)] {
        hv.domains.get_mut(DomainId(who)).unwrap().vcpus[0].state = state;
        hv.unpause_domain(DomainId(who));
    }
    let (u1, u2) = ((DomainId(U1), 0), (DomainId(U2), 0));
    let cpu0 = crate::percpu::CpuIndex(0);
    assert_eq!(hv.sched.schedule(cpu0, 0, None).next, Some(u1));
    let mut x = [0u64; 31];
    let mut send_block = |hv: &mut Hv, who: u32, port: u64| {
        x[..3].copy_from_slice(&[SCHED_OP.into(), SchedOp::SendBlock.raw().into(), port]);
        let next = hv.guest_hypercall(DomainId(who), 0, &mut x);
        (x[0], next, hv.handed.take())
    };
    let (r, next, handed) = send_block(&mut hv, U1, p1);
    assert_eq!((r, next), (0, Next::Block));
    let (cpu, d) = handed.expect("U2 was blocked and nothing else waits");
    assert_eq!((cpu, d.next), (cpu0, Some(u2)));
    assert_eq!(hv.sched.current(cpu0), Some(u2));
    assert_eq!(
        hv.domains.get(DomainId(U2)).unwrap().vcpus[0].state,
        VcpuState::Runnable
    );
    // U2 has not taken its event yet: its send_block sends and returns at
    // once, and U1 is woken the general way (queued), nothing handed.
    let (r, next, handed) = send_block(&mut hv, U2, p2);
    assert_eq!((r, next, handed), (0, Next::Resume, None));
    assert_eq!(
        hv.domains.get(DomainId(U1)).unwrap().vcpus[0].state,
        VcpuState::Runnable
    );
    // A bad port: an error, no block, nothing handed.
    let (r, next, handed) = send_block(&mut hv, U2, 99);
    assert_eq!(
        (r, next, handed),
        (Error::NotFound.to_reg(), Next::Resume, None)
    );
}
