//! What a request may ask of a virtual disk: the checks of `specs/blkif.md`
//! ("What the back end checks"), in order, on a request already copied out
//! of the ring.

use pv_guest_sdk::abi::blkif::{
    BLKIF_MAX_SEGMENTS, BLKIF_SECTOR_SIZE, BLKIF_SECTORS_PER_PAGE, BlkifOp, BlkifRequest,
    BlkifStatus,
};
use pv_guest_sdk::abi::grant::GrantRef;

/// A virtual disk as its front end sees it: a whole real disk or a region
/// of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VDisk {
    /// The region's first sector on the real disk (512-byte sectors).
    pub start: u64,
    /// Sectors of the virtual disk.
    pub sectors: u64,
    /// Whether writes are refused.
    pub read_only: bool,
    /// Whether the `flush` op is offered.
    pub flush: bool,
}

impl VDisk {
    /// The virtual disk a `disk` entry asks for on a real disk of
    /// `capacity` sectors: `sectors` from `start` (`None`: to the end).
    /// `None` if the region does not lie within the real disk.
    pub fn region(
        capacity: u64,
        start: u64,
        sectors: Option<u64>,
        read_only: bool,
        flush: bool,
    ) -> Option<Self> {
        let sectors = match sectors {
            Some(n) => n,
            None => capacity.checked_sub(start)?,
        };
        let end = start.checked_add(sectors)?;
        (sectors > 0 && end <= capacity).then_some(Self {
            start,
            sectors,
            read_only,
            flush,
        })
    }
}

/// One segment of a checked request: where its bytes are in the front end's
/// page. Eight bytes, so that a [`Checked`] request (moved between the
/// ring, the queue and the completion) stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seg {
    /// The granted page.
    pub gref: GrantRef,
    /// Byte offset in the page (below a page: fits 16 bits).
    offset: u16,
    /// Bytes, whole sectors (at most a page: fits 16 bits).
    bytes: u16,
}

impl Seg {
    /// Byte offset in the page.
    pub fn offset(&self) -> usize {
        usize::from(self.offset)
    }
    /// Bytes (whole sectors).
    pub fn bytes(&self) -> usize {
        usize::from(self.bytes)
    }
}

// A page's offsets and a page's length both fit the 16-bit fields.
const _: () = assert!(BLKIF_SECTORS_PER_PAGE * BLKIF_SECTOR_SIZE <= u16::MAX as u64);

/// A request that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// What to do.
    pub op: BlkifOp,
    /// First sector on the **real** disk (the region's offset applied).
    pub sector: u64,
    /// The segments, in disk order (the first `nr` count).
    pub segs: [Seg; BLKIF_MAX_SEGMENTS],
    /// Segments used.
    pub nr: usize,
    /// Bytes moved (sum of the segments').
    pub bytes: usize,
}

impl Checked {
    /// The used segments.
    pub fn segments(&self) -> &[Seg] {
        &self.segs[..self.nr]
    }
}

const NO_SEG: Seg = Seg {
    gref: GrantRef(0),
    offset: 0,
    bytes: 0,
};

/// Checks `req` against `disk`; the first failure is the status to answer
/// with, and then nothing may be read or written.
pub fn check(req: &BlkifRequest, disk: &VDisk) -> Result<Checked, BlkifStatus> {
    let op = BlkifOp::from_raw(req.op).ok_or(BlkifStatus::BadRequest)?;
    if op == BlkifOp::Flush && !disk.flush {
        return Err(BlkifStatus::NotSupported);
    }
    let nr = usize::from(req.nr_segments);
    let min = if op == BlkifOp::Flush { 0 } else { 1 };
    if nr < min || nr > BLKIF_MAX_SEGMENTS {
        return Err(BlkifStatus::BadRequest);
    }
    let mut segs = [NO_SEG; BLKIF_MAX_SEGMENTS];
    let mut count = 0u64;
    for (out, s) in segs.iter_mut().zip(&req.segments[..nr]) {
        let n = s.sectors().ok_or(BlkifStatus::BadRequest)?;
        // `sectors` checked `first_sect <= last_sect < BLKIF_SECTORS_PER_PAGE`:
        // both products are at most a page, which the fields hold.
        *out = Seg {
            gref: GrantRef(s.gref),
            offset: (u64::from(s.first_sect) * BLKIF_SECTOR_SIZE) as u16,
            bytes: (n * BLKIF_SECTOR_SIZE) as u16,
        };
        count += n;
    }
    let writes = op == BlkifOp::Write || (op == BlkifOp::Flush && nr > 0);
    if writes && disk.read_only {
        return Err(BlkifStatus::ReadOnly);
    }
    // A flush without data names no sectors; its `sector` is ignored.
    let sector = if count == 0 {
        disk.start
    } else {
        match req.sector.checked_add(count) {
            Some(end) if end <= disk.sectors => disk.start + req.sector,
            _ => return Err(BlkifStatus::OutOfRange),
        }
    };
    Ok(Checked {
        op,
        sector,
        segs,
        nr,
        bytes: count as usize * BLKIF_SECTOR_SIZE as usize,
    })
}
