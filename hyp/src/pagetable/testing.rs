//! A host-side [`TableMemory`] for unit tests of this crate (stage-2 domain code
//! included): tables live in a `Vec`, "physical" addresses are fake, and every
//! allocation is counted so tests can assert that nothing leaks.

use std::vec::Vec;

use super::{ENTRIES_PER_TABLE, TableMemory};
use crate::addr::{PAGE_SIZE, PhysAddr};

/// Fake physical address of the first arena slot.
pub const ARENA_BASE: u64 = 0x8000_0000;

/// A fixed pool of 4 KiB tables with leak accounting and fault injection.
#[derive(Debug)]
pub struct TestArena {
    slots: Vec<[u64; ENTRIES_PER_TABLE]>,
    used: Vec<bool>,
    /// Allocations still allowed before `alloc_tables` starts failing (`None`: no limit).
    pub fail_after: Option<usize>,
    /// Every `tlb_invalidate` call, in order.
    pub invalidations: Vec<(u64, u64)>,
}

impl TestArena {
    /// An arena of `capacity` tables.
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: vec![[0xdead_beef_dead_beef; ENTRIES_PER_TABLE]; capacity],
            used: vec![false; capacity],
            fail_after: None,
            invalidations: Vec::new(),
        }
    }

    /// Tables currently allocated.
    pub fn live(&self) -> usize {
        self.used.iter().filter(|&&u| u).count()
    }

    fn slot(&self, pa: PhysAddr) -> usize {
        assert!(
            pa.0 >= ARENA_BASE && pa.is_aligned(PAGE_SIZE),
            "foreign table address {pa:?}"
        );
        let i = ((pa.0 - ARENA_BASE) / PAGE_SIZE) as usize;
        assert!(
            i < self.slots.len() && self.used[i],
            "table {pa:?} not allocated"
        );
        i
    }
}

impl TableMemory for TestArena {
    fn alloc_tables(&mut self, count: usize) -> Option<PhysAddr> {
        assert!(count.is_power_of_two());
        if let Some(n) = self.fail_after.as_mut() {
            if *n == 0 {
                return None;
            }
            *n -= 1;
        }
        let start = (0..self.slots.len()).step_by(count).find(|&s| {
            s + count <= self.slots.len() && self.used[s..s + count].iter().all(|u| !u)
        })?;
        self.used[start..start + count]
            .iter_mut()
            .for_each(|u| *u = true);
        Some(PhysAddr(ARENA_BASE + start as u64 * PAGE_SIZE))
    }

    fn free_tables(&mut self, pa: PhysAddr, count: usize) {
        let s = self.slot(pa);
        for i in s..s + count {
            assert!(self.used[i], "double free of table slot {i}");
            self.used[i] = false;
            self.slots[i] = [0xdead_beef_dead_beef; ENTRIES_PER_TABLE];
        }
    }

    fn table(&mut self, pa: PhysAddr) -> &mut [u64; ENTRIES_PER_TABLE] {
        let i = self.slot(pa);
        &mut self.slots[i]
    }

    fn table_ref(&self, pa: PhysAddr) -> &[u64; ENTRIES_PER_TABLE] {
        &self.slots[self.slot(pa)]
    }

    fn tlb_invalidate(&mut self, input: u64, size: u64) {
        self.invalidations.push((input, size));
    }
}
