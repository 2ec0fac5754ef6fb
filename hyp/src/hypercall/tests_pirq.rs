//! Host tests of the calls that involve timers and devices across calls:
//! a guest timer firing between `set_timer` and `block`, and dom0's device
//! interrupts (`bind_pirq` / `pirq_eoi`). Fixtures are `tests_events`'.

use tern_abi::Error;
use tern_abi::call::{SCHED_OP, TIME_OP};
use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{Op as EvOp, PortState};
use tern_abi::sched::Op as SchedOp;
use tern_abi::time::Op as TimeOp;

use super::Next;
use super::tests_events::{DOM0, U1, call_on, ev, hyp, init};

/// A guest sleeps with two calls (`set_timer`, then `block`). If the timer
/// fires between them, the block must return at once instead of sleeping for
/// ever (the expiry found the vCPU still running: nothing else remembers it).
#[test]
fn a_timer_that_fires_before_block_is_not_lost() {
    let mut hv = hyp();
    let set = [u64::from(TIME_OP), TimeOp::SetTimer.raw().into(), 5];
    assert_eq!(call_on(&mut hv, U1, 0, &set).0[0], 0);
    hv.expire_timers(u64::MAX / 2);
    let block = [u64::from(SCHED_OP), SchedOp::Block.raw().into()];
    assert_eq!(
        call_on(&mut hv, U1, 0, &block).1,
        Next::Resume,
        "woken before blocking"
    );
    assert_eq!(
        call_on(&mut hv, U1, 0, &block).1,
        Next::Block,
        "the latch is consumed once"
    );
}

/// Physical interrupts of dom0's devices: only dom0 binds them, only those
/// interrupts, once; firing makes the port pending; `pirq_eoi` asks the arch
/// layer to deactivate it.
#[test]
fn pirqs_belong_to_dom0_and_its_devices() {
    use crate::hypervisor::PirqRequest;
    let mut hv = hyp();
    hv.dom0_irqs = std::vec![34];
    for who in [DOM0, U1] {
        init(&mut hv, who);
    }
    assert_eq!(
        ev(&mut hv, U1, EvOp::BindPirq, &[34]),
        Err(Error::PermissionDenied)
    );
    assert_eq!(
        ev(&mut hv, DOM0, EvOp::BindPirq, &[35]),
        Err(Error::InvalidArgument)
    );
    let port = ev(&mut hv, DOM0, EvOp::BindPirq, &[34]).unwrap()[0];
    assert_eq!(ev(&mut hv, DOM0, EvOp::BindPirq, &[34]), Err(Error::Exists));
    assert_eq!(hv.pirq_requests, [PirqRequest::Enable(34)]);
    let status = ev(&mut hv, DOM0, EvOp::Status, &[port]).unwrap();
    assert_eq!((status[0], status[2]), (PortState::Pirq.raw().into(), 34));
    assert!(
        !hv.events.raise_pirq(hv.mem, 35),
        "unbound interrupts raise nothing"
    );
    assert!(hv.events.raise_pirq(hv.mem, 34));
    assert!(hv.events.upcall_pending(hv.mem, DomainId(DOM0), 0));
    assert_eq!(
        ev(&mut hv, U1, EvOp::PirqEoi, &[port]),
        Err(Error::PermissionDenied)
    );
    assert_eq!(
        ev(&mut hv, DOM0, EvOp::PirqEoi, &[port + 1]),
        Err(Error::NotFound)
    );
    ev(&mut hv, DOM0, EvOp::PirqEoi, &[port]).unwrap();
    assert_eq!(
        hv.pirq_requests,
        [PirqRequest::Enable(34), PirqRequest::Eoi(34)]
    );
}
