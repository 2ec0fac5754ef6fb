//! `console_io` (guest ABI major 1, call 1): the hypervisor console.
//!
//! Output goes to the hypervisor's UART, prefixed per line with the domain's
//! name by the hypervisor. Any domain may write.

use crate::Error;
use crate::call::Call;
use crate::spec::{CallSpec, SubOpSpec};

/// Largest `len` accepted by [`Op::Write`], in bytes.
pub const WRITE_MAX: u64 = 4096;

abi_enum! {
    /// Sub-operations of `console_io`, in `x1`.
    pub enum Op: u16, unknown = NotImplemented {
        /// Write bytes to the console.
        ///
        /// - `x2` = IPA of the bytes, in the caller's RAM (any alignment; may
        ///   cross pages).
        /// - `x3` = length, `0..=`[`WRITE_MAX`].
        ///
        /// Returns `x1` = bytes written (all of them on success).
        /// Errors: [`Error::BadAddress`] if the range is not in the caller's RAM,
        /// [`Error::TooBig`] if `x3 > WRITE_MAX`.
        Write = 0 => "write",
    }
}

/// Description of `console_io` for `specs/hypercalls.md`.
pub const SPEC: CallSpec = CallSpec {
    name: Call::ConsoleIo.name(),
    major: Call::MAJOR,
    call: Call::ConsoleIo.raw(),
    caller: Call::ConsoleIo.caller(),
    sub_ops: &[SubOpSpec {
        name: Op::Write.name(),
        value: Some(Op::Write.raw()),
        args: &["x2=buf", "x3=len"],
        returns: &["x1=written"],
        errors: &[Error::BadAddress, Error::TooBig],
    }],
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
