//! Event channels: ports, per-port handlers, and the upcall handler.
//!
//! ```ignore
//! use pv_guest_sdk::events;
//! events::init()?;                       // registers the event page
//! let port = events::bind_ipi(0)?;
//! events::on(port, |p| { /* runs in the upcall, IRQs masked */ });
//! events::send(port)?;
//! ```
//!
//! The event page (`tern_abi::evtchn::EventPage`) is a page of this guest's
//! bss. The hypervisor sets pending bits in it and raises the upcall IRQ;
//! the SDK's IRQ vector calls [`dispatch`], which finds the pending ports
//! (atomically clearing each bit before running its handler) and then tells
//! the hypervisor with [`upcall_ack`]. Code that waits for events without
//! taking the interrupt uses [`wait_until`], which scans itself and needs
//! no acknowledgement (its `block` is one).
//!
//! Request/answer exchanges send and wait in one hypercall
//! (`sched_op send_wait`): [`send_and_wait`] sends on a port and then
//! waits like `wait_until`; the answer may come back in a register instead
//! of through the event page, and its handler then runs straight away. A back end that answers several peers in one
//! pass marks their ports with [`send_later`] instead of sending: the next
//! wait (or yield, or block) sends each once, the last with its block;
//! [`send_marked`] sends them at once.
//! Nothing here touches the GIC.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};

use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{self, NR_PORTS, Op, PortState};
use tern_abi::{Call, Error, Features};

pub use tern_abi::evtchn::{Port, Virq};

use crate::hypercall::{self, ipa_of};

mod later;
mod page;
pub use later::{send_later, send_marked};
pub use page::SharedPage;
use page::VcpuWords;

/// A handler for one port. It runs in the upcall (IRQs masked) or inside
/// [`wait_until`]/[`dispatch`] on the vCPU the port notifies.
pub type Handler = fn(Port);

static PAGE: SharedPage = SharedPage::new();
static READY: AtomicBool = AtomicBool::new(false);
/// Whether the hypervisor delivers the upcall (`Features::EVTCHN`); without
/// it [`wait_until`] polls with yields instead of blocking.
static LIVE: AtomicBool = AtomicBool::new(false);

/// What this guest keeps per port, in one static so that the scan
/// addresses both tables from one base (`repr(C)`: the byte table first,
/// at the base itself).
#[repr(C)]
struct PortTables {
    /// The vCPU each port notifies.
    vcpu: [AtomicU8; NR_PORTS as usize],
    /// Handler of every port (null: none), each an atomic of its own: the
    /// upcall handler reads them with no lock (a lock there would deadlock
    /// against this vCPU holding it, and costs two atomic round trips per
    /// port on the event hot path).
    handler: [AtomicPtr<()>; NR_PORTS as usize],
}

static PORTS: PortTables = PortTables {
    vcpu: [const { AtomicU8::new(0) }; NR_PORTS as usize],
    handler: [const { AtomicPtr::new(core::ptr::null_mut()) }; NR_PORTS as usize],
};

fn set_handler(port: Port, handler: Option<Handler>) {
    let p = handler.map_or(core::ptr::null_mut(), |h| h as *mut ());
    PORTS.handler[port.0 as usize].store(p, Ordering::Release);
}

fn handler(port: Port) -> Option<Handler> {
    handler_at(port.0 as u64)
}

/// The handler of the port numbered `reg`, as a register holds it: `None`
/// for numbers out of range and for port 0 (never allocated, so it has no
/// handler), with one bounds check for both.
fn handler_at(reg: u64) -> Option<Handler> {
    let p = PORTS
        .handler
        .get(usize::try_from(reg).ok()?)?
        .load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: `set_handler` is the only writer and stores null or a
    // `Handler` cast to a pointer; function and data pointers have the same
    // size and representation on every target the SDK builds for.
    Some(unsafe { core::mem::transmute::<*mut (), Handler>(p) })
}

fn set_port_vcpu(port: Port, vcpu: usize) {
    PORTS.vcpu[port.0 as usize].store(vcpu as u8, Ordering::Release);
}

fn evtchn_call(op: Op, args: [u64; 4]) -> Result<[u64; 3], Error> {
    let [a2, a3, a4, a5] = args;
    hypercall::call(Call::EvtchnOp, op.raw(), [a2, a3, a4, a5, 0])
}

