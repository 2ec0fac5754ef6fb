//! Host tests of the per-domain counters `domctl get_info` and `list`
//! report: hypercalls that reached the dispatcher and events sent.

use tern_abi::call::DOMCTL;
use tern_abi::domctl::{DomainId, DomainInfo, Op as DomOp};
use tern_abi::evtchn::Op as EvOp;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use super::tests_events::{DOM0, Hv, U1, call_on, ev, hyp, init};
use crate::addr::GuestPhysAddr;

const U2: u32 = 2;
/// Where dom0 receives `DomainInfo`s, in its RAM.
const OUT: u64 = 0x4010_0000;

fn fill(hv: &Hv, byte: u8, len: usize) {
    let ram = &hv.domains.get(DomainId(DOM0)).unwrap().ram;
    ram.write(hv.mem, GuestPhysAddr(OUT), &std::vec![byte; len])
        .unwrap();
}

fn read(hv: &Hv, len: usize) -> std::vec::Vec<u8> {
    let mut b = std::vec![0u8; len];
    let ram = &hv.domains.get(DomainId(DOM0)).unwrap().ram;
    ram.read(hv.mem, GuestPhysAddr(OUT), &mut b).unwrap();
    b
}

/// `get_info` of `who` with a `size`-byte buffer, by dom0.
fn info(hv: &mut Hv, who: u32, size: u64) -> DomainInfo {
    let op = u64::from(DomOp::GetInfo.raw());
    let (r, _) = call_on(hv, DOM0, 0, &[DOMCTL.into(), op, who.into(), OUT, size]);
    assert_eq!(r[0], 0);
    let mut out = DomainInfo::new_zeroed();
    let n = (size as usize).min(size_of::<DomainInfo>());
    out.as_mut_bytes()[..n].copy_from_slice(&read(hv, n));
    out
}

#[test]
fn hypercalls_and_sent_events_are_counted_per_domain() {
    let mut hv = hyp();
    init(&mut hv, U1);
    init(&mut hv, U2);
    let [p1, ..] = ev(&mut hv, U1, EvOp::AllocUnbound, &[U2.into()]).unwrap();
    let [p2, ..] = ev(&mut hv, U2, EvOp::BindInterdomain, &[U1.into(), p1]).unwrap();
    ev(&mut hv, U2, EvOp::Send, &[p2]).unwrap();
    ev(&mut hv, U2, EvOp::Send, &[p2]).unwrap();
    // A failed send is a hypercall but no event.
    assert!(ev(&mut hv, U2, EvOp::Send, &[99]).is_err());
    ev(&mut hv, U1, EvOp::Send, &[p1]).unwrap();

    let u2 = info(&mut hv, U2, size_of::<DomainInfo>() as u64);
    assert_eq!((u2.hypercalls, u2.events_sent), (5, 2));
    let u1 = info(&mut hv, U1, size_of::<DomainInfo>() as u64);
    assert_eq!((u1.hypercalls, u1.events_sent), (3, 1));
    // dom0's own get_info calls count for dom0: this is its third.
    let d0 = info(&mut hv, DOM0, size_of::<DomainInfo>() as u64);
    assert_eq!((d0.hypercalls, d0.events_sent), (3, 0));
}

#[test]
fn a_control_abi_1_0_caller_gets_80_bytes_and_nothing_beyond() {
    let mut hv = hyp();
    init(&mut hv, U1);
    fill(&hv, 0xee, 96);
    let old = info(&mut hv, U1, DomainInfo::MIN_SIZE as u64);
    assert_eq!(old.domain_id, U1);
    let bytes = read(&hv, 96);
    assert_eq!(
        &bytes[80..],
        &[0xee; 16],
        "past the caller's size untouched"
    );
    // The new layout: the counters follow the name.
    let new = info(&mut hv, U1, 96);
    let (whole, _) = DomainInfo::read_from_prefix(&read(&hv, 96)).unwrap();
    assert_eq!(whole, new);
    assert_eq!(new.hypercalls, 1, "init_shared");
    assert_eq!(&read(&hv, 96)[80..88], 1u64.as_bytes());
}

#[test]
fn the_round_trip_calls_are_counted_and_a_caller_that_may_not_run_yields() {
    use tern_abi::call::{EVTCHN_OP, SCHED_OP};
    use tern_abi::sched::Op as SchedOp;

    use super::Next;
    let mut hv = hyp();
    init(&mut hv, U1);
    init(&mut hv, U2);
    let [p1, ..] = ev(&mut hv, U1, EvOp::AllocUnbound, &[U2.into()]).unwrap();
    let [p2, ..] = ev(&mut hv, U2, EvOp::BindInterdomain, &[U1.into(), p1]).unwrap();
    let before = info(&mut hv, U2, size_of::<DomainInfo>() as u64).hypercalls;
    let send = |hv: &mut Hv| {
        let mut x = [0u64; 31];
        x[..3].copy_from_slice(&[EVTCHN_OP.into(), EvOp::Send.raw().into(), p2]);
        x[3] = 7;
        let next = hv.guest_hypercall(DomainId(U2), 0, &mut x);
        assert_eq!(x[..4], [0; 4], "success, no results");
        next
    };
    // Created, not unpaused: the send completes, the vCPU does not run on.
    assert_eq!(send(&mut hv), Next::Yield);
    // Given an entry state (as the loader does) and unpaused, it runs on.
    hv.domains.get_mut(DomainId(U2)).unwrap().vcpus[0].state = crate::domain::VcpuState::Runnable;
    hv.unpause_domain(DomainId(U2));
    assert_eq!(send(&mut hv), Next::Resume);
    let mut x = [0u64; 31];
    x[..2].copy_from_slice(&[SCHED_OP.into(), SchedOp::Block.raw().into()]);
    assert_eq!(hv.guest_hypercall(DomainId(U2), 0, &mut x), Next::Block);
    let mut x = [9u64; 31];
    x[..2].copy_from_slice(&[SCHED_OP.into(), SchedOp::Yield.raw().into()]);
    assert_eq!(hv.guest_hypercall(DomainId(U2), 0, &mut x), Next::Yield);
    assert_eq!(x[..4], [0; 4], "success, no results");
    let u2 = info(&mut hv, U2, size_of::<DomainInfo>() as u64);
    assert_eq!((u2.hypercalls - before, u2.events_sent), (4, 2));
}
