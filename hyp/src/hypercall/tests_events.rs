//! Host tests of `evtchn_op`, `vcpu_op`, `time_op`, `sched_op poll`/`block`
//! and the scheduling and wall-clock sub-operations of `domctl`, through the
//! dispatcher: the registers a guest sets, the registers and state it gets.

use std::vec::Vec;

use tern_abi::call::{DOMCTL, EVTCHN_OP, SCHED_OP, TIME_OP, VCPU_OP};
use tern_abi::domctl::{DomainFlags, DomainId, Op as DomOp, VcpuEntry};
use tern_abi::evtchn::{EventPage, Op as EvOp, PortState, Virq, status_detail};
use tern_abi::sched::Op as SchedOp;
use tern_abi::time::Op as TimeOp;
use tern_abi::vcpu::Op as VcpuOp;
use tern_abi::{Error, PAGE_SIZE};
use zerocopy::IntoBytes;

use super::Next;
use crate::addr::GuestPhysAddr;
use crate::domain::{DomainConfig, VcpuState};
use crate::evtchn::Notify;
use crate::hypervisor::{ConsoleSink, Hypervisor};
use crate::physmem::testing::Arena;

struct Quiet;
impl ConsoleSink for Quiet {
    fn domain_line(&mut self, _: &str, _: &[u8]) {}
}

pub(super) type Hv = Hypervisor<'static, Arena, Arena>;

/// Event page of every domain in these tests, and a scratch area.
pub(super) const EV_PAGE: u64 = 0x4000_2000;
const SCRATCH: u64 = 0x4010_0000;
const RAM_PAGES: u64 = 512;
pub(super) const DOM0: u32 = 0;
pub(super) const U1: u32 = 1;
pub(super) const U2: u32 = 2;

/// dom0 (1 vCPU) and two domUs with 2 vCPUs each.
pub(super) fn hyp() -> Hv {
    hyp_with_cpus(1)
}

fn hyp_with_cpus(cpus: usize) -> Hv {
    let mem: &'static Arena = Box::leak(Box::new(Arena::new(0x8000_0000, 8192)));
    let console: &'static mut Quiet = Box::leak(Box::new(Quiet));
    let mut hv = Hypervisor::new(
        mem,
        Arena::new(0x8000_0000, 8192),
        Vec::new(),
        console,
        1000,
    );
    hv.configure_scheduler(cpus, 10_000).unwrap();
    for (name, vcpus, flags) in [
        (&b"dom0"[..], 1, DomainFlags::IS_DOM0),
        (b"u1", 2, DomainFlags::from_bits_retain(0)),
        (b"u2", 2, DomainFlags::from_bits_retain(0)),
    ] {
        let cfg = DomainConfig {
            name,
            pages: RAM_PAGES,
            vcpus,
            cmdline: b"",
            flags,
        };
        let id = hv.domains.create(&cfg, &mut hv.frames, hv.mem).unwrap();
        hv.domain_created(id);
    }
    hv
}

pub(super) fn call_on(hv: &mut Hv, who: u32, vcpu: usize, regs: &[u64]) -> ([u64; 4], Next) {
    let mut x = [0u64; 31];
    x[..regs.len()].copy_from_slice(regs);
    let next = hv.hypercall(DomainId(who), vcpu, &mut x);
    ([x[0], x[1], x[2], x[3]], next)
}

pub(super) fn ev(hv: &mut Hv, who: u32, op: EvOp, args: &[u64]) -> Result<[u64; 3], Error> {
    let mut regs = std::vec![EVTCHN_OP.into(), op.raw().into()];
    regs.extend_from_slice(args);
    let (r, next) = call_on(hv, who, 0, &regs);
    assert_eq!(next, Next::Resume);
    result(r)
}

pub(super) fn result(r: [u64; 4]) -> Result<[u64; 3], Error> {
    match r[0] {
        0 => Ok([r[1], r[2], r[3]]),
        e => {
            assert_eq!(r[1..], [0, 0, 0], "results are zero on failure");
            Err(Error::from_raw(e as i64).unwrap())
        }
    }
}

pub(super) fn init(hv: &mut Hv, who: u32) {
    ev(hv, who, EvOp::InitShared, &[EV_PAGE]).unwrap();
}

pub(super) fn guest_word(hv: &Hv, who: u32, ipa: u64) -> u64 {
    let mut b = [0u8; 8];
    let ram = &hv.domains.get(DomainId(who)).unwrap().ram;
    ram.read(hv.mem, GuestPhysAddr(ipa), &mut b).unwrap();
    u64::from_le_bytes(b)
}

