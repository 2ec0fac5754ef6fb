//! `module_op` (guest ABI major 1, call 4): the boot modules, dom0 only; part of
//! the control ABI ([`crate::CONTROL_ABI`]).
//!
//! Boot modules are the files of the initrd (cpio "newc") the hypervisor was
//! booted with: guest images and `*.toml` domain configurations. They are
//! numbered `0..count` in archive order; the hypervisor keeps them read-only and
//! copies from them on request.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::Error;
use crate::call::Call;
use crate::spec::{CallSpec, LayoutDesc, SubOpSpec, layout_desc};

/// Longest module name, in bytes (the name array is 64 bytes).
pub const NAME_MAX: usize = 63;
/// Largest `len` accepted by [`Op::Read`], in bytes (bounds the time spent in
/// one call).
pub const READ_MAX: u64 = 64 * 1024;

abi_enum! {
    /// Sub-operations of `module_op`, in `x1`. All return
    /// [`Error::PermissionDenied`] when the caller is not dom0.
    pub enum Op: u16, unknown = NotImplemented {
        /// Number of boot modules. Returns `x1` = count.
        Count = 0 => "count",
        /// Describe one module.
        ///
        /// - `x2` = index. `x3` = IPA of a [`ModuleInfo`] (OUT), 8-byte aligned.
        ///   `x4` = its size in bytes.
        ///
        /// Errors: `NotFound` (index `>=` count), `BadAddress`,
        /// `InvalidArgument` (short size).
        GetInfo = 1 => "get_info",
        /// Copy bytes of a module into the caller's RAM.
        ///
        /// - `x2` = index. `x3` = byte offset in the module. `x4` = IPA of the
        ///   buffer. `x5` = length, `0..=`[`READ_MAX`].
        ///
        /// Returns `x1` = bytes copied: `min(len, size - offset)`, 0 at or past
        /// the end. Errors: `NotFound`, `BadAddress`, `TooBig` (`len > READ_MAX`).
        Read = 2 => "read",
    }
}

/// Result of [`Op::GetInfo`]. Every field is OUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ModuleInfo {
    /// OUT: the file name in the archive, NUL-padded (longer names are cut to
    /// [`NAME_MAX`] bytes).
    pub name: [u8; 64],
    /// OUT: size in bytes.
    pub size: u64,
}
const _: () = assert!(size_of::<ModuleInfo>() == 72);

impl ModuleInfo {
    /// The smallest `size` argument accepted (the size in control ABI 1.0).
    pub const MIN_SIZE: usize = 72;
}

/// Field table of [`ModuleInfo`].
pub const MODULE_INFO_LAYOUT: LayoutDesc = layout_desc!(ModuleInfo {
    name: [u8; 64] => Out,
    size: u64 => Out,
});

/// Description of `module_op` for `specs/hypercalls.md`.
pub const SPEC: CallSpec = CallSpec {
    name: Call::ModuleOp.name(),
    major: Call::MAJOR,
    call: Call::ModuleOp.raw(),
    caller: Call::ModuleOp.caller(),
    sub_ops: &[
        SubOpSpec {
            name: Op::Count.name(),
            value: Some(Op::Count.raw()),
            args: &[],
            returns: &["x1=count"],
            errors: &[Error::PermissionDenied],
        },
        SubOpSpec {
            name: Op::GetInfo.name(),
            value: Some(Op::GetInfo.raw()),
            args: &["x2=index", "x3=info", "x4=size"],
            returns: &[],
            errors: &[
                Error::PermissionDenied,
                Error::NotFound,
                Error::BadAddress,
                Error::InvalidArgument,
            ],
        },
        SubOpSpec {
            name: Op::Read.name(),
            value: Some(Op::Read.raw()),
            args: &["x2=index", "x3=offset", "x4=buf", "x5=len"],
            returns: &["x1=read"],
            errors: &[
                Error::PermissionDenied,
                Error::NotFound,
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
        assert_eq!(ModuleInfo::MIN_SIZE, size_of::<ModuleInfo>());
    }
}
