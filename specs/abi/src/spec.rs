//! Enumerable descriptions of the ABI, for tools and for the test that compares
//! this crate with the documents in `specs/`.
//!
//! Each family module owns its part ([`crate::console::SPEC`],
//! [`crate::domctl::LAYOUTS`], ...); this module gathers them. Unit tests check
//! that every description agrees with the enums and structs it describes.

use crate::call::Caller;
use crate::error::Error;

/// One sub-operation of a call, as one row of its table in `specs/hypercalls.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubOpSpec {
    /// snake_case name (`"write"`); `"-"` for a call without sub-operations.
    pub name: &'static str,
    /// Number passed in `x1`; `None` for a call without sub-operations.
    pub value: Option<u16>,
    /// Argument registers from `x2` on, each `"xN=name"`.
    pub args: &'static [&'static str],
    /// Result registers from `x1` on, each `"xN=name"`. `x0` is always the status.
    pub returns: &'static [&'static str],
    /// The errors it may return, besides `NotImplemented` (unknown call or sub-op),
    /// which any call may return.
    pub errors: &'static [Error],
}

/// One call (function id) and its sub-operations: one `###` section of
/// `specs/hypercalls.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSpec {
    /// snake_case name (`"console_io"`).
    pub name: &'static str,
    /// ABI major (bits 15:12 of the function id).
    pub major: u16,
    /// Call number (bits 11:0 of the function id).
    pub call: u16,
    /// Who may make it.
    pub caller: Caller,
    /// The sub-operations, in numeric order.
    pub sub_ops: &'static [SubOpSpec],
}

/// Direction of a field of a shared structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Written by the guest, read by the hypervisor.
    In,
    /// Written by the hypervisor, read by the guest.
    Out,
    /// Reserved: must be zero when written, ignored when read. Future minor
    /// versions may give it a meaning where zero keeps the old behaviour.
    Reserved,
}

impl Dir {
    /// The name used in the `dir` column of `specs/layouts.md`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::In => "IN",
            Self::Out => "OUT",
            Self::Reserved => "RSVD",
        }
    }
}

/// One field of a shared structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDesc {
    /// The Rust field name.
    pub name: &'static str,
    /// Byte offset, from `core::mem::offset_of!`.
    pub offset: usize,
    /// Size in bytes of the field's type.
    pub size: usize,
    /// Who writes it.
    pub dir: Dir,
}

/// A shared structure: one `###` section of `specs/layouts.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutDesc {
    /// The Rust type name.
    pub name: &'static str,
    /// `size_of` the type.
    pub size: usize,
    /// Every field, in offset order. Padding is explicit, so fields tile the type.
    pub fields: &'static [FieldDesc],
}

/// Describes a `#[repr(C)]` struct field by field. Each entry names the field's
/// type, which is checked against the struct at compile time.
macro_rules! layout_desc {
    ($s:ident { $($f:ident: $t:ty => $dir:ident),* $(,)? }) => {
        $crate::spec::LayoutDesc {
            name: stringify!($s),
            size: core::mem::size_of::<$s>(),
            fields: &[$({
                const _: fn(&$s) -> &$t = |s| &s.$f;
                $crate::spec::FieldDesc {
                    name: stringify!($f),
                    offset: core::mem::offset_of!($s, $f),
                    size: core::mem::size_of::<$t>(),
                    dir: $crate::spec::Dir::$dir,
                }
            }),*],
        }
    };
}
pub(crate) use layout_desc;

/// Whether an [`EnumDesc`] lists numbers or bit positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnumKind {
    /// A value enum: `### enum Name` in `specs/`, column `value`.
    Enum,
    /// A bit set: `### flags Name` in `specs/`, column `bit` (bit number).
    Flags,
}

/// A value enum or bit set carried in a register or a structure field (other
/// than calls and sub-operations, which [`CALLS`] covers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnumDesc {
    /// The Rust type name.
    pub name: &'static str,
    /// Numbers or bit positions.
    pub kind: EnumKind,
    /// `(specs/ name, number or bit)` pairs, in order.
    pub values: &'static [(&'static str, u64)],
}