pub(super) fn put(hv: &Hv, who: u32, ipa: u64, bytes: &[u8]) {
    let ram = &hv.domains.get(DomainId(who)).unwrap().ram;
    ram.write(hv.mem, GuestPhysAddr(ipa), bytes).unwrap();
}

#[test]
fn init_shared_checks_the_page() {
    let mut hv = hyp();
    let end = 0x4000_0000 + RAM_PAGES * PAGE_SIZE;
    for ipa in [EV_PAGE + 8, end, 0x0800_0000, !0xfff] {
        assert_eq!(
            ev(&mut hv, U1, EvOp::InitShared, &[ipa]),
            Err(Error::BadAddress),
            "{ipa:#x}"
        );
    }
    assert_eq!(
        ev(&mut hv, U1, EvOp::BindIpi, &[0]),
        Err(Error::InvalidState),
        "no page yet"
    );
    init(&mut hv, U1);
    assert_eq!(
        ev(&mut hv, U1, EvOp::InitShared, &[EV_PAGE]),
        Err(Error::Exists)
    );
}

#[test]
fn interdomain_ping_through_registers() {
    let mut hv = hyp();
    init(&mut hv, U1);
    init(&mut hv, U2);
    assert_eq!(
        ev(&mut hv, U1, EvOp::AllocUnbound, &[77]),
        Err(Error::NoSuchDomain)
    );
    assert_eq!(
        ev(&mut hv, U1, EvOp::AllocUnbound, &[1 << 33]),
        Err(Error::NoSuchDomain)
    );
    let [p1, ..] = ev(&mut hv, U1, EvOp::AllocUnbound, &[U2.into()]).unwrap();
    assert_eq!(
        ev(&mut hv, U2, EvOp::BindInterdomain, &[U1.into(), 0]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        ev(&mut hv, DOM0, EvOp::BindInterdomain, &[U1.into(), p1]),
        Err(Error::PermissionDenied),
        "reserved for u2"
    );
    let [p0, ..] = ev(&mut hv, U1, EvOp::AllocUnbound, &[DOM0.into()]).unwrap();
    assert_eq!(
        ev(&mut hv, DOM0, EvOp::BindInterdomain, &[U1.into(), p0]),
        Err(Error::InvalidState),
        "dom0 has no event page"
    );
    let [p2, ..] = ev(&mut hv, U2, EvOp::BindInterdomain, &[U1.into(), p1]).unwrap();
    assert_eq!(
        ev(&mut hv, U1, EvOp::Status, &[p1]),
        Ok([
            PortState::Interdomain.raw().into(),
            0,
            status_detail(U2, p2 as u32)
        ])
    );
    ev(&mut hv, U2, EvOp::Send, &[p2]).unwrap();
    // The call applied its one notification itself (U1's vCPU 0, signalled
    // below): nothing is left queued for the end of the trap.
    assert_eq!(hv.events.take_notifies(), []);
    assert_eq!(
        guest_word(&hv, U1, EV_PAGE + EventPage::pending_offset(0)),
        1 << p1
    );
    assert_eq!(
        guest_word(&hv, U1, EV_PAGE + EventPage::pending_sel_offset(0)),
        1
    );
    assert_eq!(
        guest_word(&hv, U1, EV_PAGE + EventPage::upcall_pending_offset(0)),
        1
    );
    // A bad port is an error and the guest goes on.
    for (port, e) in [
        (0, Error::InvalidArgument),
        (4096, Error::InvalidArgument),
        (99, Error::NotFound),
    ] {
        assert_eq!(ev(&mut hv, U2, EvOp::Send, &[port]), Err(e));
        assert_eq!(ev(&mut hv, U2, EvOp::Close, &[port]), Err(e));
    }
    ev(&mut hv, U1, EvOp::Close, &[p1]).unwrap();
    assert_eq!(ev(&mut hv, U2, EvOp::Send, &[p2]), Err(Error::InvalidState));
    assert_eq!(
        ev(&mut hv, U2, EvOp::Status, &[p2]),
        Ok([PortState::Unbound.raw().into(), 0, U1.into()])
    );
    assert_eq!(ev(&mut hv, U2, EvOp::UpcallDone, &[]), Ok([0; 3]));
    // Destroying a domain closes its side.
    let [p3, ..] = ev(&mut hv, U1, EvOp::BindInterdomain, &[U2.into(), p2]).unwrap();
    hv.destroy_domain(DomainId(U2)).unwrap();
    assert_eq!(ev(&mut hv, U1, EvOp::Send, &[p3]), Err(Error::InvalidState));
}

#[test]
fn virqs_ipis_and_vcpus() {
    let mut hv = hyp();
    init(&mut hv, U1);
    init(&mut hv, DOM0);
    let v = |x: Virq| u64::from(x.raw());
    assert_eq!(
        ev(&mut hv, U1, EvOp::BindVirq, &[9, 0]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        ev(&mut hv, U1, EvOp::BindVirq, &[v(Virq::Timer), 2]),
        Err(Error::NotFound)
    );
    assert_eq!(
        ev(&mut hv, U1, EvOp::BindVirq, &[v(Virq::DomExc), 0]),
        Err(Error::PermissionDenied)
    );
    let [exc, ..] = ev(&mut hv, DOM0, EvOp::BindVirq, &[v(Virq::DomExc), 0]).unwrap();
    hv.crash_domain(DomainId(U1), format_args!("test"));
    assert_eq!(hv.events.take_notifies(), [Notify::new(DomainId::DOM0, 0)]);
    assert_eq!(guest_word(&hv, DOM0, EV_PAGE), 1 << exc);

    let [ipi, ..] = ev(&mut hv, U1, EvOp::BindIpi, &[1]).unwrap();
    assert_eq!(ev(&mut hv, U1, EvOp::BindIpi, &[2]), Err(Error::NotFound));
    assert_eq!(
        ev(&mut hv, U1, EvOp::BindVcpu, &[ipi, 0]),
        Err(Error::InvalidState)
    );
    ev(&mut hv, U1, EvOp::Send, &[ipi]).unwrap();
    // Applied by the call itself; vCPU 1 is the one signalled.
    assert_eq!(hv.events.take_notifies(), []);
    assert_eq!(
        guest_word(&hv, U1, EV_PAGE + EventPage::pending_sel_offset(1)),
        1
    );
    assert_eq!(
        ev(&mut hv, U1, EvOp::Status, &[ipi]).unwrap()[..2],
        [PortState::Ipi.raw().into(), 1]
    );
    let [con, ..] = ev(&mut hv, U1, EvOp::BindVirq, &[v(Virq::Console), 0]).unwrap();
    assert_eq!(
        ev(&mut hv, U1, EvOp::BindVcpu, &[con, 5]),
        Err(Error::NotFound)
    );
    ev(&mut hv, U1, EvOp::BindVcpu, &[con, 1]).unwrap();
    assert_eq!(ev(&mut hv, U1, EvOp::Status, &[con]).unwrap(), [3, 1, 1]);
}

#[test]
fn block_and_poll() {
    let mut hv = hyp();
    let sched = |op: SchedOp| -> Vec<u64> { std::vec![SCHED_OP.into(), op.raw().into()] };
    let mut poll = sched(SchedOp::Poll);
    poll.extend([SCRATCH, 1, 0]);
    assert_eq!(
        result(call_on(&mut hv, U1, 1, &poll).0),
        Err(Error::InvalidArgument),
        "port 0"
    );
    put(&hv, U1, SCRATCH, 5u32.as_bytes());
    assert_eq!(
        result(call_on(&mut hv, U1, 1, &poll).0),
        Err(Error::InvalidState)
    );
    init(&mut hv, U1);
    assert_eq!(
        result(call_on(&mut hv, U1, 1, &poll).0),
        Err(Error::NotFound)
    );
    let [p, ..] = ev(&mut hv, U1, EvOp::BindIpi, &[0]).unwrap();
    put(&hv, U1, SCRATCH, (p as u32).as_bytes());
    for (count, e) in [(0, Error::InvalidArgument), (129, Error::TooBig)] {
        let mut bad = sched(SchedOp::Poll);
        bad.extend([SCRATCH, count, 0]);
        assert_eq!(result(call_on(&mut hv, U1, 1, &bad).0), Err(e));
    }
    let mut unaligned = sched(SchedOp::Poll);
    unaligned.extend([SCRATCH + 2, 1, 0]);
    assert_eq!(
        result(call_on(&mut hv, U1, 1, &unaligned).0),
        Err(Error::BadAddress)
    );
    // Polls and blocks; a send on the port wakes vCPU 1 (it notifies vCPU 0
    // too, which is where the port is bound).
    assert_eq!(call_on(&mut hv, U1, 1, &poll), ([0; 4], Next::Block));
    assert_eq!(
        hv.domains.get(DomainId(U1)).unwrap().vcpus[1].state,
        VcpuState::Blocked
    );
    ev(&mut hv, U1, EvOp::Send, &[p]).unwrap();
    let n = hv.events.take_notifies();
    assert!(n.contains(&Notify::new(DomainId(U1), 1)), "{n:?}");
    assert_eq!(
        call_on(&mut hv, U1, 1, &poll),
        ([0; 4], Next::Resume),
        "already pending"
    );
    // block returns at once while upcall_pending is set (vCPU 0 has it).
    assert_eq!(
        call_on(&mut hv, U1, 0, &sched(SchedOp::Block)).1,
        Next::Resume
    );
    assert_eq!(
        call_on(&mut hv, U1, 1, &sched(SchedOp::Block)).1,
        Next::Block
    );
}

#[test]
fn vcpu_up_down() {
    let mut hv = hyp();
    let entry = VcpuEntry {
        pc: 0x4008_0000,
        sp: 0x4010_0000,
        x: [1, 2, 3, 4],
    };
    put(&hv, U1, SCRATCH, entry.as_bytes());
    let op = |o: VcpuOp| u64::from(o.raw());
    let up = [VCPU_OP.into(), op(VcpuOp::Up), 1, SCRATCH, 48];
    let is_up =
        |hv: &mut Hv, v: u64| result(call_on(hv, U1, 0, &[VCPU_OP.into(), op(VcpuOp::IsUp), v]).0);
    assert_eq!(is_up(&mut hv, 1), Ok([0, 0, 0]));
    assert_eq!(is_up(&mut hv, 2), Err(Error::NotFound));
    assert_eq!(
        result(
            call_on(
                &mut hv,
                U1,
                0,
                &[VCPU_OP.into(), op(VcpuOp::Up), 1, SCRATCH, 40]
            )
            .0
        ),
        Err(Error::InvalidArgument)
    );
    let bad = VcpuEntry {
        pc: 0x4008_0002,
        ..entry
    };
    put(&hv, U1, SCRATCH + 64, bad.as_bytes());
    assert_eq!(
        result(
            call_on(
                &mut hv,
                U1,
                0,
                &[VCPU_OP.into(), op(VcpuOp::Up), 1, SCRATCH + 64, 48]
            )
            .0
        ),
        Err(Error::InvalidArgument)
    );
    assert_eq!(result(call_on(&mut hv, U1, 0, &up).0), Ok([0; 3]));
    assert_eq!(hv.events.take_notifies(), [Notify::new(DomainId(U1), 1)]);
    let d = hv.domains.get(DomainId(U1)).unwrap();
    assert_eq!(
        (
            d.vcpus[1].state,
            d.vcpus[1].ctx.gp.pc,
            d.vcpus[1].ctx.gp.x[3]
        ),
        (VcpuState::Runnable, 0x4008_0000, 4)
    );
    assert_eq!(
        result(call_on(&mut hv, U1, 0, &up).0),
        Err(Error::InvalidState),
        "already up"
    );
    assert_eq!(is_up(&mut hv, 1), Ok([1, 0, 0]));
    let down = |v: u64| [VCPU_OP.into(), op(VcpuOp::Down), v];
    hv.events.set_timer(DomainId(U1), 1, 50);
    assert_eq!(call_on(&mut hv, U1, 0, &down(1)), ([0; 4], Next::Resume));
    assert_eq!(hv.events.next_deadline(), None, "its timer is gone");
    assert_eq!(
        result(call_on(&mut hv, U1, 0, &down(1)).0),
        Err(Error::InvalidState)
    );
    assert_eq!(result(call_on(&mut hv, U1, 0, &up).0), Ok([0; 3]));
    assert_eq!(
        call_on(&mut hv, U1, 1, &down(1)),
        ([0; 4], Next::Block),
        "downs itself"
    );
    assert_eq!(
        hv.domains.get(DomainId(U1)).unwrap().vcpus[1].state,
        VcpuState::Down
    );
}

#[test]
fn timer_and_time_page() {
    let mut hv = hyp();
    hv.events.set_counter_offset(DomainId(U1), 10_000);
    let t = |o: TimeOp| u64::from(o.raw());
    call_on(&mut hv, U1, 1, &[TIME_OP.into(), t(TimeOp::SetTimer), 500]);
    assert_eq!(hv.events.timer(DomainId(U1), 1), Some(500));
    assert_eq!(hv.events.next_deadline(), Some(10_500));
    call_on(&mut hv, U1, 1, &[TIME_OP.into(), t(TimeOp::SetTimer), 0]);
    assert_eq!(hv.events.next_deadline(), None);
    for ipa in [SCRATCH + 8, 0x4000_0000 + RAM_PAGES * PAGE_SIZE - 32] {
        assert_eq!(
            result(
                call_on(
                    &mut hv,
                    U1,
                    0,
                    &[TIME_OP.into(), t(TimeOp::InitTimePage), ipa]
                )
                .0
            ),
            Err(Error::BadAddress)
        );
    }
    assert_eq!(
        result(
            call_on(
                &mut hv,
                U1,
                0,
                &[TIME_OP.into(), t(TimeOp::InitTimePage), SCRATCH]
            )
            .0
        ),
        Ok([0; 3])
    );
    assert_eq!(guest_word(&hv, U1, SCRATCH + 8), 1000, "counter_freq");
    let wall = [
        DOMCTL.into(),
        DomOp::SetWallclock.raw().into(),
        7,
        5,
        20_000,
    ];
    assert_eq!(
        result(call_on(&mut hv, U1, 0, &wall).0),
        Err(Error::PermissionDenied)
    );
    assert_eq!(result(call_on(&mut hv, DOM0, 0, &wall).0), Ok([0; 3]));
    assert_eq!(
        [16, 24, 32].map(|o| guest_word(&hv, U1, SCRATCH + o)),
        [7, 5, 10_000],
        "dom0's counter 20000 is u1's 10000"
    );
    let bad = [
        DOMCTL.into(),
        DomOp::SetWallclock.raw().into(),
        7,
        1_000_000_000,
        0,
    ];
    assert_eq!(
        result(call_on(&mut hv, DOM0, 0, &bad).0),
        Err(Error::InvalidArgument)
    );
}

#[test]
fn sched_domctls_call_the_scheduler_after_checks() {
    let mut hv = hyp_with_cpus(2);
    let d = |op: DomOp, args: &[u64]| -> Vec<u64> {
        let mut r = std::vec![DOMCTL.into(), op.raw().into()];
        r.extend_from_slice(args);
        r
    };
    assert_eq!(
        result(call_on(&mut hv, DOM0, 0, &d(DomOp::SchedGet, &[1])).0),
        Ok([256, 0, 0])
    );
    assert_eq!(
        result(call_on(&mut hv, DOM0, 0, &d(DomOp::SchedSet, &[1, 3, 150])).0),
        Ok([0; 3])
    );
    assert_eq!(
        result(call_on(&mut hv, DOM0, 0, &d(DomOp::SchedGet, &[1])).0),
        Ok([3, 150, 0])
    );

    // Refusals change nothing in the scheduler.
    for (args, e) in [
        (&[1, 0, 0][..], Error::InvalidArgument),
        (&[1, 65536, 0], Error::InvalidArgument),
        (&[1, 1, 201], Error::InvalidArgument),
        (&[9, 1, 0], Error::NoSuchDomain),
    ] {
        assert_eq!(
            result(call_on(&mut hv, DOM0, 0, &d(DomOp::SchedSet, args)).0),
            Err(e),
            "{args:?}"
        );
    }
    assert_eq!(
        result(call_on(&mut hv, U1, 0, &d(DomOp::SchedSet, &[1, 1, 0])).0),
        Err(Error::PermissionDenied)
    );
    for (args, e) in [
        (&[1, 2, 1][..], Error::NotFound),
        (&[1, 0, 0b100], Error::InvalidArgument),
        (&[7, 0, 1], Error::NoSuchDomain),
    ] {
        assert_eq!(
            result(call_on(&mut hv, DOM0, 0, &d(DomOp::VcpuAffinity, args)).0),
            Err(e),
            "{args:?}"
        );
    }
    assert_eq!(
        result(call_on(&mut hv, DOM0, 0, &d(DomOp::SchedGet, &[1])).0),
        Ok([3, 150, 0])
    );
    // The credit scheduler itself holds what was set.
    assert_eq!(
        result(call_on(&mut hv, DOM0, 0, &d(DomOp::SchedSet, &[2, 65535, 200])).0),
        Ok([0; 3])
    );
    let p = hv.sched.params(DomainId(2)).unwrap();
    assert_eq!((p.weight, p.cap), (65535, 200));
    assert_eq!(
        result(call_on(&mut hv, DOM0, 0, &d(DomOp::VcpuAffinity, &[2, 1, 0b10])).0),
        Ok([0b11, 0, 0])
    );
    assert_eq!(hv.sched.affinity((DomainId(2), 1)).map(|m| m.0), Some(0b10));
    hv.destroy_domain(DomainId(2)).unwrap();
    assert!(
        hv.sched.params(DomainId(2)).is_none(),
        "forgotten with the domain"
    );
}
