//! The table operations. See the parent module for the policies.

use core::marker::PhantomData;

use super::{
    ENTRIES_PER_TABLE, LAST_LEVEL, MapError, Mapping, OUTPUT_BITS, PageTable, Regime, TableMemory,
    block_allowed, desc_addr, is_leaf, is_table, is_valid, leaf_desc, level_size, table_desc,
};
use crate::addr::{PAGE_SIZE, PhysAddr};

/// An invalid (fault) descriptor.
const INVALID: u64 = 0;

/// One entry of a table touched by an operation on `[va, end)`.
struct Step {
    /// Index in the (possibly concatenated) table.
    idx: usize,
    /// First input address the entry covers.
    entry_base: u64,
    /// The part of the operation's range inside this entry.
    start: u64,
    end: u64,
}

impl Step {
    fn covers_entry(&self, level: u32) -> bool {
        self.start == self.entry_base && self.end - self.start == level_size(level)
    }
}

impl<R: Regime> PageTable<R> {
    /// An empty table tree (only the root, zeroed).
    pub fn new(mem: &mut impl TableMemory) -> Result<Self, MapError> {
        let n = R::LAYOUT.root_tables;
        let root = mem.alloc_tables(n).ok_or(MapError::OutOfMemory)?;
        for i in 0..n as u64 {
            mem.table(PhysAddr(root.0 + i * PAGE_SIZE)).fill(INVALID);
        }
        Ok(Self {
            root,
            tables: n,
            regime: PhantomData,
        })
    }

    /// Physical address of the root table(s): what goes in `TTBR0_EL2` / `VTTBR_EL2`.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// 4 KiB tables in use, the root included.
    pub fn table_count(&self) -> usize {
        self.tables
    }

    /// Maps `[input, input + size)` to `[output, output + size)`.
    pub fn map(
        &mut self,
        mem: &mut impl TableMemory,
        input: R::Input,
        output: PhysAddr,
        size: u64,
        attrs: super::Attributes,
    ) -> Result<(), MapError> {
        let va = R::raw(input);
        let end = check_range::<R>(va, size)?;
        if !output.is_aligned(PAGE_SIZE) {
            return Err(MapError::Unaligned);
        }
        match output.0.checked_add(size) {
            Some(e) if e <= 1 << OUTPUT_BITS => {}
            _ => return Err(MapError::OutputOutOfRange),
        }
        let bits = R::encode(&attrs).ok_or(MapError::UnsupportedAttributes)?;
        if size == 0 {
            return Ok(());
        }
        if self.any_mapped(mem, self.root, R::LAYOUT.start_level, va, end) {
            return Err(MapError::AlreadyMapped);
        }
        let result = self.map_level(
            mem,
            self.root,
            R::LAYOUT.start_level,
            va,
            end,
            output.0,
            bits,
        );
        if result.is_err() {
            // Everything in the range was created by this call, with blocks wholly
            // inside it, so removing the range restores the previous state exactly
            // (including freeing tables this call allocated) without allocating.
            self.remove(mem, self.root, R::LAYOUT.start_level, va, end);
        }
        result
    }

    /// Removes every mapping in `[input, input + size)`; holes are fine.
    pub fn unmap(
        &mut self,
        mem: &mut impl TableMemory,
        input: R::Input,
        size: u64,
    ) -> Result<(), MapError> {
        let va = R::raw(input);
        let end = check_range::<R>(va, size)?;
        if size == 0 {
            return Ok(());
        }
        self.split_at(mem, va)?;
        self.split_at(mem, end)?;
        self.remove(mem, self.root, R::LAYOUT.start_level, va, end);
        Ok(())
    }

    /// Gives every mapped page in `[input, input + size)` the attributes `attrs`
    /// (outputs unchanged; holes skipped). Used to write-protect for dirty logging.
    pub fn set_permissions(
        &mut self,
        mem: &mut impl TableMemory,
        input: R::Input,
        size: u64,
        attrs: super::Attributes,
    ) -> Result<(), MapError> {
        let va = R::raw(input);
        let end = check_range::<R>(va, size)?;
        let bits = R::encode(&attrs).ok_or(MapError::UnsupportedAttributes)?;
        if size == 0 {
            return Ok(());
        }
        self.split_at(mem, va)?;
        self.split_at(mem, end)?;
        self.apply(mem, self.root, R::LAYOUT.start_level, va, end, bits);
        Ok(())
    }

    /// The output address and attributes `input` translates to.
    pub fn translate(
        &self,
        mem: &impl TableMemory,
        input: R::Input,
    ) -> Option<(PhysAddr, super::Attributes)> {
        let va = R::raw(input);
        if va >> R::LAYOUT.input_bits != 0 {
            return None;
        }
        let (mut table, mut level) = (self.root, R::LAYOUT.start_level);
        loop {
            let d = read(mem, table, self.index(va, level));
            if is_table(d, level) {
                table = desc_addr(d);
                level += 1;
            } else if is_valid(d) {
                let offset = va & (level_size(level) - 1);
                return Some((PhysAddr(desc_addr(d).0 + offset), R::decode(d)));
            } else {
                return None;
            }
        }
    }