/// Every value enum and bit set of the ABI.
pub const ENUMS: &[EnumDesc] = &[
    EnumDesc {
        name: "ShutdownReason",
        kind: EnumKind::Enum,
        values: crate::sched::ShutdownReason::VALUES,
    },
    EnumDesc {
        name: "DomainState",
        kind: EnumKind::Enum,
        values: crate::domctl::DomainState::VALUES,
    },
    EnumDesc {
        name: "VcpuRunState",
        kind: EnumKind::Enum,
        values: crate::domctl::VcpuRunState::VALUES,
    },
    EnumDesc {
        name: "DomainFlags",
        kind: EnumKind::Flags,
        values: crate::domctl::DomainFlags::BITS,
    },
    EnumDesc {
        name: "PortState",
        kind: EnumKind::Enum,
        values: crate::evtchn::PortState::VALUES,
    },
    EnumDesc {
        name: "Virq",
        kind: EnumKind::Enum,
        values: crate::evtchn::Virq::VALUES,
    },
    EnumDesc {
        name: "GrantFlags",
        kind: EnumKind::Flags,
        values: crate::grant::GrantFlags::BITS,
    },
    EnumDesc {
        name: "MapFlags",
        kind: EnumKind::Flags,
        values: crate::grant::MapFlags::BITS,
    },
    EnumDesc {
        name: "CopyFlags",
        kind: EnumKind::Flags,
        values: crate::grant::CopyFlags::BITS,
    },
    EnumDesc {
        name: "Features",
        kind: EnumKind::Flags,
        values: crate::version::Features::BITS,
    },
    EnumDesc {
        name: "StoreMsgType",
        kind: EnumKind::Enum,
        values: crate::store::StoreMsgType::VALUES,
    },
    EnumDesc {
        name: "StoreError",
        kind: EnumKind::Enum,
        values: crate::store::StoreError::VALUES,
    },
    EnumDesc {
        name: "XenbusState",
        kind: EnumKind::Enum,
        values: crate::store::XenbusState::VALUES,
    },
    EnumDesc {
        name: "BlkifOp",
        kind: EnumKind::Enum,
        values: crate::blkif::BlkifOp::VALUES,
    },
    EnumDesc {
        name: "BlkifStatus",
        kind: EnumKind::Enum,
        values: crate::blkif::BlkifStatus::VALUES,
    },
];

/// Every call: the `version` discovery call, then the calls of guest ABI major 1.
pub const CALLS: &[CallSpec] = &[
    crate::call::VERSION_SPEC,
    crate::console::SPEC,
    crate::sched::SPEC,
    crate::domctl::SPEC,
    crate::module::SPEC,
    crate::evtchn::SPEC,
    crate::vcpu::SPEC,
    crate::time::SPEC,
    crate::grant::SPEC,
];

/// Every shared structure.
pub const LAYOUTS: &[LayoutDesc] = &[
    crate::start_info::LAYOUT,
    crate::domctl::CREATE_DOMAIN_LAYOUT,
    crate::domctl::VCPU_ENTRY_LAYOUT,
    crate::domctl::DOMAIN_INFO_LAYOUT,
    crate::module::MODULE_INFO_LAYOUT,
    crate::evtchn::EVENT_PAGE_LAYOUT,
    crate::evtchn::VCPU_EVENTS_LAYOUT,
    crate::time::TIME_INFO_LAYOUT,
    crate::grant::GRANT_ENTRY_LAYOUT,
    crate::grant::COPY_PTR_LAYOUT,
    crate::grant::GRANT_COPY_LAYOUT,
    crate::store::MSG_HEADER_LAYOUT,
    crate::store::PAGE_LAYOUT,
    crate::blkif::SEGMENT_LAYOUT,
    crate::blkif::REQUEST_LAYOUT,
    crate::blkif::RESPONSE_LAYOUT,
    crate::netif::REQUEST_LAYOUT,
    crate::netif::RESPONSE_LAYOUT,
    crate::conif::PAGE_LAYOUT,
];

