//! `sched_op` (guest ABI major 1, call 2): scheduling of the calling vCPU and
//! the lifetime of the calling domain.

use crate::Error;
use crate::call::Call;
use crate::spec::{CallSpec, SubOpSpec};

abi_enum! {
    /// Sub-operations of `sched_op`, in `x1`.
    pub enum Op: u16, unknown = NotImplemented {
        /// Give up the rest of this vCPU's time slice. It stays runnable.
        /// No arguments, no results, no errors.
        Yield = 0 => "yield",
        /// Stop running this vCPU until an interrupt (virtual timer, or later
        /// an event) is pending for it. Returns at once if one is already
        /// pending. Does not change `DAIF`: a guest with interrupts masked
        /// wakes up here without taking the interrupt, like `wfi`.
        /// No arguments, no results, no errors.
        Block = 1 => "block",
        /// Stop the whole calling domain.
        ///
        /// - `x2` = [`ShutdownReason`].
        ///
        /// Does not return on success: every vCPU stops and the domain enters
        /// the `shutdown` state with that reason; dom0 decides what happens next
        /// (for dom0 itself, the hypervisor powers off or resets the machine).
        /// Errors: [`Error::InvalidArgument`] for an unknown reason.
        Shutdown = 2 => "shutdown",
        /// Block the calling vCPU until one of the given event-channel ports
        /// of its domain is pending (masked or not), or until a deadline.
        ///
        /// - `x2` = IPA of an array of `u32` port numbers, 4-byte aligned.
        /// - `x3` = number of ports, `1..=`[`POLL_MAX`].
        /// - `x4` = deadline: a value of the caller's virtual counter; 0 for
        ///   none.
        ///
        /// Returns at once if a listed port is already pending. Returns 0
        /// when it wakes, whatever woke it (a listed port, the deadline, or
        /// an upcall for this vCPU): the caller reads the pending bits to
        /// learn which.
        /// Errors: `BadAddress`, `InvalidArgument` (count 0, a port out of
        /// range), `TooBig` (count above `POLL_MAX`), `NotFound` (a port is
        /// free), `InvalidState` (no event page).
        Poll = 3 => "poll",
        /// `evtchn_op send` on a port, then [`Op::Block`], in one call: the
        /// shape of every request/answer exchange over an event channel
        /// (notify the peer, wait for its answer), in one trap instead of
        /// two.
        ///
        /// - `x2` = port to send on, as for `evtchn_op send`.
        ///
        /// If the send fails, its error is returned and the vCPU does not
        /// block. Otherwise as `block`: returns at once if an upcall is
        /// pending for the caller (the peer may answer before the caller
        /// would block, on another CPU), else when one is.
        /// Errors: those of `evtchn_op send`: `InvalidArgument` (port out of
        /// range), `NotFound` (port free), `InvalidState` (no event page).
        SendBlock = 4 => "send_block",
        /// [`Op::SendBlock`] that may take the answer in a register: the
        /// first event that wakes the vCPU can be handed to it in `x1`
        /// instead of through its event page, when that event is its
        /// port's only news (the port unmasked, not pending, no vCPU of
        /// the domain polling) and the vCPU is still blocked here when it
        /// is sent. Such a port is not made pending and raises no upcall:
        /// the caller handles it as if it had found and cleared its
        /// pending bit. The exchange then costs neither side the event
        /// page's bit operations (seL4's IPC fastpath does the same with a
        /// message in registers).
        ///
        /// - `x2` = port to send on, as for `evtchn_op send`.
        ///
        /// Returns `x1` = the port handed over, or 0 when none was (the
        /// vCPU woke for anything else, or did not block: events then wait
        /// in the event page as usual). Errors: those of `send_block`.
        SendWait = 5 => "send_wait",
    }
}

/// Most ports one [`Op::Poll`] may list.
pub const POLL_MAX: u64 = 128;

abi_enum! {
    /// Why a domain shut down: `x2` of [`Op::Shutdown`], and
    /// `DomainInfo::shutdown_reason`.
    pub enum ShutdownReason: u32, unknown = InvalidArgument {
        /// The guest asked to be powered off.
        Poweroff = 0 => "poweroff",
        /// The guest asked to be restarted.
        Reboot = 1 => "reboot",
        /// The guest detected a fatal error in itself (a panic).
        Crash = 2 => "crash",
    }
}

/// Description of `sched_op` for `specs/hypercalls.md`.
pub const SPEC: CallSpec = CallSpec {
    name: Call::SchedOp.name(),
    major: Call::MAJOR,
    call: Call::SchedOp.raw(),
    caller: Call::SchedOp.caller(),
    sub_ops: &[
        SubOpSpec {
            name: Op::Yield.name(),
            value: Some(Op::Yield.raw()),
            args: &[],
            returns: &[],
            errors: &[],
        },
        SubOpSpec {
            name: Op::Block.name(),
            value: Some(Op::Block.raw()),
            args: &[],
            returns: &[],
            errors: &[],
        },
        SubOpSpec {
            name: Op::Shutdown.name(),
            value: Some(Op::Shutdown.raw()),
            args: &["x2=reason"],
            returns: &[],
            errors: &[Error::InvalidArgument],
        },
        SubOpSpec {
            name: Op::Poll.name(),
            value: Some(Op::Poll.raw()),
            args: &["x2=ports", "x3=count", "x4=deadline"],
            returns: &[],
            errors: &[
                Error::BadAddress,
                Error::InvalidArgument,
                Error::TooBig,
                Error::NotFound,
                Error::InvalidState,
            ],
        },
        SubOpSpec {
            name: Op::SendBlock.name(),
            value: Some(Op::SendBlock.raw()),
            args: &["x2=port"],
            returns: &[],
            errors: &[Error::InvalidArgument, Error::NotFound, Error::InvalidState],
        },
        SubOpSpec {
            name: Op::SendWait.name(),
            value: Some(Op::SendWait.raw()),
            args: &["x2=port"],
            returns: &["x1=port"],
            errors: &[Error::InvalidArgument, Error::NotFound, Error::InvalidState],
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_matches_enum() {
        let all: std::vec::Vec<_> = Op::ALL.iter().map(|o| (o.name(), o.raw())).collect();
        crate::spec::assert_sub_ops_match(&SPEC, &all);
        assert_eq!(ShutdownReason::from_reg(3), Err(Error::InvalidArgument));
        assert_eq!(
            ShutdownReason::from_reg(1 << 40),
            Err(Error::InvalidArgument)
        );
        assert_eq!(Op::from_reg(2), Ok(Op::Shutdown));
    }
}
