//! evtchn-bad: event-channel operations with bad ports and arguments. Every
//! one must return its documented error and the guest must go on. Prints
//! `evtchn-bad: PASS (<n> checks)` or `evtchn-bad: FAIL ...` lines.
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::sync::atomic::{AtomicU32, Ordering};

use pv_guest_sdk::StartInfo;
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::evtchn::{Op, PortState};
use pv_guest_sdk::abi::{Call, Error, sched, time, vcpu};
use pv_guest_sdk::events::{self, Port, Virq};
use pv_guest_sdk::hypercall::{call, ipa_of};
use test_guests::Checker;

pv_guest_sdk::entry!(bad);

/// Events the loopback port's handler saw.
static LOOPBACK: AtomicU32 = AtomicU32::new(0);

fn count_loopback(_: Port) {
    LOOPBACK.fetch_add(1, Ordering::AcqRel);
}

fn raw(c: Call, op: u16, args: [u64; 5]) -> Result<[u64; 3], Error> {
    call(c, op, args)
}

fn bad(si: &StartInfo) {
    let mut c = Checker::new("evtchn-bad");
    let me = si.domain_id();
    c.expect_eq(
        "send before init",
        events::send(Port(1)),
        Err(Error::NotFound),
    );
    c.expect_eq(
        "bind_ipi before init",
        events::bind_ipi(0),
        Err(Error::InvalidState),
    );
    if let Err(e) = events::init() {
        c.fail(format_args!("init: {e}"));
        c.finish();
        return;
    }
    let page = ipa_of(events::page());
    c.expect_eq(
        "init_shared twice",
        raw(Call::EvtchnOp, Op::InitShared.raw(), [page, 0, 0, 0, 0]),
        Err(Error::Exists),
    );
    for (what, port, e) in [
        ("send port 0", 0, Error::InvalidArgument),
        ("send port 4096", 4096, Error::InvalidArgument),
        ("send port 2^40", 1 << 40, Error::InvalidArgument),
        ("send free port", 5, Error::NotFound),
        ("send port 4095 (free)", 4095, Error::NotFound),
    ] {
        c.expect_eq(what, events::send_raw(port), Err(e));
        // A failed send_block returns its send's error and does not block
        // (were it to block, nothing would wake this vCPU: no timer is set).
        c.expect_eq(
            what,
            raw(
                Call::SchedOp,
                sched::Op::SendBlock.raw(),
                [port, 0, 0, 0, 0],
            )
            .map(|_| ()),
            Err(e),
        );
    }
    let free = Port(7);
    c.expect_eq("close free", events::close(free), Err(Error::NotFound));
    c.expect_eq("unmask free", events::unmask(free), Err(Error::NotFound));
    c.expect_eq(
        "bind_vcpu free",
        events::bind_vcpu(free, 0),
        Err(Error::NotFound),
    );
    c.expect_eq(
        "status free",
        events::status(free).map(|s| s.state),
        Ok(PortState::Free),
    );
    c.expect_eq(
        "alloc_unbound no such domain",
        events::alloc_unbound(DomainId(0x7fff_0000)),
        Err(Error::NoSuchDomain),
    );
    c.check(
        "bind to dom0 port 1 (not offered to us)",
        events::bind_interdomain(DomainId::DOM0, Port(1)).is_err(),
    );
    c.expect_eq(
        "bind_virq dom_exc outside dom0",
        events::bind_virq(Virq::DomExc, 0),
        Err(Error::PermissionDenied),
    );
    c.expect_eq(
        "bind_virq vCPU 99",
        events::bind_virq(Virq::Timer, 99),
        Err(Error::NotFound),
    );
    c.expect_eq(
        "bind_virq unknown virq",
        raw(Call::EvtchnOp, Op::BindVirq.raw(), [77, 0, 0, 0, 0]),
        Err(Error::InvalidArgument),
    );
    c.expect_eq(
        "bind_ipi vCPU 99",
        events::bind_ipi(99),
        Err(Error::NotFound),
    );

    // A loopback channel: unbound, connected, one end closed, closed twice.
    match events::alloc_unbound(me) {
        Ok(p) => {
            c.expect_eq("send on unbound", events::send(p), Err(Error::InvalidState));
            c.expect_eq(
                "send_block on unbound",
                pv_guest_sdk::hypercall::send_block(p),
                Err(Error::InvalidState),
            );
            match events::bind_interdomain(me, p) {
                Ok(q) => {
                    // To itself: the send makes its own upcall pending, so
                    // the block returns at once and the handler runs.
                    events::on(p, count_loopback);
                    let deadline = pv_guest_sdk::time::Deadline::after_ms(500).0;
                    let answered = events::send_and_wait(
                        q,
                        || LOOPBACK.load(Ordering::Acquire) > 0,
                        Some(deadline),
                    );
                    c.expect_eq("send_and_wait loopback", answered, Ok(true));
                    events::off(p);
                    c.expect_eq("send loopback", events::send(q), Ok(()));
                    c.check("loopback pending", events::page().is_pending(p));
                    c.expect_eq("close one end", events::close(p), Ok(()));
                    c.expect_eq(
                        "send to closed end",
                        events::send(q),
                        Err(Error::InvalidState),
                    );
                    c.expect_eq(
                        "other end unbound",
                        events::status(q).map(|s| (s.state, s.remote)),
                        Ok((PortState::Unbound, me)),
                    );
                    c.expect_eq("close other end", events::close(q), Ok(()));
                    c.expect_eq("close twice", events::close(q), Err(Error::NotFound));
                }
                Err(e) => c.fail(format_args!("bind_interdomain to self: {e}")),
            }
        }
        Err(e) => c.fail(format_args!("alloc_unbound self: {e}")),
    }
    match events::bind_ipi(0) {
        Ok(p) => c.expect_eq(
            "bind_vcpu on IPI port",
            events::bind_vcpu(p, 0),
            Err(Error::InvalidState),
        ),
        Err(e) => c.fail(format_args!("bind_ipi: {e}")),
    }

    // Neighbouring calls with bad arguments.
    let ports = [0u32; 4];
    for (what, count, e) in [
        ("poll 0 ports", 0, Error::InvalidArgument),
        ("poll 200 ports", 200, Error::TooBig),
    ] {
        c.expect_eq(
            what,
            raw(
                Call::SchedOp,
                sched::Op::Poll.raw(),
                [ipa_of(&ports), count, 0, 0, 0],
            ),
            Err(e),
        );
    }
    c.expect_eq(
        "poll port 0",
        raw(
            Call::SchedOp,
            sched::Op::Poll.raw(),
            [ipa_of(&ports), 1, 0, 0, 0],
        ),
        Err(Error::InvalidArgument),
    );
    c.expect_eq(
        "vcpu_op up vCPU 99",
        raw(Call::VcpuOp, vcpu::Op::Up.raw(), [99, 0, 48, 0, 0]),
        Err(Error::NotFound),
    );
    c.expect_eq(
        "vcpu_op is_up vCPU 0",
        raw(Call::VcpuOp, vcpu::Op::IsUp.raw(), [0, 0, 0, 0, 0]),
        Ok([1, 0, 0]),
    );
    c.expect_eq(
        "init_time_page unaligned",
        raw(
            Call::TimeOp,
            time::Op::InitTimePage.raw(),
            [page + 8, 0, 0, 0, 0],
        ),
        Err(Error::BadAddress),
    );
    c.expect_eq(
        "evtchn_op unknown sub-op",
        raw(Call::EvtchnOp, 99, [0; 5]),
        Err(Error::NotImplemented),
    );
    c.finish();
}
