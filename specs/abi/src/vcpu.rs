//! `vcpu_op` (guest ABI major 1, call 6): a domain starts and stops its own
//! secondary vCPUs.
//!
//! A domain is created with a fixed number of vCPUs; vCPU 0 starts at the
//! image's entry point, the others are down until the guest (or dom0 with
//! `domctl set_vcpu_context`) brings them up.

use crate::Error;
use crate::call::Call;
use crate::spec::{CallSpec, SubOpSpec};

abi_enum! {
    /// Sub-operations of `vcpu_op`, in `x1`. They act on vCPUs of the
    /// calling domain, named by index (`NotFound` beyond its vCPUs).
    pub enum Op: u16, unknown = NotImplemented {
        /// Start vCPU `x2`, which is down, in the entry state of a
        /// [`crate::domctl::VcpuEntry`] at IPA `x3` (IN, 8-byte aligned) of
        /// `x4` bytes.
        /// Errors: `NotFound`, `BadAddress`, `InvalidArgument` (PC or SP
        /// outside RAM, short size), `InvalidState` (the vCPU is up).
        Up = 0 => "up",
        /// Stop vCPU `x2` (which may be the caller: then the call does not
        /// return). Its state is lost; `up` starts it afresh.
        /// Errors: `NotFound`, `InvalidState` (already down).
        Down = 1 => "down",
        /// Whether vCPU `x2` is up: `x1` = 1 if so, else 0.
        /// Errors: `NotFound`.
        IsUp = 2 => "is_up",
    }
}

/// Description of `vcpu_op` for `specs/hypercalls.md`.
pub const SPEC: CallSpec = CallSpec {
    name: Call::VcpuOp.name(),
    major: Call::MAJOR,
    call: Call::VcpuOp.raw(),
    caller: Call::VcpuOp.caller(),
    sub_ops: &[
        SubOpSpec {
            name: Op::Up.name(),
            value: Some(Op::Up.raw()),
            args: &["x2=vcpu", "x3=entry", "x4=size"],
            returns: &[],
            errors: &[
                Error::NotFound,
                Error::BadAddress,
                Error::InvalidArgument,
                Error::InvalidState,
            ],
        },
        SubOpSpec {
            name: Op::Down.name(),
            value: Some(Op::Down.raw()),
            args: &["x2=vcpu"],
            returns: &[],
            errors: &[Error::NotFound, Error::InvalidState],
        },
        SubOpSpec {
            name: Op::IsUp.name(),
            value: Some(Op::IsUp.raw()),
            args: &["x2=vcpu"],
            returns: &["x1=up"],
            errors: &[Error::NotFound],
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
    }
}
