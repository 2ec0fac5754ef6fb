//! The safe hypercall dispatcher.
//!
//! The exception vector hands over the guest's registers; everything from here
//! on is safe Rust that cannot fault the hypervisor: bad arguments become an
//! error status in `x0`, per `specs/hypercalls.md`. Tern calls are dispatched
//! through one table per ABI major (the major is part of the function id);
//! `version` and the standard SMCCC queries are answered when an id is no call
//! of that table.

mod console;
mod discovery;
mod domctl;
mod evtchn;
#[cfg(test)]
mod fuzz_tests;
mod grant;
mod guest_io;
mod module;
mod sched;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_control;
#[cfg(test)]
mod tests_counters;
#[cfg(test)]
mod tests_events;
#[cfg(test)]
mod tests_grant;
#[cfg(test)]
mod tests_grant_copy;
#[cfg(test)]
mod tests_pirq;
#[cfg(test)]
mod tests_send_block;
#[cfg(test)]
mod tests_send_wait;
mod vcpu;

use tern_abi::call::{self, Call, Caller};

pub use discovery::{discovery, version_regs};
use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::sched::ShutdownReason;

use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};

/// What the calling vCPU does after the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Return to the caller.
    Resume,
    /// Return to the caller, but let others run first.
    Yield,
    /// The caller's vCPU blocked.
    Block,
    /// The caller's domain stopped (shut down); do not return to it.
    Stop,
}

/// The calling vCPU, a copy of its argument registers `x0`..`x6`, and the
/// results `x0`..`x3`. Results a call does not set are returned as zero
/// (`specs/hypercalls.md`, "Registers").
pub struct Args {
    /// The calling domain.
    pub caller: DomainId,
    /// The calling vCPU's index.
    pub vcpu: usize,
    x: [u64; 7],
    out: [u64; 4],
}

impl Args {
    /// Argument register `n` (0..=6).
    pub fn arg(&self, n: usize) -> u64 {
        self.x[n]
    }
    /// Sets result register `n` (0..=3).
    pub fn ret(&mut self, n: usize, v: u64) {
        self.out[n] = v;
    }
}