/// Named constants that `specs/` states numerically (memory map, limits, magic
/// numbers, SMCCC ids): `(name, value)`.
pub const CONSTANTS: &[(&str, u64)] = &[
    ("GUEST_RAM_BASE", crate::layout::GUEST_RAM_BASE),
    ("GUEST_RAM_MAX_SIZE", crate::layout::GUEST_RAM_MAX_SIZE),
    ("GUEST_RAM_MIN_SIZE", crate::layout::GUEST_RAM_MIN_SIZE),
    ("START_INFO_IPA", crate::layout::START_INFO_IPA),
    ("GUEST_IMAGE_BASE", crate::layout::GUEST_IMAGE_BASE),
    ("MAP_WINDOW_BASE", crate::layout::MAP_WINDOW_BASE),
    ("MAP_WINDOW_SIZE", crate::layout::MAP_WINDOW_SIZE),
    ("DEVICE_WINDOW_BASE", crate::layout::DEVICE_WINDOW_BASE),
    ("DEVICE_WINDOW_SIZE", crate::layout::DEVICE_WINDOW_SIZE),
    ("IPA_BITS", crate::layout::IPA_BITS as u64),
    ("PAGE_SIZE", crate::PAGE_SIZE),
    ("CONSOLE_WRITE_MAX", crate::console::WRITE_MAX),
    ("MODULE_READ_MAX", crate::module::READ_MAX),
    ("NAME_MAX", crate::strings::NAME_MAX as u64),
    ("MODULE_NAME_MAX", crate::module::NAME_MAX as u64),
    ("CMDLINE_MAX", crate::strings::CMDLINE_MAX as u64),
    ("START_INFO_MAGIC", crate::start_info::START_INFO_MAGIC),
    ("NO_RAM_PHYS_BASE", crate::start_info::NO_RAM_PHYS_BASE),
    ("NR_PORTS", crate::evtchn::NR_PORTS as u64),
    ("EVENT_VCPUS", crate::evtchn::EVENT_VCPUS as u64),
    ("POLL_MAX", crate::sched::POLL_MAX),
    ("GRANT_ENTRY_BYTES", crate::grant::GRANT_ENTRY_BYTES),
    (
        "GRANT_ENTRIES_PER_PAGE",
        crate::grant::GRANT_ENTRIES_PER_PAGE,
    ),
    ("GRANT_TABLE_MAX_PAGES", crate::grant::GRANT_TABLE_MAX_PAGES),
    ("MAPTRACK_MAX", crate::grant::MAPTRACK_MAX),
    ("COPY_BATCH_MAX", crate::grant::COPY_BATCH_MAX),
    ("STORE_RING_SIZE", crate::store::STORE_RING_SIZE as u64),
    ("STORE_PATH_MAX", crate::store::STORE_PATH_MAX as u64),
    ("STORE_VALUE_MAX", crate::store::STORE_VALUE_MAX as u64),
    ("STORE_PAYLOAD_MAX", crate::store::STORE_PAYLOAD_MAX as u64),
    (
        "STORE_HEADER_BYTES",
        crate::store::STORE_HEADER_BYTES as u64,
    ),
    ("STORE_PERMS_MAX", crate::store::STORE_PERMS_MAX as u64),
    ("STORE_NODE_QUOTA", crate::store::STORE_NODE_QUOTA as u64),
    ("STORE_WATCH_QUOTA", crate::store::STORE_WATCH_QUOTA as u64),
    ("STORE_OUTPUT_MAX", crate::store::STORE_OUTPUT_MAX as u64),
    ("NETIF_FRAME_MAX", crate::netif::NETIF_FRAME_MAX as u64),
    ("NETIF_FRAME_MIN", crate::netif::NETIF_FRAME_MIN as u64),
    ("NETIF_RING_SLOTS", crate::netif::NETIF_RING_SLOTS as u64),
    ("BLKIF_SECTOR_SIZE", crate::blkif::BLKIF_SECTOR_SIZE),
    (
        "BLKIF_SECTORS_PER_PAGE",
        crate::blkif::BLKIF_SECTORS_PER_PAGE,
    ),
    (
        "BLKIF_MAX_SEGMENTS",
        crate::blkif::BLKIF_MAX_SEGMENTS as u64,
    ),
    ("BLKIF_RING_SIZE", crate::blkif::BLKIF_RING_SIZE as u64),
    (
        "BLKIF_MAX_PERSISTENT",
        crate::blkif::BLKIF_MAX_PERSISTENT as u64,
    ),
    ("SCHED_WEIGHT_DEFAULT", crate::domctl::SCHED_WEIGHT_DEFAULT),
    ("NO_CPU", crate::domctl::NO_CPU),
    ("SCHED_WEIGHT_MAX", crate::domctl::SCHED_WEIGHT_MAX),
    ("SMCCC_VERSION", crate::smccc::SMCCC_VERSION as u64),
    (
        "SMCCC_ARCH_FEATURES",
        crate::smccc::SMCCC_ARCH_FEATURES as u64,
    ),
    ("PSCI_VERSION", crate::smccc::PSCI_VERSION as u64),
    (
        "VENDOR_HYP_CALL_COUNT",
        crate::smccc::VENDOR_HYP_CALL_COUNT as u64,
    ),
    (
        "VENDOR_HYP_CALL_UID",
        crate::smccc::VENDOR_HYP_CALL_UID as u64,
    ),
    (
        "VENDOR_HYP_REVISION",
        crate::smccc::VENDOR_HYP_REVISION as u64,
    ),
    (
        "VENDOR_HYP_CALL_COUNT_VALUE",
        crate::smccc::VENDOR_HYP_CALL_COUNT_VALUE,
    ),
    ("TERN_UID_REG0", crate::smccc::TERN_UID_REGS[0] as u64),
    ("TERN_UID_REG1", crate::smccc::TERN_UID_REGS[1] as u64),
    ("TERN_UID_REG2", crate::smccc::TERN_UID_REGS[2] as u64),
    ("TERN_UID_REG3", crate::smccc::TERN_UID_REGS[3] as u64),
];

