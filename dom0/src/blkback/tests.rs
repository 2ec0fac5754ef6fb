//! Host tests of the block back end's logic: a real `tern_abi::ring` page
//! between a front end and [`super::engine::serve`], a disk in a vector,
//! grants in a map.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use pv_guest_sdk::abi::blkif::{
    BLKIF_MAX_SEGMENTS, BLKIF_RING_SIZE, BlkifOp, BlkifRequest, BlkifResponse, BlkifSegment,
    BlkifStatus,
};
use pv_guest_sdk::abi::ring::{Back, Front, RingError, SharedRing};
use std::boxed::Box;

use super::engine::{Backing, Grants, IoFailed, Pass, serve};
use super::request::{Seg, VDisk, check};

extern crate std;

const SECTOR: usize = 512;

/// A disk of `Vec<u8>` that logs what it did.
struct FakeDisk {
    bytes: Vec<u8>,
    log: Vec<(&'static str, u64, usize)>,
    fail: bool,
}

impl FakeDisk {
    fn new(sectors: usize) -> Self {
        Self {
            bytes: vec![0; sectors * SECTOR],
            log: Vec::new(),
            fail: false,
        }
    }
}

impl Backing for FakeDisk {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoFailed> {
        self.log.push(("read", sector, buf.len()));
        let at = sector as usize * SECTOR;
        buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoFailed> {
        self.log.push(("write", sector, buf.len()));
        if self.fail {
            return Err(IoFailed);
        }
        let at = sector as usize * SECTOR;
        self.bytes[at..at + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoFailed> {
        self.log.push(("flush", 0, 0));
        Ok(())
    }
}

/// The front end's granted pages, by reference; others fail to copy.
#[derive(Default)]
struct FakeGrants(BTreeMap<u32, Box<[u8; 4096]>>);

impl Grants for FakeGrants {
    fn copy_in(&mut self, segs: &[Seg], buf: &mut [u8]) -> bool {
        let mut at = 0;
        for s in segs {
            let Some(p) = self.0.get(&s.gref.0) else {
                return false;
            };
            buf[at..at + s.bytes()].copy_from_slice(&p[s.offset()..s.offset() + s.bytes()]);
            at += s.bytes();
        }
        true
    }
    fn copy_out(&mut self, segs: &[Seg], buf: &[u8]) -> bool {
        let mut at = 0;
        for s in segs {
            let Some(p) = self.0.get_mut(&s.gref.0) else {
                return false;
            };
            p[s.offset()..s.offset() + s.bytes()].copy_from_slice(&buf[at..at + s.bytes()]);
            at += s.bytes();
        }
        true
    }
}

fn seg(gref: u32, first_sect: u8, last_sect: u8) -> BlkifSegment {
    BlkifSegment {
        gref,
        first_sect,
        last_sect,
        reserved: [0; 2],
    }
}

fn req(id: u64, op: BlkifOp, sector: u64, segs: &[BlkifSegment]) -> BlkifRequest {
    let mut r = BlkifRequest {
        id,
        sector,
        op: op.raw(),
        nr_segments: segs.len() as u8,
        ..BlkifRequest::default()
    };
    r.segments[..segs.len()].copy_from_slice(segs);
    r
}

const RW: VDisk = VDisk {
    start: 100,
    sectors: 64,
    read_only: false,
    flush: true,
};

/// Pushes `reqs`, serves with `max`, returns the pass and the responses.
fn round(
    ring: &SharedRing,
    front: &mut Front<'_, BlkifRequest, BlkifResponse>,
    back: &mut Back<'_, BlkifRequest, BlkifResponse>,
    reqs: &[BlkifRequest],
    disk: &VDisk,
    fake: (&mut FakeDisk, &mut FakeGrants),
) -> (Result<Pass, RingError>, Vec<BlkifResponse>) {
    let _ = ring;
    for r in reqs {
        front.push(r).unwrap();
    }
    front.publish();
    let mut buf = Vec::new();
    let pass = serve(back, disk, fake.0, fake.1, &mut buf, usize::MAX);
    back.publish();
    let mut rsps = Vec::new();
    while let Ok(Some(r)) = front.take() {
        rsps.push(r);
    }
    (pass, rsps)
}

fn status(r: &BlkifResponse) -> BlkifStatus {
    BlkifStatus::from_raw(r.status).unwrap()
}

#[test]
fn writes_land_in_the_region_and_read_back() {
    let ring = Box::new(SharedRing::new());
    let mut front = Front::new(&ring);
    let mut back = Back::new(&ring);
    let mut disk = FakeDisk::new(256);
    let mut grants = FakeGrants::default();
    let mut page = Box::new([0u8; 4096]);
    for (i, b) in page.iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    grants.0.insert(5, page.clone());
    grants.0.insert(6, Box::new([0u8; 4096]));
    // Sectors 2..=5 of page 5 go to virtual sectors 10..14 (real 110..114).
    let w = req(1, BlkifOp::Write, 10, &[seg(5, 2, 5)]);
    let (pass, rsps) = round(
        &ring,
        &mut front,
        &mut back,
        &[w],
        &RW,
        (&mut disk, &mut grants),
    );
    assert_eq!(pass.unwrap().answered, 1);
    assert_eq!((rsps[0].id, status(&rsps[0])), (1, BlkifStatus::Okay));
    assert_eq!(disk.log, [("write", 110, 4 * SECTOR)]);
    assert_eq!(
        &disk.bytes[110 * SECTOR..114 * SECTOR],
        &page[2 * SECTOR..6 * SECTOR]
    );
    assert!(disk.bytes[..110 * SECTOR].iter().all(|&b| b == 0));
    // Read them back into sectors 4..=7 of page 6, with a flush.
    let r = req(2, BlkifOp::Read, 10, &[seg(6, 4, 7)]);
    let f = req(3, BlkifOp::Flush, 0, &[]);
    let (_, rsps) = round(
        &ring,
        &mut front,
        &mut back,
        &[r, f],
        &RW,
        (&mut disk, &mut grants),
    );
    assert_eq!(rsps.len(), 2);
    assert!(rsps.iter().all(|r| status(r) == BlkifStatus::Okay));
    assert_eq!(&grants.0[&6][4 * SECTOR..], &page[2 * SECTOR..6 * SECTOR]);
    assert_eq!(disk.log[1..], [("read", 110, 4 * SECTOR), ("flush", 0, 0)]);
}

#[test]
fn flush_with_data_writes_then_flushes_before_answering() {
    let ring = Box::new(SharedRing::new());
    let (mut front, mut back) = (Front::new(&ring), Back::new(&ring));
    let mut disk = FakeDisk::new(256);
    let mut grants = FakeGrants::default();
    grants.0.insert(1, Box::new([9u8; 4096]));
    grants.0.insert(2, Box::new([8u8; 4096]));
    let f = req(7, BlkifOp::Flush, 0, &[seg(1, 0, 7), seg(2, 0, 0)]);
    let (_, rsps) = round(
        &ring,
        &mut front,
        &mut back,
        &[f],
        &RW,
        (&mut disk, &mut grants),
    );
    assert_eq!(status(&rsps[0]), BlkifStatus::Okay);
    assert_eq!(disk.log, [("write", 100, 9 * SECTOR), ("flush", 0, 0)]);
    assert_eq!(disk.bytes[108 * SECTOR], 8);
    // A disk that fails the write: an error status, and no flush claimed.
    disk.fail = true;
    disk.log.clear();
    let w = req(8, BlkifOp::Flush, 0, &[seg(1, 0, 0)]);
    let (_, rsps) = round(
        &ring,
        &mut front,
        &mut back,
        &[w],
        &RW,
        (&mut disk, &mut grants),
    );
    assert_eq!(status(&rsps[0]), BlkifStatus::IoError);
    assert_eq!(disk.log, [("write", 100, SECTOR)]);
}

#[test]
fn bad_requests_get_error_statuses_and_touch_nothing() {
    let ro = VDisk {
        read_only: true,
        flush: false,
        ..RW
    };
    let g = [seg(1, 0, 7)];
    let mut huge = req(1, BlkifOp::Read, 0, &g);
    huge.nr_segments = 200;
    let mut bad_op = req(1, BlkifOp::Read, 0, &g);
    bad_op.op = 2;
    let cases: &[(BlkifRequest, &VDisk, BlkifStatus)] = &[
        (bad_op, &RW, BlkifStatus::BadRequest),
        (huge, &RW, BlkifStatus::BadRequest),
        (req(1, BlkifOp::Read, 0, &[]), &RW, BlkifStatus::BadRequest),
        (
            req(1, BlkifOp::Read, 0, &[seg(1, 3, 2)]),
            &RW,
            BlkifStatus::BadRequest,
        ),
        (
            req(1, BlkifOp::Read, 0, &[seg(1, 0, 8)]),
            &RW,
            BlkifStatus::BadRequest,
        ),
        (req(1, BlkifOp::Write, 0, &g), &ro, BlkifStatus::ReadOnly),
        (
            req(1, BlkifOp::Flush, 0, &[]),
            &ro,
            BlkifStatus::NotSupported,
        ),
        (req(1, BlkifOp::Read, 57, &g), &RW, BlkifStatus::OutOfRange),
        (
            req(1, BlkifOp::Read, u64::MAX - 3, &g),
            &RW,
            BlkifStatus::OutOfRange,
        ),
        (
            req(1, BlkifOp::Write, 1 << 62, &g),
            &RW,
            BlkifStatus::OutOfRange,
        ),
    ];
    for (r, disk, want) in cases {
        assert_eq!(check(r, disk).map(|_| ()), Err(*want), "{r:?}");
    }
    // The last sectors of the region are fine; a read-only disk reads.
    assert!(check(&req(1, BlkifOp::Read, 56, &g), &RW).is_ok());
    assert!(check(&req(1, BlkifOp::Read, 56, &g), &ro).is_ok());

    // Through the ring: each gets its status, the disk is never touched,
    // and a grant that cannot be copied is a bad request.
    let ring = Box::new(SharedRing::new());
    let (mut front, mut back) = (Front::new(&ring), Back::new(&ring));
    let mut disk = FakeDisk::new(256);
    let mut grants = FakeGrants::default();
    let reqs: Vec<_> = cases.iter().filter(|c| c.1 == &RW).map(|c| c.0).collect();
    let (pass, rsps) = round(
        &ring,
        &mut front,
        &mut back,
        &reqs,
        &RW,
        (&mut disk, &mut grants),
    );
    assert_eq!(pass.unwrap().refused, reqs.len());
    assert_eq!(rsps.len(), reqs.len());
    assert!(disk.log.is_empty(), "{:?}", disk.log);
    let w = req(9, BlkifOp::Write, 0, &[seg(77, 0, 0)]);
    let (_, rsps) = round(
        &ring,
        &mut front,
        &mut back,
        &[w],
        &RW,
        (&mut disk, &mut grants),
    );
    assert_eq!(status(&rsps[0]), BlkifStatus::BadRequest);
    assert!(disk.log.is_empty(), "no write without the data");
}

#[test]
fn many_in_flight_answered_in_order_across_passes() {
    let ring = Box::new(SharedRing::new());
    let mut front: Front<'_, BlkifRequest, BlkifResponse> = Front::new(&ring);
    let mut back = Back::new(&ring);
    let mut disk = FakeDisk::new(256);
    let mut grants = FakeGrants::default();
    grants.0.insert(1, Box::new([1u8; 4096]));
    for id in 0..BLKIF_RING_SIZE as u64 {
        front
            .push(&req(id, BlkifOp::Write, id, &[seg(1, 0, 0)]))
            .unwrap();
    }
    front.publish();
    let mut buf = Vec::new();
    let p = serve(&mut back, &RW, &mut disk, &mut grants, &mut buf, 8).unwrap();
    assert_eq!((p.answered, p.more), (8, true));
    let p = serve(&mut back, &RW, &mut disk, &mut grants, &mut buf, 100).unwrap();
    assert_eq!((p.answered, p.more), (BLKIF_RING_SIZE as usize - 8, false));
    back.publish();
    let ids: Vec<u64> = core::iter::from_fn(|| front.take().unwrap())
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, (0..BLKIF_RING_SIZE as u64).collect::<Vec<_>>());
}

#[test]
fn a_ring_index_past_the_ring_breaks_it_without_panic() {
    let ring = Box::new(SharedRing::new());
    let mut back: Back<'_, BlkifRequest, BlkifResponse> = Back::new(&ring);
    ring.req_prod
        .store(0x8000_0000, core::sync::atomic::Ordering::Release);
    let mut disk = FakeDisk::new(8);
    let mut grants = FakeGrants::default();
    let mut buf = Vec::new();
    let r = serve(&mut back, &RW, &mut disk, &mut grants, &mut buf, 8);
    assert_eq!(r, Err(RingError::Overflow));
    let r = serve(&mut back, &RW, &mut disk, &mut grants, &mut buf, 8);
    assert_eq!(r, Err(RingError::Broken));
    assert!(disk.log.is_empty());
}

#[test]
fn garbage_requests_never_panic_and_stay_in_the_region() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut disk = FakeDisk::new(RW.start as usize + RW.sectors as usize + 8);
    let mut grants = FakeGrants::default();
    grants.0.insert(0, Box::new([5u8; 4096]));
    grants.0.insert(1, Box::new([6u8; 4096]));
    let ring = Box::new(SharedRing::new());
    let mut front: Front<'_, BlkifRequest, BlkifResponse> = Front::new(&ring);
    let mut back = Back::new(&ring);
    let mut buf = Vec::new();
    for _ in 0..2000 {
        let mut r = BlkifRequest {
            id: next(),
            sector: next() % 80,
            op: (next() % 5) as u8,
            // Up to a few past the most segments a request may have.
            nr_segments: (next() % (BLKIF_MAX_SEGMENTS as u64 + 3)) as u8,
            ..BlkifRequest::default()
        };
        for s in r.segments.iter_mut() {
            *s = seg((next() % 3) as u32, (next() % 9) as u8, (next() % 9) as u8);
        }
        front.push(&r).unwrap();
        front.publish();
        let p = serve(&mut back, &RW, &mut disk, &mut grants, &mut buf, 4).unwrap();
        assert_eq!(p.answered, 1);
        back.publish();
        let rsp = front.take().unwrap().unwrap();
        assert_eq!((rsp.id, rsp.op), (r.id, r.op));
        assert!(BlkifStatus::from_raw(rsp.status).is_some());
    }
    for &(what, sector, len) in &disk.log {
        let end = sector + (len / SECTOR) as u64;
        assert!(
            what == "flush" || (sector >= RW.start && end <= RW.start + RW.sectors),
            "{what} {sector}+{len} leaves the region"
        );
    }
    assert!(
        disk.bytes[..RW.start as usize * SECTOR]
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn regions_must_lie_within_the_disk() {
    assert_eq!(
        VDisk::region(100, 0, None, false, true).unwrap().sectors,
        100
    );
    let r = VDisk::region(100, 40, Some(60), true, true).unwrap();
    assert_eq!((r.start, r.sectors, r.read_only), (40, 60, true));
    assert_eq!(VDisk::region(100, 40, Some(61), false, true), None);
    assert_eq!(VDisk::region(100, 100, None, false, true), None);
    assert_eq!(VDisk::region(100, 101, None, false, true), None);
    assert_eq!(VDisk::region(100, u64::MAX, Some(2), false, true), None);
}
