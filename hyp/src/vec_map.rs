//! A map kept as a vector sorted by key, for the hypervisor's per-domain and
//! per-vCPU tables.
//!
//! Why not `BTreeMap`: these tables are small (per domain: at most 255,
//! the VMID limit; per vCPU or grant entry: a few thousand at worst, tens in
//! practice) and are read far more often than they change. A binary search
//! over one contiguous slice is at least as fast as a walk down tree nodes at
//! those sizes, and each `BTreeMap<K, V>` instantiation costs 3–16 KiB of
//! image (node splitting, merging and the inlined searches) where this costs
//! a few hundred bytes. Inserting and removing move the entries after the
//! slot: cheap at these sizes, and it happens when domains, vCPUs or grant
//! uses come and go, not on every hypercall.

use alloc::vec::Vec;

/// Entries sorted by key, keys unique. Iteration is in key order, as with
/// `BTreeMap`.
#[derive(Clone, Debug)]
pub(crate) struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> VecMap<K, V> {
    /// An empty map (does not allocate).
    pub(crate) const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Entries in key order, values mutable.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Values in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Values in key order, mutable.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Keeps only the entries for which `keep` is true.
    #[cfg(test)]
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// `Ok(index)` of `key`, or `Err(index)` where it would be inserted.
    fn find(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value of `key`, mutable.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    /// Sets the value of `key`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(core::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// The value of `key`, first inserting `make()` if it has none.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (key, make()));
                i
            }
        };
        &mut self.entries[i].1
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }
}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter =
        core::iter::Map<core::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<'a, K, V> IntoIterator for &'a mut VecMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter =
        core::iter::Map<core::slice::IterMut<'a, (K, V)>, fn(&'a mut (K, V)) -> (&'a K, &'a mut V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }
}

/// Slots of an [`IndexedMap`]'s direct-mapped index.
const INDEX_SLOTS: usize = 256;

/// A key that names a small integer, for the direct-mapped index of an
/// [`IndexedMap`]: domain ids and (domain, vCPU) pairs, which are dense and
/// small in practice. Distinct keys may share a slot; lookups check the key.
pub(crate) trait DenseKey: Ord {
    /// The key as an integer; equal keys give equal slots.
    fn slot(&self) -> usize;
}

impl DenseKey for tern_abi::domctl::DomainId {
    fn slot(&self) -> usize {
        self.0 as usize
    }
}

impl DenseKey for (tern_abi::domctl::DomainId, usize) {
    fn slot(&self) -> usize {
        // vCPUs of one domain in neighbouring slots, domains spread out.
        (self.0.0 as usize).wrapping_mul(crate::domain::MAX_VCPUS) ^ self.1
    }
}

/// A [`VecMap`] with a direct-mapped index in front: slot `key.slot() %
/// 256` holds the position of a key with that slot, so a lookup on the trap
/// paths is one load and one compare instead of a binary search (the
/// scheduler's and event channels' per-domain and per-vCPU tables are read
/// tens of times per event round trip). A key whose slot holds another key
/// (more than 256 keys, or ids 256 apart) falls back to the binary search.
/// The index is rebuilt when keys come or go, which is rare.
#[derive(Clone, Debug)]
pub(crate) struct IndexedMap<K, V> {
    map: VecMap<K, V>,
    /// Position + 1 of a key in `map`, 0 for none.
    index: [u16; INDEX_SLOTS],
}

impl<K, V> Default for IndexedMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> IndexedMap<K, V> {
    /// An empty map (does not allocate).
    pub(crate) const fn new() -> Self {
        Self {
            map: VecMap::new(),
            index: [0; INDEX_SLOTS],
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    /// Values in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values()
    }

    /// Values in key order, mutable.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.map.values_mut()
    }
}

impl<K: DenseKey, V> IndexedMap<K, V> {
    fn reindex(&mut self) {
        self.index = [0; INDEX_SLOTS];
        for (i, (k, _)) in self.map.entries.iter().enumerate() {
            let slot = &mut self.index[k.slot() % INDEX_SLOTS];
            if *slot == 0 {
                *slot = u16::try_from(i + 1).unwrap_or(0);
            }
        }
    }

