//! `grant_op` (guest ABI major 1, call 8): grant tables.
//!
//! The model is Xen's grant tables, version 1. Each domain keeps a **grant
//! table** in pages of its own RAM that it registers with
//! [`Op::SetupTable`]: an array of [`GrantEntry`]. Entry `r` (its
//! [`GrantRef`]) says "domain `domid` may access my page `frame`", read-only
//! or read-write. The granting domain writes its entries itself; the
//! hypervisor only reads them and maintains two in-use bits
//! ([`GrantFlags::READING`], [`GrantFlags::WRITING`]) with atomic operations.
//!
//! The named domain may then [`Op::Map`] the page into its own
//! guest-physical space (the hypervisor picks the address, inside
//! [`crate::layout::MAP_WINDOW_BASE`]) and later [`Op::Unmap`] it by handle,
//! or [`Op::Copy`] bytes between granted pages and its own RAM without
//! mapping anything.
//!
//! Granting (the granter, on its own table):
//! 1. write `frame` and `domid`;
//! 2. write `flags` = `PERMIT_ACCESS` (| `READONLY`) with a release store.
//!
//! Revoking: atomically (compare-and-swap on the 64-bit word holding `flags`
//! and `domid`) replace the word by 0 **only if** neither `READING` nor
//! `WRITING` is set. If one is, the grant is mapped or being copied: the
//! grant stays, and revoking fails (the SDK reports `Busy`).
//!
//! Mapping (the hypervisor): atomically set `READING` (and `WRITING` for a
//! writable mapping) in the entry's first word, then check the old value:
//! `PERMIT_ACCESS` set, `domid` = the caller, and `READONLY` clear for a
//! writable mapping. If a check fails it clears the bits again (unless its
//! own mappings of that entry hold them) and refuses. The bits stay set
//! while any mapping of the entry exists; the hypervisor's own count, not
//! the bits, decides when the page may be released.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::Error;
use crate::call::Call;
use crate::spec::{CallSpec, LayoutDesc, SubOpSpec, layout_desc};

/// A grant reference: an index into the granting domain's grant table.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
)]
#[repr(transparent)]
pub struct GrantRef(pub u32);

impl GrantRef {
    /// Decodes an argument register: [`Error::NotFound`] if it does not fit
    /// 32 bits (no table has that many entries).
    pub const fn from_reg(reg: u64) -> Result<Self, Error> {
        if reg > u32::MAX as u64 {
            Err(Error::NotFound)
        } else {
            Ok(Self(reg as u32))
        }
    }
}

/// Bytes of one [`GrantEntry`].
pub const GRANT_ENTRY_BYTES: u64 = size_of::<GrantEntry>() as u64;
/// Grant entries per table page.
pub const GRANT_ENTRIES_PER_PAGE: u64 = crate::PAGE_SIZE / GRANT_ENTRY_BYTES;
/// Most pages a grant table may have (so at most 4096 entries).
pub const GRANT_TABLE_MAX_PAGES: u64 = 16;
/// Most foreign pages one domain may have mapped at once; also the number of
/// pages of the mapping window that grant mappings use.
pub const MAPTRACK_MAX: u64 = 1024;
/// Most operations in one [`Op::Copy`] batch.
pub const COPY_BATCH_MAX: u64 = 64;

abi_flags! {
    /// `GrantEntry::flags`. The bit numbers are Xen's (`GTF_*`).
    pub struct GrantFlags: u32 {
        /// Set by the granter: `domid` may access `frame`.
        const PERMIT_ACCESS = 0 => "permit_access";
        /// Set by the granter: read-only access only.
        const READONLY = 2 => "readonly";
        /// Set by the hypervisor: the grant is mapped or being copied from.
        const READING = 3 => "reading";
        /// Set by the hypervisor: the grant is mapped writable or being
        /// copied to.
        const WRITING = 4 => "writing";
    }
}

impl GrantFlags {
    /// The bits only the hypervisor sets.
    pub const IN_USE: Self = Self::READING.union(Self::WRITING);
}