/// [`evtchn_call`] of an operation whose only argument is `x2`.
fn evtchn_call_short(op: Op, a2: u64) -> Result<[u64; 3], Error> {
    hypercall::call_short(Call::EvtchnOp, op.raw(), a2)
}

/// Registers the event page with the hypervisor. Idempotent. Fails with
/// `NotImplemented` on a hypervisor without event channels.
pub fn init() -> Result<(), Error> {
    if READY.load(Ordering::Acquire) {
        return Ok(());
    }
    let live = hypercall::version().is_ok_and(|v| v.features.contains(Features::EVTCHN));
    match evtchn_call(Op::InitShared, [ipa_of(&PAGE), 0, 0, 0]) {
        Ok(_) | Err(Error::Exists) => {}
        Err(e) => return Err(e),
    }
    LIVE.store(live, Ordering::Release);
    READY.store(true, Ordering::Release);
    Ok(())
}

/// Whether the hypervisor raises the upcall interrupt (else waiting polls).
pub fn upcalls_live() -> bool {
    LIVE.load(Ordering::Acquire)
}

/// The event page.
pub fn page() -> &'static SharedPage {
    &PAGE
}

fn port_result(r: Result<[u64; 3], Error>, vcpu: usize) -> Result<Port, Error> {
    let port = Port::from_reg(r?[0])?;
    set_port_vcpu(port, vcpu);
    Ok(port)
}

/// Reserves a port that domain `remote` may connect to.
pub fn alloc_unbound(remote: DomainId) -> Result<Port, Error> {
    port_result(evtchn_call(Op::AllocUnbound, [remote.0.into(), 0, 0, 0]), 0)
}

/// Connects a new port to `remote_port` of domain `remote`.
pub fn bind_interdomain(remote: DomainId, remote_port: Port) -> Result<Port, Error> {
    port_result(
        evtchn_call(
            Op::BindInterdomain,
            [remote.0.into(), remote_port.0.into(), 0, 0],
        ),
        0,
    )
}

/// Binds `virq` to a new port that notifies `vcpu`.
pub fn bind_virq(virq: Virq, vcpu: usize) -> Result<Port, Error> {
    port_result(
        evtchn_call(Op::BindVirq, [virq.raw().into(), vcpu as u64, 0, 0]),
        vcpu,
    )
}

/// dom0: binds physical interrupt `intid` of one of its devices to a new
/// port (notifying vCPU 0). After it fires it stays masked until
/// [`pirq_eoi`].
pub fn bind_pirq(intid: u32) -> Result<Port, Error> {
    port_result(evtchn_call(Op::BindPirq, [intid.into(), 0, 0, 0]), 0)
}

/// dom0: the device interrupt behind `port` was handled; it may fire again.
pub fn pirq_eoi(port: Port) -> Result<(), Error> {
    evtchn_call_short(Op::PirqEoi, port.0.into()).map(|_| ())
}

/// A new IPI port that notifies `vcpu` when any vCPU of this domain sends
/// on it.
pub fn bind_ipi(vcpu: usize) -> Result<Port, Error> {
    port_result(evtchn_call(Op::BindIpi, [vcpu as u64, 0, 0, 0]), vcpu)
}

/// Makes the other end of `port` pending.
pub fn send(port: Port) -> Result<(), Error> {
    evtchn_call_short(Op::Send, port.0.into()).map(|_| ())
}

/// `send` with a raw port number, unchecked here (for tests of the
/// hypervisor's checks).
pub fn send_raw(port: u64) -> Result<(), Error> {
    evtchn_call_short(Op::Send, port).map(|_| ())
}

/// Frees `port` and forgets its handler.
pub fn close(port: Port) -> Result<(), Error> {
    evtchn_call_short(Op::Close, port.0.into())?;
    set_handler(port, None);
    Ok(())
}

/// Masks `port`: it still becomes pending but raises no upcall.
pub fn mask(port: Port) {
    PAGE.mask[port.word()].fetch_or(port.bit(), Ordering::AcqRel);
}

/// Unmasks `port`; the hypervisor re-delivers it if it is pending.
pub fn unmask(port: Port) -> Result<(), Error> {
    evtchn_call_short(Op::Unmask, port.0.into()).map(|_| ())
}

/// Makes `port` notify `vcpu`.
pub fn bind_vcpu(port: Port, vcpu: usize) -> Result<(), Error> {
    evtchn_call(Op::BindVcpu, [port.0.into(), vcpu as u64, 0, 0])?;
    set_port_vcpu(port, vcpu);
    Ok(())
}