/// A handler for one call of one major.
type Handler<M, F> = fn(&mut Hypervisor<'_, M, F>, &mut Args) -> Result<Next, Error>;

impl<M: PhysMem, F: FrameSource> Hypervisor<'_, M, F> {
    /// Major 1's table, indexed by call number (0 is reserved).
    const V1: [Option<Handler<M, F>>; 9] = [
        None,
        Some(console::console_io),
        Some(sched::sched_op),
        Some(domctl::domctl),
        Some(module::module_op),
        Some(evtchn::evtchn_op),
        Some(vcpu::vcpu_op),
        Some(vcpu::time_op),
        Some(grant::grant_op),
    ];

    /// Handles `hvc #0` from `caller`'s vCPU `vcpu`: reads `x0`..`x6` and
    /// writes the results to `x0`..`x3` of `x`, which holds at least 7 registers.
    pub fn hypercall(&mut self, caller: DomainId, vcpu: usize, x: &mut [u64]) -> Next {
        match self.hot_call(caller, vcpu, x, false) {
            Some((next, _)) => next,
            None => self.table_call(caller, vcpu, x),
        }
    }

    /// [`Self::hypercall`] from a guest's trap: answers `Yield` instead of
    /// `Resume` when the caller's vCPU may no longer run (its domain paused
    /// or dying while the call waited for the lock: the call completes, but
    /// the vCPU does not run on). The caller must take the vCPU off its CPU
    /// in the same trap when the answer is `Block` (`Scheduler::schedule`
    /// with the vCPU not runnable: the hot `block` leaves that to it).
    pub fn guest_hypercall(&mut self, caller: DomainId, vcpu: usize, x: &mut [u64]) -> Next {
        let (next, runnable) = match self.hot_call(caller, vcpu, x, true) {
            Some((next, runnable)) => (next, runnable),
            None => (self.table_call(caller, vcpu, x), None),
        };
        let runnable = match (next, runnable) {
            (Next::Resume, None) => self
                .domains
                .get(caller)
                .is_ok_and(|d| d.vcpu_runnable(vcpu)),
            (_, r) => r.unwrap_or(true),
        };
        if next == Next::Resume && !runnable {
            Next::Yield
        } else {
            next
        }
    }

    /// Every call but those of [`Self::hot_call`]: counted, then through
    /// the table.
    fn table_call(&mut self, caller: DomainId, vcpu: usize, x: &mut [u64]) -> Next {
        // `DomainInfo::hypercalls`: one increment per call (the discovery
        // calls answered before the lock never get here, and are not counted).
        if let Ok(d) = self.domains.get_mut(caller) {
            d.hypercalls += 1;
        }
        let mut args = Args {
            caller,
            vcpu,
            x: [x[0], x[1], x[2], x[3], x[4], x[5], x[6]],
            out: [0; 4],
        };
        let next = self.dispatch(&mut args);
        x[..4].copy_from_slice(&args.out);
        next
    }

    /// The calls of every event round trip, `evtchn_op send`, `sched_op
    /// block` and the two in one (`sched_op send_block`), and `sched_op
    /// yield`, straight to their code rather
    /// than through the table and `Args`: all are open to any caller (checked
    /// at compile time below), set no results, and their handlers' checks are
    /// the same functions. Each is counted in `DomainInfo::hypercalls` with a lookup
    /// of the caller it makes anyway (after the call: neither reads the
    /// count). Writes the results; answers what the vCPU does next and, when
    /// that lookup told, whether it may run on. `None` for any other call.
    /// `switching`: a `Block` answer is followed at once by the caller's
    /// CPU descheduling the vCPU (see [`Self::guest_hypercall`]).
    fn hot_call(
        &mut self,
        caller: DomainId,
        vcpu: usize,
        x: &mut [u64],
        switching: bool,
    ) -> Option<(Next, Option<bool>)> {
        const _: () = assert!(
            matches!(Call::EvtchnOp.caller(), Caller::Any)
                && matches!(Call::SchedOp.caller(), Caller::Any)
        );
        let id = x[0] as u32;
        let send = id == call::EVTCHN_OP && x[1] == u64::from(tern_abi::evtchn::Op::Send.raw());
        let sched_op = id == call::SCHED_OP;
        // `send_block` or `send_wait`, neighbours: one compare for both.
        const SEND_BLOCK: u64 = tern_abi::sched::Op::SendBlock.raw() as u64;
        const _: () = assert!(tern_abi::sched::Op::SendWait.raw() as u64 == SEND_BLOCK + 1);
        let send_wait = x[1] == SEND_BLOCK + 1;
        let send_block = sched_op && x[1].wrapping_sub(SEND_BLOCK) < 2;
        let block = sched_op && x[1] == u64::from(tern_abi::sched::Op::Block.raw());
        // `block` is a `send_block` that sends nothing: one call of
        // `sched::block` for both (it is inlined).
        let (result, runnable) = if send || send_block || block {
            let mem: &dyn PhysMem = self.mem;
            let sent = if block {
                Ok(None)
            } else {
                // `vcpu` is below `MAX_VCPUS`: the shift cannot overflow.
                let wait = u64::from(send_wait) << vcpu;
                match tern_abi::evtchn::Port::from_reg(x[2]) {
                    Ok(port) => self.events.send_direct(mem, caller, port, wait),
                    Err(e) => Err(e),
                }
            };
            match sent {
                Ok(woken) if !send => {
                    // Blocks (or not) first, so the notification knows
                    // whether this CPU switches; counted by that lookup.
                    let next = sched::block(self, caller, vcpu, true, send_wait, switching);
                    // The notification of the common case applied here:
                    // no queue round trip at the end of the trap.
                    // `send_direct` answers a notification only when none
                    // is queued, and `block` queues none.
                    if let Some(n) = woken {
                        let hand = switching && next == Ok(Next::Block);
                        self.apply_notify_from(n, (caller, vcpu), hand);
                    }
                    (next, None)
                }
                sent => {
                    if let Ok(Some(n)) = sent {
                        self.apply_notify(n);
                    }
                    let runnable = match self.domains.get_mut(caller) {
                        Ok(d) => {
                            d.hypercalls += 1;
                            d.vcpu_runnable(vcpu)
                        }
                        Err(_) => false,
                    };
                    (sent.map(|_| Next::Resume), Some(runnable))
                }
            }
        } else if id == call::SCHED_OP && x[1] == u64::from(tern_abi::sched::Op::Yield.raw()) {
            if let Ok(d) = self.domains.get_mut(caller) {
                d.hypercalls += 1;
            }
            self.yield_vcpu((caller, vcpu));
            (Ok(Next::Yield), None)
        } else {
            return None;
        };
        let (next, out) = match result {
            Ok(next) => (next, [0; 4]),
            Err(e) => (Next::Resume, [e.to_reg(), 0, 0, 0]),
        };
        x[..4].copy_from_slice(&out);
        Some((next, runnable))
    }

    fn dispatch(&mut self, args: &mut Args) -> Next {
        let id = args.x[0] as u32;
        // Calls of the ABI served here first: the trap path has already
        // answered every discovery call a guest makes (`guest_discovery`),
        // so they reach this only from host tests and are checked last.
        let result = match call::decode(id) {
            Some((Call::MAJOR, n)) if id != call::VERSION => {
                match Self::V1.get(usize::from(n)).copied().flatten() {
                    Some(handler) => self
                        .check_caller(n, args.caller)
                        .and_then(|()| handler(self, args)),
                    None => Err(Error::NotImplemented),
                }
            }
            _ => {
                let dom0 = id == call::VERSION && self.is_dom0(args.caller);
                match discovery(id, args.x[1], dom0) {
                    Some(out) => {
                        args.out = out;
                        return Next::Resume;
                    }
                    None => Err(Error::NotImplemented),
                }
            }
        };
        match result {
            Ok(next) => next,
            Err(e) => {
                args.out = [e.to_reg(), 0, 0, 0];
                Next::Resume
            }
        }
    }

    fn is_dom0(&self, id: DomainId) -> bool {
        self.domains.get(id).is_ok_and(|d| d.is_dom0())
    }

    fn check_caller(&self, call: u16, caller: DomainId) -> Result<(), Error> {
        match Call::from_raw(call).map(Call::caller) {
            Some(Caller::Dom0) if !self.is_dom0(caller) => Err(Error::PermissionDenied),
            _ => Ok(()),
        }
    }

    /// Stops a domain after it asked to (`sched_op shutdown`).
    pub fn shutdown_domain(&mut self, id: DomainId, reason: ShutdownReason) {
        self.console_flush(id);
        if let Ok(d) = self.domains.get_mut(id) {
            d.life = crate::domain::Lifecycle::Shutdown(reason);
            log::info!(
                "domain {} ({}) shut down: {}",
                d.name(),
                id.0,
                reason.name()
            );
        }
        self.stop_scheduling(id);
        self.events
            .raise_virq(self.mem, DomainId::DOM0, tern_abi::evtchn::Virq::DomExc);
    }

    /// Stops a domain after a fault it caused. `what` is a one-line report.
    pub fn crash_domain(&mut self, id: DomainId, what: core::fmt::Arguments<'_>) {
        self.console_flush(id);
        if let Ok(d) = self.domains.get_mut(id) {
            d.life = crate::domain::Lifecycle::Crashed;
            // A guest's misbehaviour is not a hypervisor error: warn, not error.
            log::warn!("domain {} ({}) crashed: {}", d.name(), id.0, what);
        }
        self.stop_scheduling(id);
        self.events
            .raise_virq(self.mem, DomainId::DOM0, tern_abi::evtchn::Virq::DomExc);
    }
}
