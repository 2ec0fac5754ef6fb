//! The `domctl` rows of `specs/hypercalls.md`, checked by the spec test.

use super::Op;
use crate::Error;
use crate::call::Call;
use crate::spec::{CallSpec, SubOpSpec};

/// Description of `domctl` for `specs/hypercalls.md`.
pub const SPEC: CallSpec = CallSpec {
    name: Call::Domctl.name(),
    major: Call::MAJOR,
    call: Call::Domctl.raw(),
    caller: Call::Domctl.caller(),
    sub_ops: &[
        SubOpSpec {
            name: Op::Create.name(),
            value: Some(Op::Create.raw()),
            args: &["x2=info", "x3=size"],
            returns: &["x1=domid"],
            errors: &[
                Error::PermissionDenied,
                Error::BadAddress,
                Error::InvalidArgument,
                Error::TooBig,
                Error::NoMemory,
                Error::Exists,
            ],
        },
        SubOpSpec {
            name: Op::SetMaxMem.name(),
            value: Some(Op::SetMaxMem.raw()),
            args: &["x2=domid", "x3=pages"],
            returns: &[],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::InvalidArgument,
                Error::TooBig,
            ],
        },
        SubOpSpec {
            name: Op::LoadImageFromModule.name(),
            value: Some(Op::LoadImageFromModule.raw()),
            args: &["x2=domid", "x3=name", "x4=name_len"],
            returns: &["x1=entry"],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::BadAddress,
                Error::InvalidArgument,
                Error::NotFound,
                Error::InvalidImage,
                Error::InvalidState,
            ],
        },
        SubOpSpec {
            name: Op::LoadImageFromMemory.name(),
            value: Some(Op::LoadImageFromMemory.raw()),
            args: &["x2=domid", "x3=image", "x4=len"],
            returns: &["x1=entry"],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::BadAddress,
                Error::InvalidImage,
                Error::InvalidState,
            ],
        },
        SubOpSpec {
            name: Op::SetVcpuContext.name(),
            value: Some(Op::SetVcpuContext.raw()),
            args: &["x2=domid", "x3=vcpu", "x4=entry", "x5=size"],
            returns: &[],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::BadAddress,
                Error::InvalidArgument,
                Error::NotFound,
                Error::InvalidState,
            ],
        },
        SubOpSpec {
            name: Op::Unpause.name(),
            value: Some(Op::Unpause.raw()),
            args: &["x2=domid"],
            returns: &[],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::InvalidState,
            ],
        },
        SubOpSpec {
            name: Op::Pause.name(),
            value: Some(Op::Pause.raw()),
            args: &["x2=domid"],
            returns: &[],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::InvalidState,
            ],
        },
        SubOpSpec {
            name: Op::Destroy.name(),
            value: Some(Op::Destroy.raw()),
            args: &["x2=domid"],
            returns: &[],
            errors: &[Error::PermissionDenied, Error::NoSuchDomain, Error::Busy],
        },
        SubOpSpec {
            name: Op::GetInfo.name(),
            value: Some(Op::GetInfo.raw()),
            args: &["x2=domid", "x3=info", "x4=size"],
            returns: &[],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::BadAddress,
                Error::InvalidArgument,
            ],
        },
        SubOpSpec {
            name: Op::List.name(),
            value: Some(Op::List.raw()),
            args: &["x2=array", "x3=capacity", "x4=entry_size", "x5=first_domid"],
            returns: &["x1=written", "x2=total"],
            errors: &[
                Error::PermissionDenied,
                Error::BadAddress,
                Error::InvalidArgument,
            ],
        },
        SubOpSpec {
            name: Op::Physinfo.name(),
            value: Some(Op::Physinfo.raw()),
            args: &[],
            returns: &["x1=total_pages", "x2=free_pages", "x3=cpus"],
            errors: &[Error::PermissionDenied],
        },
        SubOpSpec {
            name: Op::SchedGet.name(),
            value: Some(Op::SchedGet.raw()),
            args: &["x2=domid"],
            returns: &["x1=weight", "x2=cap"],
            errors: &[Error::PermissionDenied, Error::NoSuchDomain],
        },
        SubOpSpec {
            name: Op::SchedSet.name(),
            value: Some(Op::SchedSet.raw()),
            args: &["x2=domid", "x3=weight", "x4=cap"],
            returns: &[],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::InvalidArgument,
            ],
        },
        SubOpSpec {
            name: Op::VcpuAffinity.name(),
            value: Some(Op::VcpuAffinity.raw()),
            args: &["x2=domid", "x3=vcpu", "x4=cpus"],
            returns: &["x1=old_cpus"],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::NotFound,
                Error::InvalidArgument,
            ],
        },
        SubOpSpec {
            name: Op::SetWallclock.name(),
            value: Some(Op::SetWallclock.raw()),
            args: &["x2=sec", "x3=nsec", "x4=counter"],
            returns: &[],
            errors: &[Error::PermissionDenied, Error::InvalidArgument],
        },
        SubOpSpec {
            name: Op::SetStore.name(),
            value: Some(Op::SetStore.raw()),
            args: &["x2=domid", "x3=store_domid", "x4=gref", "x5=port"],
            returns: &[],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::InvalidArgument,
                Error::InvalidState,
            ],
        },
        SubOpSpec {
            name: Op::VcpuInfo.name(),
            value: Some(Op::VcpuInfo.raw()),
            args: &["x2=domid", "x3=vcpu"],
            returns: &["x1=state_cpu", "x2=time_ns", "x3=cpus"],
            errors: &[
                Error::PermissionDenied,
                Error::NoSuchDomain,
                Error::NotFound,
            ],
        },
    ],
};