/// Checks a sub-op table against the enum it describes: same names and numbers,
/// same order. Used by each family's unit tests.
#[cfg(test)]
pub(crate) fn assert_sub_ops_match(spec: &CallSpec, all: &[(&str, u16)]) {
    assert_eq!(spec.sub_ops.len(), all.len(), "{}", spec.name);
    for (row, &(name, value)) in spec.sub_ops.iter().zip(all) {
        assert_eq!(row.name, name, "{}", spec.name);
        assert_eq!(row.value, Some(value), "{}.{}", spec.name, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_tile_their_types() {
        for l in LAYOUTS {
            let mut at = 0;
            for f in l.fields {
                assert_eq!(
                    f.offset, at,
                    "{}.{} leaves a gap or overlaps",
                    l.name, f.name
                );
                at += f.size;
            }
            assert_eq!(at, l.size, "{} has undescribed bytes at the end", l.name);
            assert_eq!(l.size % 8, 0, "{} size is not a multiple of 8", l.name);
        }
    }

    #[test]
    fn flag_tables_match_all() {
        use crate::domctl::DomainFlags;
        use crate::version::Features;
        assert_eq!(DomainFlags::BITS.len(), DomainFlags::ALL.len());
        for (&(n, b), &(n2, b2, f)) in DomainFlags::BITS.iter().zip(DomainFlags::ALL) {
            assert_eq!((n, b), (n2, u64::from(b2)));
            assert_eq!(u64::from(f.bits()), 1 << b);
        }
        for (&(n, b), &(n2, b2, f)) in Features::BITS.iter().zip(Features::ALL) {
            assert_eq!((n, b), (n2, u64::from(b2)));
            assert_eq!(f.bits(), 1 << b);
        }
    }

    #[test]
    fn calls_match_enum() {
        let major1: std::vec::Vec<_> = CALLS.iter().filter(|c| c.major == 1).collect();
        assert_eq!(major1.len(), crate::Call::ALL.len());
        for (spec, &call) in major1.iter().zip(crate::Call::ALL) {
            assert_eq!(spec.name, call.name());
            assert_eq!(spec.call, call.raw());
            assert_eq!(spec.caller, call.caller());
        }
        for c in CALLS {
            for s in c.sub_ops {
                for a in s.args.iter().chain(s.returns) {
                    assert!(
                        a.starts_with('x') && a.contains('='),
                        "{}.{}: {a}",
                        c.name,
                        s.name
                    );
                }
                assert!(!s.errors.contains(&Error::NotImplemented), "implicit");
                if c.caller == Caller::Dom0 {
                    assert!(
                        s.errors.contains(&Error::PermissionDenied),
                        "{}.{}",
                        c.name,
                        s.name
                    );
                }
            }
        }
    }
}