/// What `status` reports about a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// What it is.
    pub state: PortState,
    /// The vCPU it notifies.
    pub vcpu: usize,
    /// For unbound and interdomain ports, the remote domain.
    pub remote: DomainId,
    /// For interdomain ports, the remote port; for virq ports the virq
    /// number; else 0.
    pub remote_port: u32,
}

/// Describes `port`.
pub fn status(port: Port) -> Result<Status, Error> {
    let [state, vcpu, detail] = evtchn_call(Op::Status, [port.0.into(), 0, 0, 0])?;
    let state = PortState::from_reg(state)?;
    let (dom, rport) = evtchn::split_status_detail(detail);
    Ok(match state {
        PortState::Virq => Status {
            state,
            vcpu: vcpu as usize,
            remote: DomainId(0),
            remote_port: dom,
        },
        _ => Status {
            state,
            vcpu: vcpu as usize,
            remote: DomainId(dom),
            remote_port: rport,
        },
    })
}

/// Runs `handler` whenever `port` is found pending.
pub fn on(port: Port, handler: Handler) {
    set_handler(port, Some(handler));
}

/// Removes `port`'s handler: its events are then consumed silently.
pub fn off(port: Port) {
    set_handler(port, None);
}

/// The upcall handler: handles every pending port of this vCPU, then
/// acknowledges the upcall. Called by the IRQ vector. Returns the number of
/// ports handled.
pub fn dispatch() -> usize {
    if !READY.load(Ordering::Acquire) {
        return 0;
    }
    let n = scan_here();
    // Always: the line may still be raised for an `upcall_pending` that
    // `wait_until` consumed with IRQs masked (it does not acknowledge), and
    // only this call lowers it before the interrupt would be taken again.
    upcall_ack();
    n
}

/// The scan of [`dispatch`] for this vCPU, without the acknowledgement.
fn scan_here() -> usize {
    let vcpu = crate::vcpu_index();
    let me = &PAGE.vcpu[vcpu];
    me.upcall_pending.swap(0, Ordering::AcqRel);
    scan_selected(me, vcpu)
}

/// [`SharedPage::scan`] of `vcpu`'s ports (`me`: its words) after
/// `upcall_pending` was cleared, running their handlers.
fn scan_selected(me: &VcpuWords, vcpu: usize) -> usize {
    PAGE.scan_selected(
        me,
        vcpu,
        // Relaxed: only compared, nothing read on its strength.
        |p| usize::from(PORTS.vcpu[p.0 as usize].load(Ordering::Relaxed)),
        |p| {
            if let Some(h) = handler(p) {
                h(p);
            }
        },
    )
}

/// Tells the hypervisor this vCPU consumed its upcall, so it can lower the
/// upcall interrupt (`evtchn_op upcall_done`). The one place that knows how
/// the upcall is acknowledged.
pub fn upcall_ack() {
    // upcall_done defines no errors.
    let _ = evtchn_call_short(Op::UpcallDone, 0);
}

/// Waits, handling events, until `done()` holds (returns `true`) or the
/// virtual counter reaches `deadline` (returns `false`). Blocks between
/// checks when the hypervisor delivers upcalls, else yields. Handlers run on
/// this vCPU from here, with IRQs masked for the whole wait (from the IRQ
/// vector, if IRQs are unmasked, only before and after it).
pub fn wait_until(done: impl FnMut() -> bool, deadline: Option<u64>) -> bool {
    // Nothing to send, so nothing can fail.
    wait_loop(None, done, deadline).unwrap_or(false)
}

/// Sends on `port`, then waits like [`wait_until`]: the request/answer
/// shape (notify the peer, wait for what it sends back). The send and the
/// first block are one hypercall (`sched_op send_wait`) instead of two.
/// `done` is first checked before the send: it must hold only once the
/// answer arrived, as it would after the send. The send happens in every
/// case; its error (that of [`send`]) is returned without waiting.
pub fn send_and_wait(
    port: Port,
    done: impl FnMut() -> bool,
    deadline: Option<u64>,
) -> Result<bool, Error> {
    wait_loop(Some(port), done, deadline)
}

