//! A map whose entries sit in a direct-mapped table of slots, for the
//! scheduler's and event channels' per-domain and per-vCPU tables.
//!
//! Why: these tables are read several times on every trap that sends an
//! event or switches vCPUs. `DomainTable` gives out ids so that no two live
//! domains share an id's low byte, and a domain has at most `MAX_VCPUS`
//! vCPUs, so the low byte of a domain id (times `MAX_VCPUS`, plus the vCPU,
//! for a per-vCPU table) names a slot that no other live key has: a lookup
//! is one load of the slot, a null test and a compare of the key, where a
//! sorted vector behind an index costs twice that. The tables stay correct
//! for any keys: one whose slot holds another key (a table whose entries
//! outlive their domain, or the ids of host tests) goes in a sorted overflow
//! and is found by binary search. A sorted list of the keys keeps iteration
//! in key order, as the scheduler's accounting and its models expect, at the
//! cost of the live keys rather than a walk over every slot.

use alloc::boxed::Box;
use alloc::vec::Vec;

use tern_abi::domctl::DomainId;

use crate::domain::MAX_VCPUS;
use crate::vec_map::VecMap;

/// Slots of a per-domain table: one per value of an id's low byte.
pub(crate) const DOMAIN_SLOTS: usize = 256;

/// Slots of a per-vCPU table: one per vCPU of each per-domain slot (16 KiB
/// of pointers, allocated once per table).
pub(crate) const VCPU_SLOTS: usize = DOMAIN_SLOTS * MAX_VCPUS;

/// A key that names its slot: distinct live keys have distinct slots
/// (modulo the table's size) in the hypervisor, though the map does not
/// rely on it.
pub(crate) trait SlotKey: Ord + Copy {
    /// The key's slot, before reduction modulo the table's size.
    fn slot(&self) -> usize;
}

impl SlotKey for DomainId {
    fn slot(&self) -> usize {
        self.0 as usize
    }
}

impl SlotKey for (DomainId, usize) {
    fn slot(&self) -> usize {
        // A vCPU index past `MAX_VCPUS` (which no domain has) lands on
        // another key's slot: the compare of the key rejects it.
        (self.0.0 as usize)
            .wrapping_mul(MAX_VCPUS)
            .wrapping_add(self.1)
    }
}

/// A per-domain table.
pub(crate) type DomainMap<V> = SlotMap<DomainId, V, DOMAIN_SLOTS>;

/// A per-vCPU table, keyed by (domain, vCPU index).
pub(crate) type VcpuMap<V> = SlotMap<(DomainId, usize), V, VCPU_SLOTS>;

/// A slot: empty, or one entry (boxed, so that a slot is one pointer).
type Slot<K, V> = Option<Box<(K, V)>>;

/// Entries in `N` slots (a power of two), keys whose slot another key
/// holds in `overflow`. Invariant: an
/// overflow key's slot is never empty (removing a slot's key moves an
/// overflow key of that slot in), so an empty slot answers a miss.
pub(crate) struct SlotMap<K, V, const N: usize> {
    /// The array's length is part of its type: indexing with a slot reduced
    /// modulo `N` needs no bounds check.
    slots: Box<[Slot<K, V>; N]>,
    overflow: VecMap<K, V>,
    /// Every key, sorted.
    keys: Vec<K>,
}

/// `key`'s slot in a table of `N` slots.
#[inline(always)]
fn slot_of<K: SlotKey, const N: usize>(key: &K) -> usize {
    key.slot() % N
}

// Out of line: the overflow is empty in the hypervisor, and its binary
// search inlined at every lookup would cost image for nothing.
#[inline(never)]
fn spill_get<'a, K: Ord, V>(overflow: &'a VecMap<K, V>, key: &K) -> Option<&'a V> {
    overflow.get(key)
}

#[inline(never)]
fn spill_get_mut<'a, K: Ord, V>(overflow: &'a mut VecMap<K, V>, key: &K) -> Option<&'a mut V> {
    overflow.get_mut(key)
}

fn insert_key<K: Ord>(keys: &mut Vec<K>, key: K) {
    if let Err(at) = keys.binary_search(&key) {
        keys.insert(at, key);
    }
}

impl<K: SlotKey, V, const N: usize> Default for SlotMap<K, V, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: SlotKey, V, const N: usize> SlotMap<K, V, N> {
    /// An empty map (allocates its slots: `N` pointers).
    pub(crate) fn new() -> Self {
        const { assert!(N.is_power_of_two()) };
        // Built on the heap: a `[_; N]` on the stack first could be 16 KiB.
        let slots: Box<[Slot<K, V>]> = (0..N).map(|_| None).collect();
        let Ok(slots) = slots.try_into() else {
            unreachable!("{N} slots collected");
        };
        Self {
            slots,
            overflow: VecMap::new(),
            keys: Vec::new(),
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.keys
            .iter()
            .filter_map(move |k| self.get(k).map(|v| (k, v)))
    }

    /// Values in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Calls `f` on each entry in key order, values mutable (an iterator
    /// could not hand out each value found through the slots safely).
    pub(crate) fn for_each_mut(&mut self, mut f: impl FnMut(&K, &mut V)) {
        let Self {
            slots,
            overflow,
            keys,
        } = self;
        for k in keys.iter() {
            let v = match &mut slots[slot_of::<K, N>(k)] {
                Some(e) if e.0 == *k => &mut e.1,
                _ => match overflow.get_mut(k) {
                    Some(v) => v,
                    None => continue,
                },
            };
            f(k, v);
        }
    }

    /// The value of `key`.
    #[inline(never)]
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.get_hot(key)
    }