/// One entry of a grant table (Xen's `grant_entry_v1`, with a 32-bit domain
/// id and a 64-bit frame number). `flags` and `domid` share the first 64-bit
/// word, which both sides change atomically.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct GrantEntry {
    /// IN (granter) / OUT (`READING`, `WRITING`, hypervisor): [`GrantFlags`].
    pub flags: u32,
    /// IN: the domain granted access.
    pub domid: u32,
    /// IN: the granted page, as a frame number of the granter's RAM
    /// (guest-physical address / [`crate::PAGE_SIZE`]).
    pub frame: u64,
}

impl GrantEntry {
    /// The first word as the hypervisor and the SDK change it atomically.
    pub const fn word0(flags: GrantFlags, domid: u32) -> u64 {
        (domid as u64) << 32 | flags.bits() as u64
    }

    /// Splits a first word into flags and domain id.
    pub const fn split_word0(w: u64) -> (GrantFlags, u32) {
        (GrantFlags::from_bits_retain(w as u32), (w >> 32) as u32)
    }
}

abi_flags! {
    /// `x4` of [`Op::Map`].
    pub struct MapFlags: u64 {
        /// Map read-only (else read-write, which a read-only grant refuses).
        const READONLY = 0 => "readonly";
    }
}

/// A mapping handle returned by [`Op::Map`]: the slot in bits 31:0 (which
/// also gives the address: [`map_ipa`]) and a generation in bits 63:32, so
/// a handle that was unmapped stays invalid when its slot is reused.
pub const fn handle(slot: u32, generation: u32) -> u64 {
    (generation as u64) << 32 | slot as u64
}

/// Splits a handle into slot and generation.
pub const fn split_handle(h: u64) -> (u32, u32) {
    (h as u32, (h >> 32) as u32)
}

/// The guest-physical address of mapping slot `slot`.
pub const fn map_ipa(slot: u32) -> u64 {
    crate::layout::MAP_WINDOW_BASE + slot as u64 * crate::PAGE_SIZE
}

/// One end of a [`GrantCopy`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct CopyPtr {
    /// IN: with the matching `*_GREF` flag, the granting domain; else 0.
    pub domid: u32,
    /// IN: with the matching `*_GREF` flag, the grant reference; else 0.
    pub gref: u32,
    /// IN: with the flag, the byte offset in the granted page; without, the
    /// guest-physical address in the caller's own RAM.
    pub offset: u64,
}

abi_flags! {
    /// `GrantCopy::flags`.
    pub struct CopyFlags: u16 {
        /// `src` names a grant (else the caller's RAM).
        const SRC_GREF = 0 => "src_gref";
        /// `dst` names a grant (else the caller's RAM).
        const DST_GREF = 1 => "dst_gref";
    }
}

/// One operation of an [`Op::Copy`] batch.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct GrantCopy {
    /// IN: where the bytes come from.
    pub src: CopyPtr,
    /// IN: where they go.
    pub dst: CopyPtr,
    /// IN: bytes to copy; neither range may cross a page boundary.
    pub len: u16,
    /// IN: [`CopyFlags`].
    pub flags: u16,
    /// OUT: 0, or the error status of this operation.
    pub status: i32,
}

abi_enum! {
    /// Sub-operations of `grant_op`, in `x1`.
    pub enum Op: u16, unknown = NotImplemented {
        /// Register the caller's grant table: `x2` = IPA of the first page
        /// (page-aligned), `x3` = pages (1..=GRANT_TABLE_MAX_PAGES), a range
        /// of the caller's RAM. Replaces an earlier table if none of its
        /// grants is mapped.
        /// Errors: `InvalidArgument` (0 pages), `TooBig`, `BadAddress`,
        /// `Busy` (a grant of the old table is mapped).
        SetupTable = 0 => "setup_table",
        /// `x1` = pages of the caller's table (0 if none), `x2` =
        /// GRANT_TABLE_MAX_PAGES. No errors.
        QuerySize = 1 => "query_size",
        /// Map grant `x3` of domain `x2` with [`MapFlags`] `x4`. Returns
        /// `x1` = handle, `x2` = the IPA where the page now appears, `x3` =
        /// the page's machine address for dom0 (its devices' DMA), else 0.
        /// Errors: `NoSuchDomain`, `InvalidArgument` (unknown flag),
        /// `InvalidState` (no table), `NotFound` (ref beyond the table),
        /// `PermissionDenied`, `BadAddress` (frame not in the granter's
        /// RAM), `TooBig` (MAPTRACK_MAX mappings), `NoMemory`.
        Map = 2 => "map",
        /// Unmap handle `x2`. Errors: `NotFound` (no such mapping).
        Unmap = 3 => "unmap",
        /// Run `x3` [`GrantCopy`] operations from the array at IPA `x2`
        /// (8-byte aligned, caller's RAM), each writing its own status.
        /// Returns `x1` = the number that failed.
        /// Errors: `BadAddress` (the array), `InvalidArgument` (count 0),
        /// `TooBig` (count above COPY_BATCH_MAX).
        Copy = 4 => "copy",
    }
}

