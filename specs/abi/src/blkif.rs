//! The block-device interface between a front end (the domain that uses a
//! virtual disk) and a back end (dom0, which owns the real disk):
//! `specs/blkif.md` is the normative description. The design is Xen's
//! `io/blkif.h`, reduced to read, write and flush.
//!
//! The two ends talk over one `tern_abi::ring` ring of [`BlkifRequest`] /
//! [`BlkifResponse`] and one event channel, set up with the store handshake
//! (`specs/store.md`, device type [`DEVICE_KIND`]). Data does not travel in
//! the ring: each request names up to [`BLKIF_MAX_SEGMENTS`] pages the front
//! end granted to the back end, and which 512-byte sectors of each page
//! ([`BlkifSegment`]) hold the data. The segments of one request are
//! consecutive on the disk, starting at `sector`.
//!
//! In the field docs, IN means written by the front end, OUT by the back end.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ring::ring_size;
use crate::spec::{LayoutDesc, layout_desc};

/// The device type in store paths (`device/vbd/<n>`, `backend/vbd/<F>/<n>`).
pub const DEVICE_KIND: &str = "vbd";
/// Bytes of the sector unit of requests (whatever the real disk's sector).
pub const BLKIF_SECTOR_SIZE: u64 = 512;
/// Sectors of [`BLKIF_SECTOR_SIZE`] in one page: a segment's `last_sect` is
/// below this.
pub const BLKIF_SECTORS_PER_PAGE: u64 = crate::PAGE_SIZE / BLKIF_SECTOR_SIZE;
/// Most segments (granted pages) of one request (Xen's
/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`): a request moves at most 44 KiB.
pub const BLKIF_MAX_SEGMENTS: usize = 11;
/// Slots of a block ring (requests in flight at most).
pub const BLKIF_RING_SIZE: u32 = ring_size(size_of::<BlkifRequest>());

abi_enum! {
    /// `BlkifRequest::op`.
    pub enum BlkifOp: u8, unknown = InvalidArgument {
        /// Read the sectors into the segments.
        Read = 0 => "read",
        /// Write the segments' sectors. Answered once the real disk has
        /// completed the write (not necessarily durable: see `flush`).
        Write = 1 => "write",
        /// Make every write answered so far durable. With segments, first
        /// writes them like `write`: answered once they are durable.
        Flush = 3 => "flush",
    }
}

abi_enum! {
    /// `BlkifResponse::status`.
    pub enum BlkifStatus: u16, unknown = InvalidArgument {
        /// Done.
        Okay = 0 => "okay",
        /// The real disk reported an error; the data may be partly moved.
        IoError = 1 => "io_error",
        /// A write (or flush with segments) to a read-only disk.
        ReadOnly = 2 => "read_only",
        /// Sectors beyond the end of the virtual disk.
        OutOfRange = 3 => "out_of_range",
        /// A malformed request: unknown op, no or too many segments, a
        /// segment outside its page, a grant the back end cannot copy.
        BadRequest = 4 => "bad_request",
        /// An op the back end does not offer (`feature-flush` = 0).
        NotSupported = 5 => "not_supported",
    }
}

/// One page of a request's data.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct BlkifSegment {
    /// IN: grant reference of the page, in the front end's table, granted
    /// to the back end (read-write for reads).
    pub gref: u32,
    /// IN: first sector (of 512 bytes) of the page that holds data.
    pub first_sect: u8,
    /// IN: last sector of the page that holds data (inclusive; at least
    /// `first_sect`, below [`BLKIF_SECTORS_PER_PAGE`]).
    pub last_sect: u8,
    /// Zero.
    pub reserved: [u8; 2],
}

impl BlkifSegment {
    /// Sectors this segment covers, if it is well formed.
    pub const fn sectors(&self) -> Option<u64> {
        if self.first_sect > self.last_sect || self.last_sect as u64 >= BLKIF_SECTORS_PER_PAGE {
            None
        } else {
            Some((self.last_sect - self.first_sect) as u64 + 1)
        }
    }
}

/// A request, in one ring slot.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct BlkifRequest {
    /// IN: chosen by the front end, echoed in the response.
    pub id: u64,
    /// IN: first sector (of 512 bytes) of the virtual disk.
    pub sector: u64,
    /// IN: a [`BlkifOp`].
    pub op: u8,
    /// IN: segments used (1..=11 for read and write, 0..=11 for flush).
    pub nr_segments: u8,
    /// Zero.
    pub reserved: [u8; 6],
    /// IN: the data pages, in disk order; only the first `nr_segments`
    /// count.
    pub segments: [BlkifSegment; BLKIF_MAX_SEGMENTS],
}

/// The answer to one request, in the slot the request had.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct BlkifResponse {
    /// OUT: the request's `id`.
    pub id: u64,
    /// OUT: the request's `op`, as it came.
    pub op: u8,
    /// Zero.
    pub reserved0: u8,
    /// OUT: a [`BlkifStatus`].
    pub status: u16,
    /// Zero.
    pub reserved1: u32,
}

/// Store keys the back end writes in its directory before `InitWait`
/// (`specs/blkif.md`): `(key, meaning)`.
pub const BACKEND_KEYS: &[(&str, &str)] = &[
    (KEY_SECTORS, "size of the virtual disk in 512-byte sectors"),
    (KEY_SECTOR_SIZE, "the real disk's sector size in bytes"),
    (KEY_MODE, "`r` (read-only) or `w` (read-write)"),
    (KEY_FEATURE_FLUSH, "`1` if flush is offered, else `0`"),
    (
        KEY_FEATURE_PERSISTENT,
        "`1` if the back end keeps granted data pages mapped",
    ),
];
/// Back-end key: capacity in 512-byte sectors (decimal).
pub const KEY_SECTORS: &str = "sectors";
/// Back-end key: the real disk's sector size in bytes (decimal).
pub const KEY_SECTOR_SIZE: &str = "sector-size";
/// Back-end key: `r` or `w`.
pub const KEY_MODE: &str = "mode";
/// Back-end key: `1` or `0`.
pub const KEY_FEATURE_FLUSH: &str = "feature-flush";
/// Key of both directories: `1` if that end uses persistent grants (the
/// front end reuses a fixed pool of data pages, the back end keeps them
/// mapped); used only when both ends write `1`.
pub const KEY_FEATURE_PERSISTENT: &str = "feature-persistent";
/// Most data pages the back end keeps mapped for one virtual disk; pages
/// past it are mapped for each request.
pub const BLKIF_MAX_PERSISTENT: usize = 64;

/// Field table of [`BlkifSegment`].
pub const SEGMENT_LAYOUT: LayoutDesc = layout_desc!(BlkifSegment {
    gref: u32 => In,
    first_sect: u8 => In,
    last_sect: u8 => In,
    reserved: [u8; 2] => Reserved,
});

/// Field table of [`BlkifRequest`].
pub const REQUEST_LAYOUT: LayoutDesc = layout_desc!(BlkifRequest {
    id: u64 => In,
    sector: u64 => In,
    op: u8 => In,
    nr_segments: u8 => In,
    reserved: [u8; 6] => Reserved,
    segments: [BlkifSegment; BLKIF_MAX_SEGMENTS] => In,
});

/// Field table of [`BlkifResponse`].
pub const RESPONSE_LAYOUT: LayoutDesc = layout_desc!(BlkifResponse {
    id: u64 => Out,
    op: u8 => Out,
    reserved0: u8 => Reserved,
    status: u16 => Out,
    reserved1: u32 => Reserved,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fit_the_ring() {
        assert_eq!(size_of::<BlkifSegment>(), 8);
        assert_eq!(size_of::<BlkifRequest>(), 112);
        assert_eq!(size_of::<BlkifResponse>(), 16);
        assert_eq!(BLKIF_RING_SIZE, 32);
        assert_eq!(BLKIF_SECTORS_PER_PAGE, 8);
    }

    #[test]
    fn segment_sectors() {
        let s = |first_sect, last_sect| BlkifSegment {
            gref: 0,
            first_sect,
            last_sect,
            reserved: [0; 2],
        };
        assert_eq!(s(0, 7).sectors(), Some(8));
        assert_eq!(s(3, 3).sectors(), Some(1));
        assert_eq!(s(4, 3).sectors(), None);
        assert_eq!(s(0, 8).sectors(), None);
        assert_eq!(s(255, 255).sectors(), None);
    }

    #[test]
    fn ops_and_statuses_decode() {
        assert_eq!(BlkifOp::from_raw(3), Some(BlkifOp::Flush));
        assert_eq!(BlkifOp::from_raw(2), None);
        assert_eq!(BlkifStatus::from_raw(2), Some(BlkifStatus::ReadOnly));
        assert_eq!(BlkifStatus::from_raw(6), None);
    }
}
