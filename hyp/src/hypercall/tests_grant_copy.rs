//! Host tests of `grant_op copy`: bytes both ways, each operation's
//! checks and status, overlapping ranges, and copies next to mappings.

use std::vec::Vec;

use tern_abi::grant::{COPY_BATCH_MAX, CopyFlags, CopyPtr, GrantCopy, GrantFlags, Op};
use tern_abi::{Error, PAGE_SIZE};
use zerocopy::IntoBytes;

use super::tests_grant::{
    A, B, OPS, PAGE, RAM, RAM_PAGES, copy_from_grant, gcall, grant, hv, in_use, map, own, read,
    run_copies, write,
};

#[test]
fn copy_moves_bytes_both_ways_and_checks_each_operation() {
    let mut hv = hv();
    grant(&mut hv, A, 0, B, PAGE, GrantFlags::PERMIT_ACCESS);
    let pattern: Vec<u8> = (0..=255u8).collect();
    write(&hv, A, PAGE + 0x100, &pattern);
    write(&hv, B, OPS + 0x800, &[0xee; 64]);
    let to_grant = GrantCopy {
        src: own(OPS + 0x800),
        dst: CopyPtr {
            domid: A,
            gref: 0,
            offset: 0xfc0,
        },
        len: 64,
        flags: CopyFlags::DST_GREF.bits(),
        status: 0,
    };
    let crossing = copy_from_grant(A, 0, 0xf00, OPS + 0xa00, 0x101);
    let mut bad_flags = copy_from_grant(A, 0, 0, OPS + 0xa00, 1);
    bad_flags.flags = 1 << 7;
    let own_crossing = copy_from_grant(A, 0, 0, OPS + 0xfff, 2);
    let ops = [
        copy_from_grant(A, 0, 0x100, OPS + 0x900, 256),
        to_grant,
        crossing,
        bad_flags,
        own_crossing,
        copy_from_grant(A, 99, 0, OPS + 0xa00, 1),
    ];
    assert_eq!(run_copies(&mut hv, B, &ops), Ok(4));
    let back: [GrantCopy; 6] = read(&hv, B, OPS);
    let statuses: Vec<i32> = back.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            0,
            0,
            Error::BadAddress.raw() as i32,
            Error::InvalidArgument.raw() as i32,
            Error::BadAddress.raw() as i32,
            Error::PermissionDenied.raw() as i32,
        ]
    );
    assert_eq!(read::<[u8; 256]>(&hv, B, OPS + 0x900).to_vec(), pattern);
    assert_eq!(read::<[u8; 64]>(&hv, A, PAGE + 0xfc0), [0xee; 64]);
    assert_eq!(
        in_use(&hv, A, 0),
        GrantFlags::EMPTY,
        "copies hold nothing afterwards"
    );
    // The batch itself.
    assert_eq!(
        gcall(&mut hv, B, Op::Copy, &[OPS, 0]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        gcall(&mut hv, B, Op::Copy, &[OPS, COPY_BATCH_MAX + 1]),
        Err(Error::TooBig)
    );
    assert_eq!(
        gcall(&mut hv, B, Op::Copy, &[OPS + 4, 1]),
        Err(Error::BadAddress)
    );
    assert_eq!(
        gcall(&mut hv, B, Op::Copy, &[RAM + RAM_PAGES * PAGE_SIZE - 8, 1]),
        Err(Error::BadAddress)
    );
}

#[test]
fn copies_overlap_keep_mappings_and_read_each_operation_when_it_runs() {
    let mut hv = hv();
    grant(&mut hv, A, 1, B, PAGE, GrantFlags::PERMIT_ACCESS);
    let (handle, _) = map(&mut hv, B, A, 1, false).unwrap();
    let pattern: Vec<u8> = (0..=255u8).collect();
    write(&hv, B, OPS + 0x900, &pattern);
    // Overlapping ranges of one page: as if through a buffer.
    let overlap = GrantCopy {
        src: own(OPS + 0x900),
        dst: own(OPS + 0x910),
        len: 256,
        flags: 0,
        status: 0x7777,
    };
    // Operation 1 is refused as written (unknown flag), but operation 0
    // copies a good one over it first: it runs as it reads then.
    let good = GrantCopy {
        src: own(OPS + 0x900),
        dst: CopyPtr {
            domid: A,
            gref: 1,
            offset: 0,
        },
        len: 16,
        flags: CopyFlags::DST_GREF.bits(),
        status: 0x7777,
    };
    let size = size_of::<GrantCopy>() as u64;
    write(&hv, B, OPS + 0xc00, good.as_bytes());
    let rewrite = GrantCopy {
        src: own(OPS + 0xc00),
        dst: own(OPS + size),
        len: size as u16,
        flags: 0,
        status: 0x7777,
    };
    let mut refused = good;
    refused.flags = 1 << 7;
    write(&hv, B, OPS + 2 * size, overlap.as_bytes());
    write(&hv, B, OPS + size, refused.as_bytes());
    write(&hv, B, OPS, rewrite.as_bytes());
    assert_eq!(gcall(&mut hv, B, Op::Copy, &[OPS, 3]).map(|r| r[0]), Ok(0));
    let mut shifted = pattern[..16].to_vec();
    shifted.extend_from_slice(&pattern);
    assert_eq!(read::<[u8; 272]>(&hv, B, OPS + 0x900).to_vec(), shifted);
    assert_eq!(read::<[u8; 16]>(&hv, A, PAGE).to_vec(), pattern[..16]);
    // The mapping's use of the entry outlives the copies' own.
    assert_eq!(in_use(&hv, A, 1), GrantFlags::READING | GrantFlags::WRITING);
    gcall(&mut hv, B, Op::Unmap, &[handle]).unwrap();
    assert_eq!(in_use(&hv, A, 1), GrantFlags::EMPTY);
}
