use std::collections::BTreeMap;
use std::vec::Vec;

use proptest::prelude::*;

use super::attrs::{S1, S2};
use super::testing::TestArena;
use super::*;

const K4: u64 = 4 << 10;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;

fn va(x: u64) -> VirtAddr {
    VirtAddr(x)
}
fn ipa(x: u64) -> GuestPhysAddr {
    GuestPhysAddr(x)
}
fn pa(x: u64) -> PhysAddr {
    PhysAddr(x)
}

fn leaves<R: Regime>(t: &PageTable<R>, mem: &TestArena) -> Vec<(u64, u64, u64, Attributes)> {
    let mut v = Vec::new();
    t.walk(mem, |m| {
        v.push((R::raw(m.input), m.output.0, m.size, m.attrs))
    });
    v
}

#[test]
fn layout_constants() {
    assert_eq!(EL2_STAGE1_LAYOUT.t0sz(), 16);
    assert_eq!(STAGE2_LAYOUT.t0sz(), 24);
    // Stage-2 start at level 1 resolves bits [39:30]: 2^10 entries = 2 tables.
    assert_eq!(
        1usize << (STAGE2_LAYOUT.input_bits - level_shift(STAGE2_LAYOUT.start_level)),
        STAGE2_LAYOUT.root_tables * ENTRIES_PER_TABLE
    );
    assert_eq!(
        1u64 << (EL2_STAGE1_LAYOUT.input_bits - level_shift(0)),
        ENTRIES_PER_TABLE as u64
    );
    // Attr0 normal WB RW-allocate, Attr1 Device-nGnRE, Attr2 Device-nGnRnE.
    assert_eq!(MAIR_EL2_VALUE, 0x00_04_ff);
}