/// [`wait_until`], sending on `first` first if given, and on the ports
/// marked by [`send_later`].
fn wait_loop(
    first: Option<Port>,
    mut done: impl FnMut() -> bool,
    deadline: Option<u64>,
) -> Result<bool, Error> {
    // Masked for the whole wait, so no upcall can slip in between the check
    // and `block`: a new event sets upcall_pending and `block` returns at
    // once, masked or not. The IRQ vector would find nothing this loop does
    // not scan itself, and one mask costs less than one per pass.
    //
    // No `upcall_done` after the scan: the hypervisor sets the upcall line
    // from `upcall_pending` on its return from the next hypercall (`block`,
    // or whatever the caller does next) and whenever it puts this vCPU on a
    // CPU (specs/hypercalls.md, `evtchn_op`); a line left raised until then
    // is taken, once IRQs are unmasked, by `dispatch`, which acknowledges.
    crate::without_irqs(|| {
        let vcpu = crate::vcpu_index();
        let me = &PAGE.vcpu[vcpu];
        // Relaxed: nothing is read on the strength of it (a stale `false`
        // only polls), and a plain load takes its address with one
        // instruction fewer than an acquire one (which has no offset).
        let live = LIVE.load(Ordering::Relaxed);
        // Only the first pass sends on `first`.
        let mut first = first;
        loop {
            if let Some(r) = wait_pass(me, vcpu, first.take(), &mut done, deadline, live)? {
                return Ok(r);
            }
        }
    })
}

/// One pass of [`wait_loop`] on vCPU `vcpu` (`me`: its words): handles
/// what is pending, sends what is marked, and checks `done` and
/// `deadline`; then returns the result if there is one, else blocks (or
/// yields, if not `live`) and returns `None`. `unsent` is sent with the
/// block (or before returning), and its error is the caller's.
#[inline(always)]
fn wait_pass(
    me: &VcpuWords,
    vcpu: usize,
    mut unsent: Option<Port>,
    done: &mut impl FnMut() -> bool,
    deadline: Option<u64>,
    live: bool,
) -> Result<Option<bool>, Error> {
    // Whether the error of sending `unsent` is the caller's (a marked
    // port's is not, see `send_later`).
    let mut mine = unsent.is_some();
    // A plain load instead of a scan's exclusive pairs when nothing came:
    // the hypervisor sets upcall_pending after each selector bit it sets,
    // and a scan clears it before it takes the selector, so a clear one
    // hides nothing but a delivery under way, which `block` returns for.
    // Nothing sets it before `init`.
    if me.upcall_pending.load(Ordering::Acquire) != 0 {
        // A store, not the swap of `scan`: the old value is known. It must
        // be seen before the selector is read, else a bit set in between
        // would find upcall_pending still set, raise nothing, and be left.
        // SeqCst: a store-release, which AArch64 keeps ahead of the
        // selector swap's load-acquire.
        me.upcall_pending.store(0, Ordering::SeqCst);
        scan_selected(me, vcpu);
    }
    // Marked by the caller or by handlers the scan ran: all but one go
    // now, the last with the block.
    if later::any()
        && let Some(p) = later::send_keeping(unsent.is_none())
    {
        unsent = Some(p);
        mine = false;
    }
    let end = if done() {
        Some(true)
    } else if deadline.is_some_and(|d| crate::time::counter() >= d) {
        Some(false)
    } else {
        None
    };
    if (end.is_some() || !live)
        && let Some(p) = unsent.take()
    {
        send(p).or_else(|e| if mine { Err(e) } else { Ok(()) })?;
    }
    if end.is_some() {
        return Ok(end);
    }
    if live {
        if let Some(d) = deadline {
            crate::time::arm_by(d);
        }
        match unsent {
            // The answer may come back in a register: its port is then not
            // pending, and its handler runs here, as the scan would have
            // run it.
            Some(p) => match crate::hypercall::send_wait_raw(p) {
                Ok(handed) if handed != 0 => {
                    if let Some(h) = handler_at(handed) {
                        // `handler_at` checked it is a port's number.
                        h(Port(handed as u32));
                    }
                    // What the answer mostly does: ends the wait. Then no
                    // second pass, if the handler marked nothing to send:
                    // events that came meanwhile stay pending for the next
                    // wait or the upcall, as any that come after a pass do.
                    if !later::any() && done() {
                        return Ok(Some(true));
                    }
                }
                Err(e) if mine => return Err(e),
                // A marked port's failed send did not block: the next
                // pass does.
                _ => {}
            },
            None => crate::block(),
        }
    } else {
        crate::yield_now();
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