    /// Calls `f` for every leaf mapping, in input-address order.
    pub fn walk(&self, mem: &impl TableMemory, mut f: impl FnMut(Mapping<R::Input>)) {
        self.walk_level(mem, self.root, R::LAYOUT.start_level, 0, &mut f);
    }

    /// Frees every table, the root included.
    pub fn destroy(mut self, mem: &mut impl TableMemory) {
        self.free_children(mem, self.root, R::LAYOUT.start_level);
        mem.free_tables(self.root, R::LAYOUT.root_tables);
        self.tables -= R::LAYOUT.root_tables;
        debug_assert_eq!(self.tables, 0);
    }

    fn entries(&self, level: u32) -> usize {
        if level == R::LAYOUT.start_level {
            ENTRIES_PER_TABLE * R::LAYOUT.root_tables
        } else {
            ENTRIES_PER_TABLE
        }
    }

    fn index(&self, va: u64, level: u32) -> usize {
        // The mask keeps only the bits this level resolves (the input range was
        // checked, so nothing is lost at the root).
        (va >> super::level_shift(level)) as usize & (self.entries(level) - 1)
    }

    /// The entries of one table that `[va, end)` touches.
    fn steps(&self, level: u32, va: u64, end: u64) -> impl Iterator<Item = Step> + use<R> {
        let size = level_size(level);
        let mask = self.entries(level) - 1;
        let mut cur = va;
        core::iter::from_fn(move || {
            if cur >= end {
                return None;
            }
            let entry_base = cur & !(size - 1);
            let stop = end.min(entry_base + size);
            let step = Step {
                idx: (cur >> super::level_shift(level)) as usize & mask,
                entry_base,
                start: cur,
                end: stop,
            };
            cur = stop;
            Some(step)
        })
    }

    fn new_table(&mut self, mem: &mut impl TableMemory) -> Result<PhysAddr, MapError> {
        let pa = mem.alloc_tables(1).ok_or(MapError::OutOfMemory)?;
        mem.table(pa).fill(INVALID);
        self.tables += 1;
        Ok(pa)
    }

    fn any_mapped(
        &self,
        mem: &impl TableMemory,
        table: PhysAddr,
        level: u32,
        va: u64,
        end: u64,
    ) -> bool {
        self.steps(level, va, end).any(|s| {
            let d = read(mem, table, s.idx);
            is_leaf(d, level)
                || (is_table(d, level)
                    && self.any_mapped(mem, desc_addr(d), level + 1, s.start, s.end))
        })
    }

    #[allow(clippy::too_many_arguments)] // one recursive walker; a struct would only rename them
    fn map_level(
        &mut self,
        mem: &mut impl TableMemory,
        table: PhysAddr,
        level: u32,
        va: u64,
        end: u64,
        pa: u64,
        bits: u64,
    ) -> Result<(), MapError> {
        for s in self.steps(level, va, end) {
            let out = pa + (s.start - va);
            let size = level_size(level);
            let d = read(mem, table, s.idx);
            let leaf_fits = s.covers_entry(level) && out & (size - 1) == 0;
            if leaf_fits && (level == LAST_LEVEL || block_allowed(level)) {
                if is_valid(d) {
                    return Err(MapError::AlreadyMapped); // excluded by the pre-check
                }
                write(mem, table, s.idx, leaf_desc(level, PhysAddr(out), bits));
                continue;
            }
            let next = if is_table(d, level) {
                desc_addr(d)
            } else if !is_valid(d) {
                let t = self.new_table(mem)?;
                write(mem, table, s.idx, table_desc(t));
                t
            } else {
                return Err(MapError::AlreadyMapped); // excluded by the pre-check
            };
            self.map_level(mem, next, level + 1, s.start, s.end, out, bits)?;
        }
        Ok(())
    }

    /// Makes sure no block straddles `addr`, splitting blocks that do into
    /// next-level tables with identical translations.
    fn split_at(&mut self, mem: &mut impl TableMemory, addr: u64) -> Result<(), MapError> {
        if addr >> R::LAYOUT.input_bits != 0 {
            return Ok(()); // the end of the input space
        }
        let (mut table, mut level) = (self.root, R::LAYOUT.start_level);
        loop {
            let idx = self.index(addr, level);
            let d = read(mem, table, idx);
            if is_table(d, level) {
                table = desc_addr(d);
            } else if !is_valid(d) || addr & (level_size(level) - 1) == 0 {
                return Ok(());
            } else {
                // A block (pages cannot straddle a page-aligned address).
                let child = level_size(level + 1);
                let attr_bits = d & R::attr_mask();
                let new = self.new_table(mem)?;
                let out = desc_addr(d).0;
                for (i, e) in mem.table(new).iter_mut().enumerate() {
                    *e = leaf_desc(level + 1, PhysAddr(out + i as u64 * child), attr_bits);
                }
                write(mem, table, idx, INVALID);
                mem.tlb_invalidate(addr & !(level_size(level) - 1), level_size(level));
                write(mem, table, idx, table_desc(new));
                table = new;
            }
            level += 1;
        }
    }

