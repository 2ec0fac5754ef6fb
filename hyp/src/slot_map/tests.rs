use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use proptest::prelude::*;
use tern_abi::domctl::DomainId;

use super::{DomainMap, VCPU_SLOTS, VcpuMap};

#[test]
fn finds_keys_that_share_a_slot() {
    let mut m = DomainMap::new();
    // 1, 257 and 513 share slot 1: only the first is in it.
    for id in [257u32, 1, 513, 2] {
        assert_eq!(m.insert(DomainId(id), id * 10), None);
    }
    for id in [1u32, 2, 257, 513] {
        assert_eq!(m.get(&DomainId(id)), Some(&(id * 10)));
        assert_eq!(m.get_hot(&DomainId(id)), Some(&(id * 10)));
        assert_eq!(m.get_mut_hot(&DomainId(id)).copied(), Some(id * 10));
    }
    assert_eq!(m.get_hot(&DomainId(769)), None);
    assert_eq!(m.get_mut_hot(&DomainId(3)), None);
    // Pairs, in either order, in their slots or not; never one key twice.
    for (a, b) in [(1u32, 2u32), (2, 1), (257, 1), (2, 513), (257, 513)] {
        let (x, y) = m.get_pair_mut_hot(&DomainId(a), &DomainId(b)).unwrap();
        assert_eq!((*x, *y), (a * 10, b * 10));
    }
    assert!(m.get_pair_mut_hot(&DomainId(2), &DomainId(2)).is_none());
    assert!(m.get_pair_mut_hot(&DomainId(257), &DomainId(257)).is_none());
    assert!(m.get_pair_mut_hot(&DomainId(2), &DomainId(3)).is_none());
    assert!(m.get_pair_mut_hot(&DomainId(769), &DomainId(2)).is_none());
    assert_eq!(m.remove(&DomainId(1)), Some(10));
    // An overflow key moved into the freed slot.
    assert_eq!(m.get(&DomainId(257)), Some(&2570));
    assert_eq!(m.get(&DomainId(513)), Some(&5130));
    assert!(!m.contains_key(&DomainId(1)));
    assert_eq!(m.remove(&DomainId(257)), Some(2570));
    assert_eq!(m.remove(&DomainId(257)), None);
    assert_eq!(
        m.iter().map(|(k, _)| k.0).collect::<Vec<_>>(),
        [2, 513],
        "key order"
    );
    *m.get_or_insert_with(DomainId(1), || 1) += 1;
    *m.get_or_insert_with(DomainId(1), || 7) += 1;
    assert_eq!(m.get(&DomainId(1)), Some(&3));
    assert_eq!(m.get(&DomainId(513)), Some(&5130));
    m.for_each_mut(|k, v| *v = k.0 + 1);
    assert_eq!(m.values().copied().collect::<Vec<_>>(), [2, 3, 514]);
    assert_eq!(m.len(), 3);
}

#[test]
fn vcpus_of_live_domains_have_their_own_slots() {
    let mut v = VcpuMap::new();
    // Ids with distinct low bytes, as `DomainTable` gives them out.
    for d in [0u32, 1, 255, 258, 1000] {
        for c in 0..8 {
            v.insert((DomainId(d), c), d * 8 + c as u32);
        }
    }
    assert!(v.overflow.is_empty());
    assert_eq!(v.get(&(DomainId(1), 8)), None, "no vCPU 8");
    assert_eq!(v.get(&(DomainId(2), 0)), None, "258 is not 2");
    assert_eq!(v.get(&(DomainId(258), 7)), Some(&(258 * 8 + 7)));
    assert_eq!(v.len(), 40);
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u32, usize, u16),
    GetOrInsert(u32, usize, u16),
    Remove(u32, usize),
    Pair(u32, usize, u32, usize),
    Bump,
}

/// Domain ids from few slots (many collisions) and vCPU indexes past 8.
fn key() -> impl Strategy<Value = (u32, usize)> {
    (
        prop_oneof![0u32..4, (0u32..4).prop_map(|i| i * 256 + 1), Just(u32::MAX)],
        0usize..10,
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (key(), any::<u16>()).prop_map(|((d, c), x)| Op::Insert(d, c, x)),
        (key(), any::<u16>()).prop_map(|((d, c), x)| Op::GetOrInsert(d, c, x)),
        key().prop_map(|(d, c)| Op::Remove(d, c)),
        (key(), key()).prop_map(|((a, i), (b, j))| Op::Pair(a, i, b, j)),
        Just(Op::Bump),
    ]
}

proptest! {
    #[test]
    fn behaves_like_a_btree_map(ops in proptest::collection::vec(op(), 1..200)) {
        let mut m = VcpuMap::new();
        let mut model = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(d, c, x) => {
                    let k = (DomainId(d), c);
                    prop_assert_eq!(m.insert(k, x), model.insert(k, x));
                }
                Op::GetOrInsert(d, c, x) => {
                    let k = (DomainId(d), c);
                    prop_assert_eq!(
                        *m.get_or_insert_with(k, || x),
                        *model.entry(k).or_insert(x)
                    );
                }
                Op::Remove(d, c) => {
                    let k = (DomainId(d), c);
                    prop_assert_eq!(m.remove(&k), model.remove(&k));
                }
                Op::Pair(a, i, b, j) => {
                    let (ka, kb) = ((DomainId(a), i), (DomainId(b), j));
                    let want = match (model.get(&ka), model.get(&kb)) {
                        (Some(&x), Some(&y)) if ka != kb => Some((x, y)),
                        _ => None,
                    };
                    let got = m.get_pair_mut_hot(&ka, &kb).map(|(x, y)| {
                        *x = x.wrapping_add(1);
                        *y = y.wrapping_add(2);
                        (x.wrapping_sub(1), y.wrapping_sub(2))
                    });
                    prop_assert_eq!(got, want);
                    if want.is_some() {
                        for (k, by) in [(ka, 1), (kb, 2)] {
                            if let Some(v) = model.get_mut(&k) {
                                *v = v.wrapping_add(by);
                            }
                        }
                    }
                }
                Op::Bump => {
                    m.for_each_mut(|_, v| *v = v.wrapping_mul(3));
                    for v in model.values_mut() {
                        *v = v.wrapping_mul(3);
                    }
                }
            }
            let got: Vec<_> = m.iter().map(|(&k, &v)| (k, v)).collect();
            let want: Vec<_> = model.iter().map(|(&k, &v)| (k, v)).collect();
            prop_assert_eq!(got, want);
            for (k, v) in &model {
                prop_assert_eq!(m.get_hot(k), Some(v));
                prop_assert_eq!(m.get_mut_hot(k).copied(), Some(*v));
            }
            // The invariant behind the miss test: no overflow key has an
            // empty slot.
            for (k, _) in m.overflow.iter() {
                let s = super::slot_of::<_, VCPU_SLOTS>(k);
                prop_assert!(m.slots[s].is_some(), "{:?} in the overflow", k);
            }
        }
    }
}
