//! Host tests of `grant_op` through the dispatcher: the safety rules of
//! specs/hypercalls.md, each checked from the guest's side (status codes,
//! what the stage 2 maps, the in-use bits in the granter's table) and from
//! the allocator's (every page comes back).

use std::boxed::Box;
use std::vec::Vec;

use tern_abi::call::GRANT_OP;
use tern_abi::domctl::{DomainFlags, DomainId};
use tern_abi::grant::{
    self, CopyFlags, CopyPtr, GrantCopy, GrantEntry, GrantFlags, MAPTRACK_MAX, MapFlags, Op,
};
use tern_abi::layout::MAP_WINDOW_BASE;
use tern_abi::{Error, PAGE_SIZE};
use zerocopy::{FromBytes, IntoBytes};

use crate::addr::{GuestPhysAddr, PhysAddr};
use crate::domain::{DomainConfig, Lifecycle};
use crate::grant::TlbFlush;
use crate::hypervisor::{ConsoleSink, Hypervisor};
use crate::physmem::testing::Arena;
use crate::physmem::{FrameSource, PhysMem};

struct Quiet;
impl ConsoleSink for Quiet {
    fn domain_line(&mut self, _: &str, _: &[u8]) {}
}

pub(super) type Hv = Hypervisor<'static, Arena, Arena>;

pub(super) const RAM: u64 = 0x4000_0000;
pub(super) const RAM_PAGES: u64 = 512;
/// Where each test domain keeps its grant table.
const TABLE: u64 = RAM + 0x10_0000;
/// A page each granter grants.
pub(super) const PAGE: u64 = RAM + 0x20_0000 - PAGE_SIZE;
/// Scratch for copy batches.
pub(super) const OPS: u64 = RAM + 0x8_0000;
/// dom0, then A (granter), B (mapper), C (bystander).
pub(super) const A: u32 = 1;
pub(super) const B: u32 = 2;
const C: u32 = 3;

pub(super) fn hv() -> Hv {
    let mem: &'static Arena = Box::leak(Box::new(Arena::new(0x8000_0000, 8192)));
    let console: &'static mut Quiet = Box::leak(Box::new(Quiet));
    let mut hv = Hypervisor::new(
        mem,
        Arena::new(0x8000_0000, 8192),
        Vec::new(),
        console,
        1_000_000,
    );
    for (name, flags) in [
        (&b"dom0"[..], DomainFlags::IS_DOM0),
        (b"a", DomainFlags::from_bits_retain(0)),
        (b"b", DomainFlags::from_bits_retain(0)),
        (b"c", DomainFlags::from_bits_retain(0)),
    ] {
        let cfg = DomainConfig {
            name,
            pages: RAM_PAGES,
            vcpus: 1,
            cmdline: b"",
            flags,
        };
        hv.domains.create(&cfg, &mut hv.frames, hv.mem).unwrap();
    }
    hv
}

pub(super) fn gcall(hv: &mut Hv, who: u32, op: Op, args: &[u64]) -> Result<[u64; 3], Error> {
    let mut x = [0u64; 31];
    x[0] = GRANT_OP.into();
    x[1] = op.raw().into();
    x[2..2 + args.len()].copy_from_slice(args);
    hv.hypercall(DomainId(who), 0, &mut x);
    tern_abi::status_to_result(x[0] as i64).map(|()| [x[1], x[2], x[3]])
}

pub(super) fn write(hv: &Hv, who: u32, ipa: u64, bytes: &[u8]) {
    let ram = &hv.domains.get(DomainId(who)).unwrap().ram;
    ram.write(hv.mem, GuestPhysAddr(ipa), bytes).unwrap();
}

pub(super) fn read<T: FromBytes>(hv: &Hv, who: u32, ipa: u64) -> T {
    let mut b = std::vec![0u8; size_of::<T>()];
    let ram = &hv.domains.get(DomainId(who)).unwrap().ram;
    ram.read(hv.mem, GuestPhysAddr(ipa), &mut b).unwrap();
    T::read_from_bytes(&b).unwrap()
}

/// Registers `who`'s one-page table and writes entry `r`.
pub(super) fn grant(hv: &mut Hv, who: u32, r: u32, to: u32, frame_ipa: u64, flags: GrantFlags) {
    if hv.grants.table_pages(DomainId(who)) == 0 {
        gcall(hv, who, Op::SetupTable, &[TABLE, 1]).unwrap();
    }
    let e = GrantEntry {
        flags: flags.bits(),
        domid: to,
        frame: frame_ipa / PAGE_SIZE,
    };
    write(hv, who, TABLE + u64::from(r) * 16, e.as_bytes());
}