    /// Clears `[va, end)`, in which no block straddles either end. Frees tables
    /// that become empty (never the root).
    fn remove(
        &mut self,
        mem: &mut impl TableMemory,
        table: PhysAddr,
        level: u32,
        va: u64,
        end: u64,
    ) {
        for s in self.steps(level, va, end) {
            let d = read(mem, table, s.idx);
            if is_table(d, level) {
                let child = desc_addr(d);
                self.remove(mem, child, level + 1, s.start, s.end);
                if mem.table_ref(child).iter().all(|&e| !is_valid(e)) {
                    write(mem, table, s.idx, INVALID);
                    mem.tlb_invalidate(s.entry_base, level_size(level));
                    mem.free_tables(child, 1);
                    self.tables -= 1;
                }
            } else if is_valid(d) {
                debug_assert!(s.covers_entry(level), "a block straddles the range end");
                write(mem, table, s.idx, INVALID);
                mem.tlb_invalidate(s.entry_base, level_size(level));
            }
        }
    }

    /// Rewrites the attribute bits of every leaf in `[va, end)`.
    fn apply(
        &mut self,
        mem: &mut impl TableMemory,
        table: PhysAddr,
        level: u32,
        va: u64,
        end: u64,
        bits: u64,
    ) {
        for s in self.steps(level, va, end) {
            let d = read(mem, table, s.idx);
            if is_table(d, level) {
                self.apply(mem, desc_addr(d), level + 1, s.start, s.end, bits);
            } else if is_valid(d) {
                let new = (d & !R::attr_mask()) | bits;
                if new == d {
                    continue;
                }
                let (old_a, new_a) = (R::decode(d), R::decode(new));
                if old_a.memory != new_a.memory || old_a.share != new_a.share {
                    // Changing memory type or shareability needs break-before-make
                    // (Arm ARM D8, "Break-before-make sequence"); a permission change alone does not.
                    write(mem, table, s.idx, INVALID);
                    mem.tlb_invalidate(s.entry_base, level_size(level));
                    write(mem, table, s.idx, new);
                } else {
                    write(mem, table, s.idx, new);
                    mem.tlb_invalidate(s.entry_base, level_size(level));
                }
            }
        }
    }

    fn walk_level(
        &self,
        mem: &impl TableMemory,
        table: PhysAddr,
        level: u32,
        base: u64,
        f: &mut impl FnMut(Mapping<R::Input>),
    ) {
        for idx in 0..self.entries(level) {
            let d = read(mem, table, idx);
            let input = base + idx as u64 * level_size(level);
            if is_table(d, level) {
                self.walk_level(mem, desc_addr(d), level + 1, input, f);
            } else if is_valid(d) {
                f(Mapping {
                    input: R::input(input),
                    output: desc_addr(d),
                    size: level_size(level),
                    attrs: R::decode(d),
                });
            }
        }
    }

    fn free_children(&mut self, mem: &mut impl TableMemory, table: PhysAddr, level: u32) {
        for idx in 0..self.entries(level) {
            let d = read(mem, table, idx);
            if is_table(d, level) {
                let child = desc_addr(d);
                self.free_children(mem, child, level + 1);
                write(mem, table, idx, INVALID);
                mem.free_tables(child, 1);
                self.tables -= 1;
            }
        }
    }
}

/// Checks alignment and bounds of an input range; returns its end.
fn check_range<R: Regime>(va: u64, size: u64) -> Result<u64, MapError> {
    if !va.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(MapError::Unaligned);
    }
    match va.checked_add(size) {
        Some(end) if end <= 1 << R::LAYOUT.input_bits => Ok(end),
        _ => Err(MapError::InputOutOfRange),
    }
}

/// The 4 KiB table holding entry `idx` of a (possibly concatenated) table.
fn locate(table: PhysAddr, idx: usize) -> (PhysAddr, usize) {
    let page = (idx / ENTRIES_PER_TABLE) as u64;
    (
        PhysAddr(table.0 + page * PAGE_SIZE),
        idx % ENTRIES_PER_TABLE,
    )
}

fn read(mem: &impl TableMemory, table: PhysAddr, idx: usize) -> u64 {
    let (t, i) = locate(table, idx);
    mem.table_ref(t)[i]
}

fn write(mem: &mut impl TableMemory, table: PhysAddr, idx: usize, v: u64) {
    let (t, i) = locate(table, idx);
    mem.table(t)[i] = v;
}
