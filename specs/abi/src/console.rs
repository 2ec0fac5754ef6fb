//! `console_io` (guest ABI major 1, call 1): the hypervisor console.
//!
//! Output goes to the hypervisor's UART, prefixed per line with the domain's
//! name by the hypervisor. Any domain may write; dom0 also writes what the
//! other domains print on their console rings ([`Op::WriteAs`]).
//!
//! Input typed on the physical console goes to one domain at a time, the
//! input owner: dom0 for now (the console back-end will route it to the
//! domain attached to the console). Other domains read nothing. Once the owner
//! has read, its output is written as it is, unprefixed and unbuffered, so an
//! interactive program (dom0's shell) can show a prompt and echo what is typed.

use crate::Error;
use crate::call::Call;
use crate::spec::{CallSpec, SubOpSpec};

/// Largest `len` accepted by [`Op::Write`], in bytes.
pub const WRITE_MAX: u64 = 4096;

/// Largest `len` accepted by [`Op::Read`], in bytes: the same limit as
/// [`WRITE_MAX`], so the spec has one console limit.
pub const READ_MAX: u64 = WRITE_MAX;

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
        /// Read bytes typed on the console, without waiting.
        ///
        /// - `x2` = IPA of the buffer, in the caller's RAM (any alignment; may
        ///   cross pages).
        /// - `x3` = its length, `0..=`[`READ_MAX`].
        ///
        /// Returns `x1` = bytes read, `0..=x3`; 0 when nothing is pending or
        /// the caller does not own the console input. Bytes are raw: no echo,
        /// no line editing, `\r` for Enter on a terminal.
        /// Errors: [`Error::BadAddress`] if the range is not in the caller's RAM,
        /// [`Error::TooBig`] if `x3 > READ_MAX`.
        Read = 1 => "read",
        /// dom0: read the hypervisor's log ring (what `dmesg` shows).
        ///
        /// - `x2` = IPA of the buffer, in the caller's RAM.
        /// - `x3` = its length, `0..=`[`READ_MAX`].
        /// - `x4` = the position to read from: a count of bytes the
        ///   hypervisor has logged since boot (0 = the oldest retained).
        ///
        /// Returns `x1` = bytes copied, `x2` = the position after them (pass
        /// it to the next call), `x3` = the oldest position still retained
        /// (text before it was overwritten; a reader that asked for less
        /// lost `x3 - x4` bytes).
        /// Errors: [`Error::PermissionDenied`] (not dom0),
        /// [`Error::BadAddress`], [`Error::TooBig`].
        ReadLog = 2 => "read_log",
        /// dom0: write bytes to the console on behalf of domain `x2`, as
        /// if that domain had written them: prefixed with its name and line
        /// buffered together with its own `write`s. The console back end
        /// (`specs/console.md`) passes on what a domain prints on its
        /// console ring, so it reaches the UART exactly as direct output.
        ///
        /// - `x2` = the domain's id.
        /// - `x3` = IPA of the bytes, in dom0's RAM (any alignment).
        /// - `x4` = length, `0..=`[`WRITE_MAX`].
        ///
        /// Returns `x1` = bytes written (all of them on success).
        /// Errors: [`Error::PermissionDenied`] (not dom0),
        /// [`Error::NoSuchDomain`], [`Error::BadAddress`], [`Error::TooBig`].
        WriteAs = 3 => "write_as",
    }
}

/// Description of `console_io` for `specs/hypercalls.md`.
pub const SPEC: CallSpec = CallSpec {
    name: Call::ConsoleIo.name(),
    major: Call::MAJOR,
    call: Call::ConsoleIo.raw(),
    caller: Call::ConsoleIo.caller(),
    sub_ops: &[
        SubOpSpec {
            name: Op::Write.name(),
            value: Some(Op::Write.raw()),
            args: &["x2=buf", "x3=len"],
            returns: &["x1=written"],
            errors: &[Error::BadAddress, Error::TooBig],
        },
        SubOpSpec {
            name: Op::Read.name(),
            value: Some(Op::Read.raw()),
            args: &["x2=buf", "x3=len"],
            returns: &["x1=read"],
            errors: &[Error::BadAddress, Error::TooBig],
        },
        SubOpSpec {
            name: Op::ReadLog.name(),
            value: Some(Op::ReadLog.raw()),
            args: &["x2=buf", "x3=len", "x4=pos"],
            returns: &["x1=copied", "x2=next", "x3=oldest"],
            errors: &[Error::PermissionDenied, Error::BadAddress, Error::TooBig],
        },
        SubOpSpec {
            name: Op::WriteAs.name(),
            value: Some(Op::WriteAs.raw()),
            args: &["x2=domid", "x3=buf", "x4=len"],
            returns: &["x1=written"],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::BadAddress,
                Error::TooBig,
            ],
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