    // Out of line, like the binary search behind it: inlined at every
    // lookup it cost about 10 KiB of image for a few instructions per call.
    #[inline(never)]
    fn find(&self, key: &K) -> Result<usize, usize> {
        let hint = usize::from(self.index[key.slot() % INDEX_SLOTS]);
        // No closures on this path: at opt-level 2 they stayed calls of
        // their own at every lookup.
        if let Some(i) = hint.checked_sub(1)
            && let Some((k, _)) = self.map.entries.get(i)
            && k == key
        {
            return Ok(i);
        }
        self.map.find(key)
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        match self.find(key) {
            Ok(i) => match self.map.entries.get(i) {
                Some((_, v)) => Some(v),
                None => None,
            },
            Err(_) => None,
        }
    }

    /// Position of `key` if its index slot holds it, inline.
    #[inline(always)]
    fn indexed(&self, key: &K) -> Option<usize> {
        // An empty slot (0) wraps to a position no vector has: the bounds
        // check below then answers for it too.
        let i = usize::from(self.index[key.slot() % INDEX_SLOTS]).wrapping_sub(1);
        match self.map.entries.get(i) {
            Some((k, _)) if k == key => Some(i),
            _ => None,
        }
    }

    /// [`Self::get`] with the index hit inline and the rest out of line: for
    /// the few lookups of the event round trip and the vCPU switch (inlined at
    /// every lookup it would cost kilobytes of image, see `find`).
    #[inline(always)]
    pub(crate) fn get_hot(&self, key: &K) -> Option<&V> {
        match self.indexed(key) {
            // No closures (see `find`).
            Some(i) => match self.map.entries.get(i) {
                Some((_, v)) => Some(v),
                None => None,
            },
            None => self.get(key),
        }
    }

    /// [`Self::get_mut`] with the index hit inline, as [`Self::get_hot`].
    #[inline(always)]
    pub(crate) fn get_mut_hot(&mut self, key: &K) -> Option<&mut V> {
        match self.indexed(key) {
            Some(i) => match self.map.entries.get_mut(i) {
                Some((_, v)) => Some(v),
                None => None,
            },
            None => self.get_mut(key),
        }
    }

    /// The values of two distinct keys, both mutable (`None` if either is
    /// missing or they are the same key), each found as by
    /// [`Self::get_mut_hot`].
    #[inline(always)]
    pub(crate) fn get_pair_mut_hot(&mut self, a: &K, b: &K) -> Option<(&mut V, &mut V)> {
        let i = match self.indexed(a) {
            Some(i) => i,
            None => self.find(a).ok()?,
        };
        let j = match self.indexed(b) {
            Some(j) => j,
            None => self.find(b).ok()?,
        };
        // Checks both positions and that they differ (`None` for one key
        // twice) in fewer steps than splitting the slice.
        match self.map.entries.get_disjoint_mut([i, j]) {
            Ok([(_, x), (_, y)]) => Some((x, y)),
            Err(_) => None,
        }
    }

    /// The value of `key`, mutable.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self.find(key) {
            Ok(i) => match self.map.entries.get_mut(i) {
                Some((_, v)) => Some(v),
                None => None,
            },
            Err(_) => None,
        }
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    /// Sets the value of `key`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let old = self.map.insert(key, value);
        if old.is_none() {
            self.reindex();
        }
        old
    }

    /// The value of `key`, first inserting `make()` if it has none.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            // A miss always comes from the binary search: `at` is where
            // the key belongs.
            Err(at) => {
                self.map.entries.insert(at, (key, make()));
                self.reindex();
                at
            }
        };
        &mut self.map.entries[i].1
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.map.remove(key);
        if old.is_some() {
            self.reindex();
        }
        old
    }
}

