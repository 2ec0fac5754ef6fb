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
    }
}

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