/// Field table of [`GrantEntry`].
pub const GRANT_ENTRY_LAYOUT: LayoutDesc = layout_desc!(GrantEntry {
    flags: u32 => In,
    domid: u32 => In,
    frame: u64 => In,
});

/// Field table of [`CopyPtr`].
pub const COPY_PTR_LAYOUT: LayoutDesc = layout_desc!(CopyPtr {
    domid: u32 => In,
    gref: u32 => In,
    offset: u64 => In,
});

/// Field table of [`GrantCopy`].
pub const GRANT_COPY_LAYOUT: LayoutDesc = layout_desc!(GrantCopy {
    src: CopyPtr => In,
    dst: CopyPtr => In,
    len: u16 => In,
    flags: u16 => In,
    status: i32 => Out,
});

const fn row(
    op: Op,
    args: &'static [&'static str],
    returns: &'static [&'static str],
    errors: &'static [Error],
) -> SubOpSpec {
    SubOpSpec {
        name: op.name(),
        value: Some(op.raw()),
        args,
        returns,
        errors,
    }
}

/// Description of `grant_op` for `specs/hypercalls.md`.
pub const SPEC: CallSpec = CallSpec {
    name: Call::GrantOp.name(),
    major: Call::MAJOR,
    call: Call::GrantOp.raw(),
    caller: Call::GrantOp.caller(),
    sub_ops: &[
        row(
            Op::SetupTable,
            &["x2=ipa", "x3=pages"],
            &[],
            &[
                Error::InvalidArgument,
                Error::TooBig,
                Error::BadAddress,
                Error::Busy,
            ],
        ),
        row(Op::QuerySize, &[], &["x1=pages", "x2=max_pages"], &[]),
        row(
            Op::Map,
            &["x2=domid", "x3=ref", "x4=flags"],
            &["x1=handle", "x2=ipa", "x3=machine"],
            &[
                Error::NoSuchDomain,
                Error::InvalidArgument,
                Error::InvalidState,
                Error::NotFound,
                Error::PermissionDenied,
                Error::BadAddress,
                Error::TooBig,
                Error::NoMemory,
            ],
        ),
        row(Op::Unmap, &["x2=handle"], &[], &[Error::NotFound]),
        row(
            Op::Copy,
            &["x2=ops", "x3=count"],
            &["x1=failed"],
            &[Error::BadAddress, Error::InvalidArgument, Error::TooBig],
        ),
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

    #[test]
    fn sizes_words_and_handles() {
        assert_eq!(GRANT_ENTRY_BYTES, 16);
        assert_eq!(GRANT_ENTRIES_PER_PAGE, 256);
        assert_eq!(size_of::<GrantCopy>(), 40);
        let w = GrantEntry::word0(GrantFlags::PERMIT_ACCESS | GrantFlags::READONLY, 7);
        assert_eq!(w, 7 << 32 | 0b101);
        assert_eq!(
            GrantEntry::split_word0(w),
            (GrantFlags::PERMIT_ACCESS | GrantFlags::READONLY, 7)
        );
        // The first word of an entry in memory is `flags | domid << 32`.
        let e = GrantEntry {
            flags: 0b101,
            domid: 7,
            frame: 0,
        };
        assert_eq!(u64::from_le_bytes(e.as_bytes()[..8].try_into().unwrap()), w);
        assert_eq!(split_handle(handle(5, 9)), (5, 9));
        assert_eq!(map_ipa(1), crate::layout::MAP_WINDOW_BASE + 4096);
        assert!(
            map_ipa(MAPTRACK_MAX as u32)
                <= crate::layout::MAP_WINDOW_BASE + crate::layout::MAP_WINDOW_SIZE
        );
        assert_eq!(GrantRef::from_reg(1 << 32), Err(Error::NotFound));
    }
}