fn entry(hv: &Hv, who: u32, r: u32) -> GrantEntry {
    read(hv, who, TABLE + u64::from(r) * 16)
}

pub(super) fn in_use(hv: &Hv, who: u32, r: u32) -> GrantFlags {
    let f = GrantFlags::from_bits_retain(entry(hv, who, r).flags);
    GrantFlags::from_bits_retain(f.bits() & GrantFlags::IN_USE.bits())
}

pub(super) fn map(
    hv: &mut Hv,
    who: u32,
    granter: u32,
    r: u32,
    ro: bool,
) -> Result<(u64, u64), Error> {
    let flags = if ro { MapFlags::READONLY.bits() } else { 0 };
    gcall(hv, who, Op::Map, &[granter.into(), r.into(), flags]).map(|[h, ipa, _]| (h, ipa))
}

/// Where `who`'s stage 2 sends `ipa`.
fn s2(hv: &mut Hv, who: u32, ipa: u64) -> Option<PhysAddr> {
    let d = hv.domains.get(DomainId(who)).unwrap();
    d.stage2
        .translate(GuestPhysAddr(ipa), &mut hv.frames, hv.mem)
}

fn frame_of(hv: &Hv, who: u32, ipa: u64) -> PhysAddr {
    let d = hv.domains.get(DomainId(who)).unwrap();
    d.ram.translate(GuestPhysAddr(ipa)).unwrap()
}

/// What the arch layer does after every hypercall.
fn flush(hv: &mut Hv) -> Vec<TlbFlush> {
    let mut done = Vec::new();
    hv.complete_grant_flushes(|f| done.push(f));
    hv.domains.recycle_vmids(|_| {});
    done
}

