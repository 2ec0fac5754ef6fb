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
    #[cfg(test)]
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
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Values in key order, mutable.
    #[cfg(test)]
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
}