impl<'a, K, V> IntoIterator for &'a IndexedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = <&'a VecMap<K, V> as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        (&self.map).into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a mut IndexedMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = <&'a mut VecMap<K, V> as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        (&mut self.map).into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::VecMap;

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut m = VecMap::new();
        assert!(m.is_empty());
        assert_eq!(m.insert(5u32, 'a'), None);
        assert_eq!(m.insert(1, 'b'), None);
        assert_eq!(m.insert(9, 'c'), None);
        assert_eq!(m.insert(5, 'd'), Some('a'));
        assert_eq!(m.len(), 3);
        assert_eq!(
            m.iter().map(|(&k, _)| k).collect::<alloc::vec::Vec<_>>(),
            [1, 5, 9]
        );
        assert_eq!(m.get(&5), Some(&'d'));
        assert_eq!(m.get(&4), None);
        assert!(m.contains_key(&9));
        *m.get_or_insert_with(3, || 'e') = 'f';
        assert_eq!(*m.get_or_insert_with(3, || 'x'), 'f');
        if let Some(v) = m.get_mut(&1) {
            *v = 'g';
        }
        assert_eq!(m.remove(&5), Some('d'));
        assert_eq!(m.remove(&5), None);
        let all: alloc::vec::Vec<_> = (&m).into_iter().map(|(&k, &v)| (k, v)).collect();
        assert_eq!(all, [(1, 'g'), (3, 'f'), (9, 'c')]);
        for v in m.values_mut() {
            *v = 'z';
        }
        assert!(m.values().all(|&v| v == 'z'));
        m.retain(|&k, _| k != 3);
        assert_eq!(
            m.iter().map(|(&k, _)| k).collect::<alloc::vec::Vec<_>>(),
            [1, 9]
        );
    }

    #[test]
    fn indexed_map_finds_keys_that_share_a_slot() {
        use super::IndexedMap;
        use tern_abi::domctl::DomainId;
        let mut m = IndexedMap::new();
        // 1, 257 and 513 share slot 1: only the first is in the index.
        for id in [257u32, 1, 513, 2] {
            assert_eq!(m.insert(DomainId(id), id * 10), None);
        }
        for id in [1u32, 2, 257, 513] {
            assert_eq!(m.get(&DomainId(id)), Some(&(id * 10)));
            // The inline paths agree, in the index or not (257 and 513 are not).
            assert_eq!(m.get_hot(&DomainId(id)), Some(&(id * 10)));
            assert_eq!(m.get_mut_hot(&DomainId(id)).copied(), Some(id * 10));
        }
        assert_eq!(m.get_hot(&DomainId(769)), None);
        assert_eq!(m.get_mut_hot(&DomainId(3)), None);
        // Pairs, in either order, indexed or not; never one key twice.
        for (a, b) in [(1u32, 2u32), (2, 1), (257, 1), (2, 513)] {
            let (x, y) = m.get_pair_mut_hot(&DomainId(a), &DomainId(b)).unwrap();
            assert_eq!((*x, *y), (a * 10, b * 10));
        }
        assert!(m.get_pair_mut_hot(&DomainId(2), &DomainId(2)).is_none());
        assert!(m.get_pair_mut_hot(&DomainId(2), &DomainId(3)).is_none());
        assert!(m.get_pair_mut_hot(&DomainId(769), &DomainId(2)).is_none());
        assert_eq!(m.get(&DomainId(769)), None);
        assert_eq!(m.remove(&DomainId(1)), Some(10));
        // Positions moved: the index must follow.
        assert_eq!(m.get(&DomainId(2)), Some(&20));
        assert_eq!(m.get(&DomainId(257)), Some(&2570));
        assert!(!m.contains_key(&DomainId(1)));
        assert_eq!(m.remove(&DomainId(257)), Some(2570));
        assert_eq!(m.get(&DomainId(513)), Some(&5130));
        assert_eq!(
            m.iter().map(|(k, _)| k.0).collect::<alloc::vec::Vec<_>>(),
            [2, 513]
        );
        *m.get_or_insert_with(DomainId(1), || 1) += 1;
        assert_eq!(m.get(&DomainId(1)), Some(&2));
        assert_eq!(m.get(&DomainId(513)), Some(&5130));
        let mut v = IndexedMap::new();
        for d in 0..40u32 {
            for c in 0..3 {
                v.insert((DomainId(d), c), d * 3 + c as u32);
            }
        }
        for d in 0..40u32 {
            for c in 0..3 {
                assert_eq!(v.get(&(DomainId(d), c)), Some(&(d * 3 + c as u32)));
            }
        }
        assert_eq!(v.len(), 120);
    }
}