#[test]
fn setup_table_checks_its_range_and_query_size_reports_it() {
    let mut hv = hv();
    assert_eq!(gcall(&mut hv, A, Op::QuerySize, &[]), Ok([0, 16, 0]));
    assert_eq!(
        gcall(&mut hv, A, Op::SetupTable, &[TABLE, 0]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        gcall(&mut hv, A, Op::SetupTable, &[TABLE, 17]),
        Err(Error::TooBig)
    );
    for ipa in [
        TABLE + 8,
        RAM - PAGE_SIZE,
        RAM + RAM_PAGES * PAGE_SIZE - PAGE_SIZE,
        0xffff_ffff_ffff_f000,
    ] {
        assert_eq!(
            gcall(&mut hv, A, Op::SetupTable, &[ipa, 2]),
            Err(Error::BadAddress),
            "{ipa:#x}"
        );
    }
    assert_eq!(gcall(&mut hv, A, Op::SetupTable, &[TABLE, 16]), Ok([0; 3]));
    assert_eq!(gcall(&mut hv, A, Op::QuerySize, &[]), Ok([16, 16, 0]));
    assert_eq!(gcall(&mut hv, A, Op::SetupTable, &[TABLE, 2]), Ok([0; 3]));
    assert_eq!(gcall(&mut hv, A, Op::QuerySize, &[]), Ok([2, 16, 0]));
}

#[test]
fn map_tells_dom0_alone_the_machine_address() {
    let mut hv = hv();
    grant(&mut hv, A, 3, 0, PAGE, GrantFlags::PERMIT_ACCESS);
    grant(&mut hv, A, 4, B, PAGE, GrantFlags::PERMIT_ACCESS);
    let [_, _, machine] = gcall(&mut hv, 0, Op::Map, &[A.into(), 3, 0]).unwrap();
    assert_eq!(PhysAddr(machine), frame_of(&hv, A, PAGE));
    let [_, _, hidden] = gcall(&mut hv, B, Op::Map, &[A.into(), 4, 0]).unwrap();
    assert_eq!(hidden, 0);
}

#[test]
fn map_shows_the_granters_page_and_unmap_takes_it_away() {
    let mut hv = hv();
    grant(&mut hv, A, 3, B, PAGE, GrantFlags::PERMIT_ACCESS);
    write(&hv, A, PAGE + 8, b"granted!");
    let (h, ipa) = map(&mut hv, B, A, 3, false).unwrap();
    assert_eq!(ipa, MAP_WINDOW_BASE);
    assert_eq!(grant::split_handle(h).0, 0);
    let pa = s2(&mut hv, B, ipa).expect("mapped in B's stage 2");
    assert_eq!(pa, frame_of(&hv, A, PAGE));
    let mut b = [0u8; 8];
    hv.mem.read(PhysAddr(pa.0 + 8), &mut b);
    assert_eq!(&b, b"granted!");
    assert_eq!(in_use(&hv, A, 3), GrantFlags::READING | GrantFlags::WRITING);
    assert!(hv.grants.barrier_needed());
    assert_eq!(hv.grants.mappings_of(DomainId(B)), 1);

    assert_eq!(gcall(&mut hv, B, Op::Unmap, &[h]), Ok([0; 3]));
    assert_eq!(s2(&mut hv, B, ipa), None);
    assert_eq!(in_use(&hv, A, 3), GrantFlags::EMPTY);
    let vmid = hv.domains.get(DomainId(B)).unwrap().vmid();
    assert_eq!(
        flush(&mut hv),
        [TlbFlush {
            vmid,
            range: Some((GuestPhysAddr(ipa), 1))
        }]
    );
    assert!(!hv.grants.barrier_needed());
    // The entry is the granter's again: it may revoke it.
    assert_eq!(entry(&hv, A, 3).flags, GrantFlags::PERMIT_ACCESS.bits());
}

#[test]
fn only_the_named_domain_may_map_or_copy() {
    let mut hv = hv();
    grant(&mut hv, A, 0, B, PAGE, GrantFlags::PERMIT_ACCESS);
    assert_eq!(map(&mut hv, C, A, 0, false), Err(Error::PermissionDenied));
    assert_eq!(map(&mut hv, C, A, 0, true), Err(Error::PermissionDenied));
    assert_eq!(
        map(&mut hv, 0, A, 0, true),
        Err(Error::PermissionDenied),
        "not even dom0"
    );
    assert_eq!(
        in_use(&hv, A, 0),
        GrantFlags::EMPTY,
        "a refusal leaves no trace"
    );
    let op = copy_from_grant(A, 0, 0, OPS + 0x800, 16);
    assert_eq!(run_copies(&mut hv, C, &[op]), Ok(1));
    assert_eq!(
        read::<GrantCopy>(&hv, C, OPS).status,
        Error::PermissionDenied.raw() as i32
    );
    // A grant that does not permit access, or was revoked.
    grant(&mut hv, A, 1, B, PAGE, GrantFlags::EMPTY);
    assert_eq!(map(&mut hv, B, A, 1, true), Err(Error::PermissionDenied));
    assert_eq!(in_use(&hv, A, 1), GrantFlags::EMPTY);
}

#[test]
fn a_read_only_grant_cannot_be_mapped_writable_or_written() {
    let mut hv = hv();
    grant(
        &mut hv,
        A,
        0,
        B,
        PAGE,
        GrantFlags::PERMIT_ACCESS | GrantFlags::READONLY,
    );
    assert_eq!(map(&mut hv, B, A, 0, false), Err(Error::PermissionDenied));
    assert_eq!(in_use(&hv, A, 0), GrantFlags::EMPTY);
    let (h, _) = map(&mut hv, B, A, 0, true).unwrap();
    assert_eq!(in_use(&hv, A, 0), GrantFlags::READING);
    // Copying into it is refused; out of it is fine.
    write(&hv, B, OPS + 0x800, &[0x5a; 32]);
    let into = GrantCopy {
        src: own(OPS + 0x800),
        dst: CopyPtr {
            domid: A,
            gref: 0,
            offset: 0,
        },
        len: 32,
        flags: CopyFlags::DST_GREF.bits(),
        status: 0,
    };
    assert_eq!(
        run_copies(
            &mut hv,
            B,
            &[into, copy_from_grant(A, 0, 0, OPS + 0x900, 32)]
        ),
        Ok(1)
    );
    let ops: [GrantCopy; 2] = read(&hv, B, OPS);
    assert_eq!(ops[0].status, Error::PermissionDenied.raw() as i32);
    assert_eq!(ops[1].status, 0);
    assert_ne!(
        read::<[u8; 32]>(&hv, A, PAGE),
        [0x5a; 32],
        "nothing written"
    );
    assert_eq!(
        in_use(&hv, A, 0),
        GrantFlags::READING,
        "the mapping still holds it"
    );
    gcall(&mut hv, B, Op::Unmap, &[h]).unwrap();
    assert_eq!(in_use(&hv, A, 0), GrantFlags::EMPTY);
}

pub(super) fn own(ipa: u64) -> CopyPtr {
    CopyPtr {
        domid: 0,
        gref: 0,
        offset: ipa,
    }
}

pub(super) fn copy_from_grant(granter: u32, r: u32, offset: u64, to: u64, len: u16) -> GrantCopy {
    GrantCopy {
        src: CopyPtr {
            domid: granter,
            gref: r,
            offset,
        },
        dst: own(to),
        len,
        flags: CopyFlags::SRC_GREF.bits(),
        status: 0x7777,
    }
}

pub(super) fn run_copies(hv: &mut Hv, who: u32, ops: &[GrantCopy]) -> Result<u64, Error> {
    write(hv, who, OPS, ops.as_bytes());
    gcall(hv, who, Op::Copy, &[OPS, ops.len() as u64]).map(|r| r[0])
}

#[test]
fn mapped_grants_cannot_be_moved_and_hostile_entries_are_refused() {
    let mut hv = hv();
    assert_eq!(
        map(&mut hv, B, A, 0, false),
        Err(Error::InvalidState),
        "no table"
    );
    assert_eq!(map(&mut hv, B, 77, 0, false), Err(Error::NoSuchDomain));
    assert_eq!(
        gcall(&mut hv, B, Op::Map, &[A.into(), 0, 1 << 5]),
        Err(Error::InvalidArgument)
    );
    grant(&mut hv, A, 0, B, PAGE, GrantFlags::PERMIT_ACCESS);
    assert_eq!(
        map(&mut hv, B, A, 256, false),
        Err(Error::NotFound),
        "beyond the table"
    );
    assert_eq!(
        gcall(&mut hv, B, Op::Map, &[A.into(), 1 << 32, 0]),
        Err(Error::NotFound)
    );
    // Frames outside the granter's RAM: below it, past it, overflowing.
    for ipa in [0x0900_0000, RAM + RAM_PAGES * PAGE_SIZE, MAP_WINDOW_BASE] {
        grant(&mut hv, A, 1, B, ipa, GrantFlags::PERMIT_ACCESS);
        assert_eq!(
            map(&mut hv, B, A, 1, false),
            Err(Error::BadAddress),
            "{ipa:#x}"
        );
        assert_eq!(in_use(&hv, A, 1), GrantFlags::EMPTY);
    }
    write(&hv, A, TABLE + 16 + 8, &u64::MAX.to_le_bytes());
    assert_eq!(map(&mut hv, B, A, 1, false), Err(Error::BadAddress));
    // While a grant is mapped its table cannot be replaced.
    let (h, _) = map(&mut hv, B, A, 0, false).unwrap();
    assert_eq!(
        gcall(&mut hv, A, Op::SetupTable, &[TABLE, 2]),
        Err(Error::Busy)
    );
    // The granter scribbling on the in-use bits changes nothing for the
    // hypervisor: the mapping stays until unmapped, and unmap still works.
    write(
        &hv,
        A,
        TABLE,
        &GrantEntry::word0(GrantFlags::EMPTY, 0).to_le_bytes(),
    );
    assert!(s2(&mut hv, B, MAP_WINDOW_BASE).is_some());
    assert_eq!(gcall(&mut hv, B, Op::Unmap, &[h]), Ok([0; 3]));
    assert_eq!(gcall(&mut hv, A, Op::SetupTable, &[TABLE, 2]), Ok([0; 3]));
}

#[test]
fn unmap_twice_or_with_a_stale_handle_is_refused() {
    let mut hv = hv();
    grant(&mut hv, A, 0, B, PAGE, GrantFlags::PERMIT_ACCESS);
    let (h1, ipa1) = map(&mut hv, B, A, 0, true).unwrap();
    assert_eq!(gcall(&mut hv, B, Op::Unmap, &[h1]), Ok([0; 3]));
    assert_eq!(gcall(&mut hv, B, Op::Unmap, &[h1]), Err(Error::NotFound));
    // The slot is reused; the old handle still names nothing.
    let (h2, ipa2) = map(&mut hv, B, A, 0, true).unwrap();
    assert_eq!(
        (ipa2, grant::split_handle(h2).0),
        (ipa1, grant::split_handle(h1).0)
    );
    assert_ne!(h1, h2);
    assert_eq!(gcall(&mut hv, B, Op::Unmap, &[h1]), Err(Error::NotFound));
    assert!(s2(&mut hv, B, ipa2).is_some(), "the new mapping survived");
    // Someone else's handle, and made-up ones.
    assert_eq!(gcall(&mut hv, C, Op::Unmap, &[h2]), Err(Error::NotFound));
    for h in [u64::MAX, 5, 1 << 40] {
        assert_eq!(gcall(&mut hv, B, Op::Unmap, &[h]), Err(Error::NotFound));
    }
    assert_eq!(gcall(&mut hv, B, Op::Unmap, &[h2]), Ok([0; 3]));
}

#[test]
fn the_mapping_limit_is_enforced() {
    let mut hv = hv();
    grant(&mut hv, A, 0, B, PAGE, GrantFlags::PERMIT_ACCESS);
    let free = hv.frames.free_page_count();
    let handles: Vec<u64> = (0..MAPTRACK_MAX)
        .map(|i| {
            let (h, ipa) = map(&mut hv, B, A, 0, i % 2 == 0).unwrap();
            assert_eq!(ipa, MAP_WINDOW_BASE + i * PAGE_SIZE);
            h
        })
        .collect();
    assert_eq!(map(&mut hv, B, A, 0, true), Err(Error::TooBig));
    assert_eq!(in_use(&hv, A, 0), GrantFlags::IN_USE);
    for h in handles {
        gcall(&mut hv, B, Op::Unmap, &[h]).unwrap();
    }
    assert_eq!(in_use(&hv, A, 0), GrantFlags::EMPTY);
    flush(&mut hv);
    assert_eq!(hv.frames.free_page_count(), free, "window tables freed");
}

/// Destroys `who` as dom0's `destroy` would.
fn destroy(hv: &mut Hv, who: u32) {
    hv.domains.get_mut(DomainId(who)).unwrap().life = Lifecycle::Dying;
    hv.destroy_domain(DomainId(who)).unwrap();
}

#[test]
fn a_mapped_page_outlives_its_owner_and_every_page_comes_back() {
    let mut hv = hv();
    let start = hv.frames.free_page_count();
    grant(&mut hv, A, 0, B, PAGE, GrantFlags::PERMIT_ACCESS);
    write(&hv, A, PAGE, b"still here");
    let (h, ipa) = map(&mut hv, B, A, 0, false).unwrap();
    let pa = s2(&mut hv, B, ipa).unwrap();
    destroy(&mut hv, A);
    flush(&mut hv);
    // A's RAM went back, except the run holding the mapped page.
    assert_eq!(hv.grants.orphan_pages(), RAM_PAGES, "one 2 MiB run");
    assert_eq!(s2(&mut hv, B, ipa), Some(pa));
    let mut b = [0u8; 10];
    hv.mem.read(pa, &mut b);
    assert_eq!(&b, b"still here");
    assert_eq!(map(&mut hv, B, A, 0, false), Err(Error::NoSuchDomain));
    assert_eq!(gcall(&mut hv, B, Op::Unmap, &[h]), Ok([0; 3]));
    assert_eq!(hv.grants.orphan_pages(), 0);
    // The run is held until the TLB flush (the unmap itself only freed
    // B's window tables).
    let after_unmap = hv.frames.free_page_count();
    flush(&mut hv);
    assert_eq!(hv.frames.free_page_count(), after_unmap + RAM_PAGES);
    for who in [B, C, 0] {
        destroy(&mut hv, who);
    }
    flush(&mut hv);
    // Nothing else allocates from this arena: all of it is free again.
    assert_eq!(hv.frames.free_page_count(), hv.frames.total_page_count());
    assert!(start < hv.frames.total_page_count());
}

#[test]
fn destroying_the_mapper_first_releases_everything_too() {
    let mut hv = hv();
    let start = hv.frames.free_page_count();
    grant(&mut hv, A, 0, B, PAGE, GrantFlags::PERMIT_ACCESS);
    grant(
        &mut hv,
        A,
        1,
        C,
        PAGE,
        GrantFlags::PERMIT_ACCESS | GrantFlags::READONLY,
    );
    map(&mut hv, B, A, 0, false).unwrap();
    map(&mut hv, B, A, 0, true).unwrap();
    map(&mut hv, C, A, 1, true).unwrap();
    destroy(&mut hv, B);
    assert_eq!(in_use(&hv, A, 0), GrantFlags::EMPTY, "B's uses are gone");
    assert_eq!(in_use(&hv, A, 1), GrantFlags::READING, "C's remains");
    // A goes while C maps it; then C goes: the orphan run is freed with C.
    destroy(&mut hv, A);
    assert_eq!(hv.grants.orphan_pages(), RAM_PAGES);
    destroy(&mut hv, C);
    assert_eq!(hv.grants.orphan_pages(), 0);
    destroy(&mut hv, 0);
    flush(&mut hv);
    assert_eq!(hv.frames.free_page_count(), hv.frames.total_page_count());
    assert!(start < hv.frames.total_page_count());
}

#[test]
fn the_feature_bit_is_offered_to_every_domain() {
    let mut hv = hv();
    let mut x = [0u64; 31];
    x[0] = tern_abi::call::VERSION.into();
    hv.hypercall(DomainId(C), 0, &mut x);
    assert!(tern_abi::Features::from_bits_retain(x[3]).contains(tern_abi::Features::GRANT));
}