#[test]
fn block_and_page_choice() {
    let mut mem = TestArena::new(64);
    let mut t = El2Table::new(&mut mem).unwrap();
    // 1 GiB aligned both sides: one level-1 block (root + L1).
    t.map(&mut mem, va(G1), pa(2 * G1), G1, Attributes::RAM_RW)
        .unwrap();
    assert_eq!(t.table_count(), 2);
    // 2 MiB aligned: level-2 block (+ L2).
    t.map(
        &mut mem,
        va(4 * G1),
        pa(0x4020_0000),
        M2,
        Attributes::RAM_RW,
    )
    .unwrap();
    assert_eq!(t.table_count(), 3);
    // Output not block aligned: pages (+ L3).
    t.map(
        &mut mem,
        va(4 * G1 + M2),
        pa(0x4030_1000),
        M2,
        Attributes::DEVICE_RW,
    )
    .unwrap();
    assert_eq!(t.table_count(), 4);
    let l = leaves(&t, &mem);
    assert_eq!(l[0], (G1, 2 * G1, G1, Attributes::RAM_RW));
    assert_eq!(l[1], (4 * G1, 0x4020_0000, M2, Attributes::RAM_RW));
    assert_eq!(l.len(), 2 + 512);
    assert!(
        l[2..]
            .iter()
            .all(|&(_, _, s, a)| s == K4 && a == Attributes::DEVICE_RW)
    );
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[test]
fn mixed_range_uses_pages_then_blocks_then_pages() {
    let mut mem = TestArena::new(64);
    let mut t = Stage2Table::new(&mut mem).unwrap();
    let start = 0x4000_0000 - K4;
    t.map(
        &mut mem,
        ipa(start),
        pa(start),
        M2 + 2 * K4,
        Attributes::RAM_RWX,
    )
    .unwrap();
    let sizes: Vec<u64> = leaves(&t, &mem).iter().map(|l| l.2).collect();
    assert_eq!(sizes, [K4, M2, K4]);
    for a in [start, start + K4, start + 0x1234, start + M2 + K4 + 0xfff] {
        assert_eq!(
            t.translate(&mem, ipa(a)),
            Some((pa(a), Attributes::RAM_RWX))
        );
    }
    assert_eq!(t.translate(&mem, ipa(start - 1)), None);
    assert_eq!(t.translate(&mem, ipa(start + M2 + 2 * K4)), None);
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[test]
fn translate_inside_blocks() {
    let mut mem = TestArena::new(16);
    let mut t = El2Table::new(&mut mem).unwrap();
    t.map(
        &mut mem,
        va(0x8000_0000),
        pa(0x1_0000_0000),
        G1,
        Attributes::RAM_RX,
    )
    .unwrap();
    assert_eq!(
        t.translate(&mem, va(0x8123_4567)),
        Some((pa(0x1_0123_4567), Attributes::RAM_RX))
    );
    assert_eq!(t.translate(&mem, va(1 << 48)), None);
    t.destroy(&mut mem);
}

#[test]
fn overlap_is_rejected_and_changes_nothing() {
    let mut mem = TestArena::new(64);
    let mut t = El2Table::new(&mut mem).unwrap();
    t.map(
        &mut mem,
        va(0x4000_0000 + 5 * K4),
        pa(0x9000_0000),
        K4,
        Attributes::RAM_RW,
    )
    .unwrap();
    let before = leaves(&t, &mem);
    let count = t.table_count();
    assert_eq!(
        t.map(&mut mem, va(0x4000_0000), pa(0), M2, Attributes::RAM_RW),
        Err(MapError::AlreadyMapped)
    );
    assert_eq!(
        t.map(&mut mem, va(0x3fe0_0000), pa(0), 3 * M2, Attributes::RAM_RW),
        Err(MapError::AlreadyMapped)
    );
    assert_eq!(leaves(&t, &mem), before);
    assert_eq!(t.table_count(), count);
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[test]
fn partial_unmap_splits_blocks() {
    let mut mem = TestArena::new(64);
    let mut t = Stage2Table::new(&mut mem).unwrap();
    t.map(&mut mem, ipa(G1), pa(3 * G1), G1, Attributes::RAM_RWX)
        .unwrap();
    assert_eq!(t.table_count(), 2);
    // Punch out one page in the middle of the 1 GiB block: 1 GiB -> 2 MiB blocks,
    // the one holding the page -> 4 KiB pages.
    let hole = G1 + 5 * M2 + 7 * K4;
    t.unmap(&mut mem, ipa(hole), K4).unwrap();
    assert_eq!(t.table_count(), 4);
    assert_eq!(t.translate(&mem, ipa(hole)), None);
    assert_eq!(
        t.translate(&mem, ipa(hole - 1)),
        Some((pa(3 * G1 + (hole - 1 - G1)), Attributes::RAM_RWX))
    );
    assert_eq!(
        t.translate(&mem, ipa(hole + K4)),
        Some((pa(3 * G1 + (hole + K4 - G1)), Attributes::RAM_RWX))
    );
    let l = leaves(&t, &mem);
    assert_eq!(l.len(), 511 + 511);
    assert_eq!(l.iter().map(|x| x.2).sum::<u64>(), G1 - K4);
    // The split replaced a live block: break-before-make invalidated it.
    assert!(mem.invalidations.contains(&(G1, G1)));
    // Unmap the rest: all intermediate tables are freed again.
    t.unmap(&mut mem, ipa(G1), G1).unwrap();
    assert_eq!(t.table_count(), STAGE2_LAYOUT.root_tables);
    assert!(leaves(&t, &mem).is_empty());
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[test]
fn unmap_holes_and_empty_range_are_fine() {
    let mut mem = TestArena::new(16);
    let mut t = El2Table::new(&mut mem).unwrap();
    t.unmap(&mut mem, va(0x1000), 0x10_0000).unwrap();
    t.unmap(&mut mem, va(0), 0).unwrap();
    assert_eq!(t.table_count(), 1);
    t.destroy(&mut mem);
}

#[test]
fn write_protect_for_dirty_logging() {
    let mut mem = TestArena::new(64);
    let mut t = Stage2Table::new(&mut mem).unwrap();
    t.map(
        &mut mem,
        ipa(0x4000_0000),
        pa(0x8000_0000),
        4 * M2,
        Attributes::RAM_RWX,
    )
    .unwrap();
    let ro = Attributes::RAM_RWX.read_only();
    t.set_permissions(&mut mem, ipa(0x4000_0000 + M2 + K4), M2, ro)
        .unwrap();
    let at = |a: u64| t.translate(&mem, ipa(a)).map(|x| x.1);
    assert_eq!(at(0x4000_0000), Some(Attributes::RAM_RWX));
    assert_eq!(at(0x4000_0000 + M2), Some(Attributes::RAM_RWX));
    assert_eq!(at(0x4000_0000 + M2 + K4), Some(ro));
    assert_eq!(at(0x4000_0000 + 2 * M2 + K4 - 1), Some(ro));
    assert_eq!(at(0x4000_0000 + 2 * M2 + K4), Some(Attributes::RAM_RWX));
    // Outputs unchanged.
    assert_eq!(
        t.translate(&mem, ipa(0x4000_0000 + 3 * M2 + 5)).unwrap().0,
        pa(0x8000_0000 + 3 * M2 + 5)
    );
    // Write-protect everything, then restore: back to blocks is not required, but
    // every page is writable again.
    t.set_permissions(&mut mem, ipa(0x3000_0000), G1, ro)
        .unwrap();
    assert!(leaves(&t, &mem).iter().all(|l| !l.3.write));
    t.set_permissions(&mut mem, ipa(0x4000_0000), 4 * M2, Attributes::RAM_RWX)
        .unwrap();
    assert!(leaves(&t, &mem).iter().all(|l| l.3 == Attributes::RAM_RWX));
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[test]
fn error_cases() {
    let mut mem = TestArena::new(16);
    let mut t = El2Table::new(&mut mem).unwrap();
    let rw = Attributes::RAM_RW;
    assert_eq!(
        t.map(&mut mem, va(0x1001), pa(0), K4, rw),
        Err(MapError::Unaligned)
    );
    assert_eq!(
        t.map(&mut mem, va(0x1000), pa(0x10), K4, rw),
        Err(MapError::Unaligned)
    );
    assert_eq!(
        t.map(&mut mem, va(0x1000), pa(0), 100, rw),
        Err(MapError::Unaligned)
    );
    assert_eq!(
        t.map(&mut mem, va(1 << 48), pa(0), K4, rw),
        Err(MapError::InputOutOfRange)
    );
    assert_eq!(
        t.map(&mut mem, va((1 << 48) - K4), pa(0), 2 * K4, rw),
        Err(MapError::InputOutOfRange)
    );
    assert_eq!(
        t.map(&mut mem, va(!0xfff), pa(0), 2 * K4, rw),
        Err(MapError::InputOutOfRange)
    );
    assert_eq!(
        t.map(&mut mem, va(0), pa(1 << 48), K4, rw),
        Err(MapError::OutputOutOfRange)
    );
    assert_eq!(
        t.map(&mut mem, va(0), pa(!0xfff), 2 * K4, rw),
        Err(MapError::OutputOutOfRange)
    );
    let write_only = Attributes { read: false, ..rw };
    assert_eq!(
        t.map(&mut mem, va(0), pa(0), K4, write_only),
        Err(MapError::UnsupportedAttributes)
    );
    assert_eq!(t.unmap(&mut mem, va(0x800), K4), Err(MapError::Unaligned));
    assert_eq!(
        t.set_permissions(&mut mem, va(0), K4, write_only),
        Err(MapError::UnsupportedAttributes)
    );
    assert_eq!(t.table_count(), 1);
    // Stage 2: 40-bit IPA limit; write-only is expressible there.
    let mut s2 = Stage2Table::new(&mut mem).unwrap();
    assert_eq!(
        s2.map(&mut mem, ipa(1 << 40), pa(0), K4, rw),
        Err(MapError::InputOutOfRange)
    );
    assert_eq!(s2.map(&mut mem, ipa(0), pa(0), K4, write_only), Ok(()));
    assert_eq!(s2.translate(&mem, ipa(0)).unwrap().1, write_only);
    s2.destroy(&mut mem);
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[test]
fn out_of_memory_rolls_back() {
    let mut mem = TestArena::new(64);
    let mut t = Stage2Table::new(&mut mem).unwrap();
    t.map(
        &mut mem,
        ipa(0x4000_0000),
        pa(0x4000_0000),
        K4,
        Attributes::RAM_RWX,
    )
    .unwrap();
    let before = leaves(&t, &mem);
    let (count, live) = (t.table_count(), mem.live());
    // Needs a new L2 and two new L3 tables; allow only one.
    mem.fail_after = Some(1);
    assert_eq!(
        t.map(
            &mut mem,
            ipa(0x8000_0000 - K4),
            pa(0),
            M2 + 2 * K4,
            Attributes::RAM_RWX
        ),
        Err(MapError::OutOfMemory)
    );
    assert_eq!((t.table_count(), mem.live()), (count, live));
    assert_eq!(leaves(&t, &mem), before);
    // A split that cannot allocate leaves every translation as it was.
    mem.fail_after = None;
    t.map(&mut mem, ipa(2 * G1), pa(G1), G1, Attributes::RAM_RWX)
        .unwrap();
    let before = leaves(&t, &mem);
    mem.fail_after = Some(0);
    assert_eq!(
        t.unmap(&mut mem, ipa(2 * G1 + K4), K4),
        Err(MapError::OutOfMemory)
    );
    assert_eq!(leaves(&t, &mem), before);
    mem.fail_after = None;
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
    // Even the root may not fit.
    mem.fail_after = Some(0);
    assert_eq!(El2Table::new(&mut mem).err(), Some(MapError::OutOfMemory));
}

#[test]
fn stage2_concatenated_root() {
    let mut mem = TestArena::new(16);
    let mut t = Stage2Table::new(&mut mem).unwrap();
    assert!(
        t.root().is_aligned(2 * K4),
        "concatenated root aligned to its size"
    );
    // 512 GiB and up lives in the second root table.
    let high = (1 << 40) - G1;
    t.map(&mut mem, ipa(high), pa(G1), G1, Attributes::RAM_RWX)
        .unwrap();
    t.map(&mut mem, ipa(0), pa(0), G1, Attributes::RAM_RWX)
        .unwrap();
    assert_eq!(t.table_count(), 2);
    assert_eq!(
        mem.table_ref(pa(t.root().0 + K4))[511] & 0xfff_ffff_f000,
        G1
    );
    assert_eq!(t.translate(&mem, ipa(high + 42)).unwrap().0, pa(G1 + 42));
    let l = leaves(&t, &mem);
    assert_eq!(l.iter().map(|x| x.0).collect::<Vec<_>>(), [0, high]);
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[test]
fn descriptor_bits() {
    use tock_registers::LocalRegisterCopy;
    let mut mem = TestArena::new(16);
    let mut s1 = El2Table::new(&mut mem).unwrap();
    s1.map(
        &mut mem,
        va(0x0900_0000),
        pa(0x0900_0000),
        K4,
        Attributes::DEVICE_RW,
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut t = s1.root();
    for level in 0..3 {
        let d = mem.table_ref(t)[(0x0900_0000u64 >> level_shift(level)) as usize & 511];
        assert!(is_table(d, level));
        t = desc_addr(d);
    }
    raw.push(mem.table_ref(t)[(0x0900_0000u64 >> 12) as usize & 511]);
    let d = LocalRegisterCopy::<u64, S1::Register>::new(raw[0]);
    assert_eq!(raw[0] & 0b11, 0b11, "valid page");
    assert_eq!(d.read(S1::ATTR_INDX), 1);
    assert!(d.is_set(S1::AF) && d.is_set(S1::AP_EL0) && !d.is_set(S1::AP_RO) && d.is_set(S1::XN));
    assert_eq!(desc_addr(raw[0]), pa(0x0900_0000));
    s1.destroy(&mut mem);

    let mut s2 = Stage2Table::new(&mut mem).unwrap();
    s2.map(
        &mut mem,
        ipa(0x4000_0000),
        pa(0x4000_0000),
        M2,
        Attributes::RAM_RWX.read_only(),
    )
    .unwrap();
    let l1 = mem.table_ref(s2.root())[1];
    let block = mem.table_ref(desc_addr(l1))[0];
    assert_eq!(block & 0b11, 0b01, "valid block");
    let d = LocalRegisterCopy::<u64, S2::Register>::new(block);
    assert_eq!(
        d.read_as_enum(S2::MEM_ATTR),
        Some(S2::MEM_ATTR::Value::NormalWriteBack)
    );
    assert!(
        d.is_set(S2::S2AP_READ)
            && !d.is_set(S2::S2AP_WRITE)
            && d.is_set(S2::AF)
            && !d.is_set(S2::XN)
    );
    assert_eq!(d.read(S2::SH), 0b11);
    s2.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[derive(Clone, Debug)]
enum Op {
    Map {
        page: u64,
        pages: u64,
        out: u64,
        rw: bool,
    },
    Unmap {
        page: u64,
        pages: u64,
    },
    Protect {
        page: u64,
        pages: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    // A 16 MiB window (4096 pages) so blocks, splits and merges all happen.
    // Page numbers and outputs are often 2 MiB aligned so that blocks appear.
    let page = prop_oneof![0u64..4096, (0u64..8).prop_map(|b| b * 512)];
    let pages = prop_oneof![1u64..8, Just(512u64), 500u64..1100];
    let out = prop_oneof![0u64..4096, (0u64..8).prop_map(|b| b * 512)];
    prop_oneof![
        (page.clone(), pages.clone(), out, any::<bool>()).prop_map(|(page, pages, out, rw)| {
            Op::Map {
                page,
                pages,
                out,
                rw,
            }
        }),
        (page.clone(), pages.clone()).prop_map(|(page, pages)| Op::Unmap { page, pages }),
        (page, pages).prop_map(|(page, pages)| Op::Protect { page, pages }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn matches_a_page_model(ops in proptest::collection::vec(op(), 1..24)) {
        let mut mem = TestArena::new(256);
        let mut t = Stage2Table::new(&mut mem).unwrap();
        let mut model: BTreeMap<u64, (u64, bool)> = BTreeMap::new(); // page -> (output page, writable)
        let base = 0x4000_0000 / K4;
        for op in ops {
            match op {
                Op::Map { page, pages, out, rw } => {
                    let attrs = if rw { Attributes::RAM_RWX } else { Attributes::RAM_RWX.read_only() };
                    let r = t.map(&mut mem, ipa((base + page) * K4), pa((0x10_0000 + out) * K4), pages * K4, attrs);
                    let clash = (page..page + pages).any(|p| model.contains_key(&p));
                    prop_assert_eq!(r.is_err(), clash);
                    if !clash {
                        for i in 0..pages {
                            model.insert(page + i, (0x10_0000 + out + i, rw));
                        }
                    }
                }
                Op::Unmap { page, pages } => {
                    t.unmap(&mut mem, ipa((base + page) * K4), pages * K4).unwrap();
                    for p in page..page + pages {
                        model.remove(&p);
                    }
                }
                Op::Protect { page, pages } => {
                    t.set_permissions(&mut mem, ipa((base + page) * K4), pages * K4, Attributes::RAM_RWX.read_only()).unwrap();
                    for p in page..page + pages {
                        if let Some(e) = model.get_mut(&p) {
                            e.1 = false;
                        }
                    }
                }
            }
        }
        for p in 0..5200u64 {
            let got = t.translate(&mem, ipa((base + p) * K4 + 8));
            let want = model.get(&p).map(|&(o, w)| {
                let a = if w { Attributes::RAM_RWX } else { Attributes::RAM_RWX.read_only() };
                (pa(o * K4 + 8), a)
            });
            prop_assert_eq!(got, want, "page {}", p);
        }
        prop_assert_eq!(t.table_count(), mem.live());
        t.destroy(&mut mem);
        prop_assert_eq!(mem.live(), 0);
    }
}