    /// The value of `key`, mutable.
    #[inline(never)]
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.get_mut_hot(key)
    }

    /// [`Self::get`] inline, for the lookups of the event round trip and
    /// the vCPU switch (the overflow stays out of line).
    #[inline(always)]
    pub(crate) fn get_hot(&self, key: &K) -> Option<&V> {
        match &self.slots[slot_of::<K, N>(key)] {
            Some(e) if e.0 == *key => Some(&e.1),
            _ => spill_get(&self.overflow, key),
        }
    }

    /// [`Self::get_mut`] inline, as [`Self::get_hot`].
    #[inline(always)]
    pub(crate) fn get_mut_hot(&mut self, key: &K) -> Option<&mut V> {
        match &mut self.slots[slot_of::<K, N>(key)] {
            Some(e) if e.0 == *key => Some(&mut e.1),
            _ => spill_get_mut(&mut self.overflow, key),
        }
    }

    /// The values of two distinct keys, both mutable (`None` if either is
    /// missing or they are the same key), inline when both are in their
    /// slots.
    #[inline(always)]
    pub(crate) fn get_pair_mut_hot(&mut self, a: &K, b: &K) -> Option<(&mut V, &mut V)> {
        let (sa, sb) = (slot_of::<K, N>(a), slot_of::<K, N>(b));
        // Distinct keys in their own slots are in distinct slots: the
        // disjoint borrow below then holds.
        let hit = matches!(
            (&self.slots[sa], &self.slots[sb]),
            (Some(x), Some(y)) if x.0 == *a && y.0 == *b
        );
        if !hit {
            return self.get_pair_mut_slow(a, b);
        }
        match self.slots.get_disjoint_mut([sa, sb]) {
            Ok([Some(x), Some(y)]) => Some((&mut x.1, &mut y.1)),
            // One key twice.
            _ => None,
        }
    }

    #[inline(never)]
    fn get_pair_mut_slow(&mut self, a: &K, b: &K) -> Option<(&mut V, &mut V)> {
        let (sa, sb) = (slot_of::<K, N>(a), slot_of::<K, N>(b));
        let (lo, hi) = (sa.min(sb), sa.max(sb));
        let Self {
            slots, overflow, ..
        } = self;
        // The entries that may hold `a` or `b`, each once: their slots
        // (one if they share it) and the overflow.
        let (below, from_hi) = slots.split_at_mut(hi);
        let lo_slot = below.get_mut(lo).filter(|_| lo < hi);
        let near = lo_slot.into_iter().chain(from_hi.first_mut());
        let candidates = near
            .filter_map(|s| s.as_deref_mut())
            .map(|e| (&e.0, &mut e.1))
            .chain(overflow.iter_mut());
        let (mut x, mut y) = (None, None);
        for (k, v) in candidates {
            // One key twice leaves `y` empty.
            if k == a {
                x = Some(v);
            } else if k == b {
                y = Some(v);
            }
        }
        Some((x?, y?))
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Sets the value of `key`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let Self {
            slots,
            overflow,
            keys,
        } = self;
        match &mut slots[slot_of::<K, N>(&key)] {
            Some(e) if e.0 == key => Some(core::mem::replace(&mut e.1, value)),
            Some(_) => {
                let old = overflow.insert(key, value);
                if old.is_none() {
                    insert_key(keys, key);
                }
                old
            }
            // The invariant: no overflow key has this slot.
            s @ None => {
                *s = Some(Box::new((key, value)));
                insert_key(keys, key);
                None
            }
        }
    }

    /// The value of `key`, first inserting `make()` if it has none.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let Self {
            slots,
            overflow,
            keys,
        } = self;
        let s = &mut slots[slot_of::<K, N>(&key)];
        if s.is_none() {
            // The invariant: no overflow key has this slot.
            insert_key(keys, key);
            return &mut s.insert(Box::new((key, make()))).1;
        }
        match s {
            Some(e) if e.0 == key => &mut e.1,
            _ => {
                let mut made = false;
                let v = overflow.get_or_insert_with(key, || {
                    made = true;
                    make()
                });
                if made {
                    insert_key(keys, key);
                }
                v
            }
        }
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let s = slot_of::<K, N>(key);
        let value = match self.slots[s].take_if(|e| e.0 == *key) {
            Some(e) => {
                // Keeps the invariant: an overflow key of this slot moves in.
                let next = self
                    .overflow
                    .iter()
                    .map(|(k, _)| *k)
                    .find(|k| slot_of::<K, N>(k) == s);
                if let Some(k) = next
                    && let Some(v) = self.overflow.remove(&k)
                {
                    self.slots[s] = Some(Box::new((k, v)));
                }
                e.1
            }
            None => self.overflow.remove(key)?,
        };
        if let Ok(at) = self.keys.binary_search(key) {
            self.keys.remove(at);
        }
        Some(value)
    }
}

impl<K: SlotKey + core::fmt::Debug, V: core::fmt::Debug, const N: usize> core::fmt::Debug
    for SlotMap<K, V, N>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests;
