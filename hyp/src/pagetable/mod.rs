//! VMSAv8-64 translation tables with the 4 KiB granule (Arm ARM DDI 0487, D8.2
//! "Translation process" and D8.3 "Translation table descriptor formats").
//!
//! Public API:
//! - [`PageTable<R>`] with `R` = [`El2Stage1`] (input [`VirtAddr`]) or [`Stage2`]
//!   (input [`GuestPhysAddr`]); aliases [`El2Table`], [`Stage2Table`].
//!   - `new(mem) -> Result<Self, MapError>`, `root() -> PhysAddr`, `table_count()`
//!   - `map(mem, input, output: PhysAddr, size, Attributes) -> Result<(), MapError>`
//!   - `unmap(mem, input, size) -> Result<(), MapError>`
//!   - `set_permissions(mem, input, size, Attributes) -> Result<(), MapError>`
//!   - `translate(mem, input) -> Option<(PhysAddr, Attributes)>`
//!   - `walk(mem, |Mapping| ..)`, `destroy(self, mem)`
//! - [`TableMemory`]: where tables live (identity-mapped frames in `hyp`, a `Vec`
//!   arena in host tests).
//! - [`Attributes`], [`MemoryType`], [`Shareability`], [`MAIR_EL2_VALUE`].
//! - [`Layout`], [`EL2_STAGE1_LAYOUT`], [`STAGE2_LAYOUT`]: the geometry the boot
//!   code must program into `TCR_EL2` / `VTCR_EL2` (`T0SZ = 64 - input_bits`,
//!   start level as given).
//!
//! Geometry. Stage 1 (EL2): 48-bit VA, lookup starts at level 0, one root table.
//! Stage 2: 40-bit IPA (1 TiB: every QEMU `virt` and Pi 4 guest-physical address
//! fits, and both Cortex-A57 and Cortex-A72 support 44-bit PAs), lookup starts at
//! level 1 with two concatenated level-1 root tables (Arm ARM D8.2, "Concatenated
//! translation tables": a 40-bit IPA at level 1 needs 2^(40-39) = 2 tables), which
//! saves one level of walk compared with a level-0 start. `VTCR_EL2.SL0` = 1.
//!
//! Policies:
//! - `map` never replaces an existing mapping: if any page of the range is already
//!   mapped the call fails with [`MapError::AlreadyMapped`] and nothing changes.
//!   It uses 1 GiB and 2 MiB blocks whenever input, output and size allow.
//!   If it runs out of table memory it undoes its partial work.
//! - `unmap` and `set_permissions` skip holes; they split blocks that straddle the
//!   range ends first (keeping the translation identical), so an out-of-memory
//!   failure leaves every translation unchanged.
//! - Tables left empty by `unmap` are freed at once; `destroy` frees the rest.
//! - Bad input is an error, never a panic.
//!
//! Live tables: every time a valid entry is cleared or replaced, this module calls
//! [`TableMemory::tlb_invalidate`] for the input range it covered, after writing the
//! invalid entry and before writing its replacement (Arm ARM D8, "Break-before-make sequence").
//! After `map` the caller must issue a `dsb ishst` before relying on the new entries.

mod attrs;
#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;

use core::marker::PhantomData;

use attrs::DESC;
pub use attrs::{Attributes, MAIR_EL2_VALUE, MemoryType, Shareability};
use tock_registers::LocalRegisterCopy;

use crate::addr::{GuestPhysAddr, PAGE_SHIFT, PhysAddr, VirtAddr};

/// Entries in one 4 KiB table.
pub const ENTRIES_PER_TABLE: usize = 512;
/// Input-address bits resolved per level (log2 of [`ENTRIES_PER_TABLE`]).
pub const BITS_PER_LEVEL: u32 = 9;
/// The last lookup level (pages).
pub const LAST_LEVEL: u32 = 3;
/// Output addresses are at most 48 bits (no FEAT_LPA).
pub const OUTPUT_BITS: u32 = 48;

/// Geometry of one translation regime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Input address size in bits: `TnSZ = 64 - input_bits`.
    pub input_bits: u32,
    /// Level at which the walk starts.
    pub start_level: u32,
    /// Concatenated tables at the start level (stage 2 only may exceed 1).
    pub root_tables: usize,
}

impl Layout {
    /// `TCR_EL2.T0SZ` / `VTCR_EL2.T0SZ`.
    pub const fn t0sz(&self) -> u32 {
        64 - self.input_bits
    }
}

/// The EL2 stage-1 layout: 48-bit VA, 4 levels from level 0.
pub const EL2_STAGE1_LAYOUT: Layout = Layout {
    input_bits: 48,
    start_level: 0,
    root_tables: 1,
};

/// The stage-2 layout: 40-bit IPA, 3 levels from level 1, 2 concatenated roots.
pub const STAGE2_LAYOUT: Layout = Layout {
    input_bits: 40,
    start_level: 1,
    root_tables: 2,
};

/// A translation regime: its input address type, geometry and descriptor format.
pub trait Regime {
    /// The address type translated.
    type Input: Copy;
    /// Geometry.
    const LAYOUT: Layout;
    /// The raw input address.
    fn raw(input: Self::Input) -> u64;
    /// Builds an input address.
    fn input(raw: u64) -> Self::Input;
    /// Leaf attribute bits, or `None` if the regime cannot express `a`.
    fn encode(a: &Attributes) -> Option<u64>;
    /// Attributes of a leaf descriptor.
    fn decode(desc: u64) -> Attributes;
    /// Every attribute bit [`Regime::encode`] may set.
    fn attr_mask() -> u64;
}

/// Stage 1 of the EL2 translation regime (`HCR_EL2.E2H == 0`).
#[derive(Debug)]
pub enum El2Stage1 {}

/// Stage 2 of the EL1&0 regime (`VTTBR_EL2`).
#[derive(Debug)]
pub enum Stage2 {}

impl Regime for El2Stage1 {
    type Input = VirtAddr;
    const LAYOUT: Layout = EL2_STAGE1_LAYOUT;
    fn raw(input: VirtAddr) -> u64 {
        input.0
    }
    fn input(raw: u64) -> VirtAddr {
        VirtAddr(raw)
    }
    fn encode(a: &Attributes) -> Option<u64> {
        attrs::encode_s1(a)
    }
    fn decode(desc: u64) -> Attributes {
        attrs::decode_s1(desc)
    }
    fn attr_mask() -> u64 {
        attrs::leaf_attr_mask_s1()
    }
}

impl Regime for Stage2 {
    type Input = GuestPhysAddr;
    const LAYOUT: Layout = STAGE2_LAYOUT;
    fn raw(input: GuestPhysAddr) -> u64 {
        input.0
    }
    fn input(raw: u64) -> GuestPhysAddr {
        GuestPhysAddr(raw)
    }
    fn encode(a: &Attributes) -> Option<u64> {
        attrs::encode_s2(a)
    }
    fn decode(desc: u64) -> Attributes {
        attrs::decode_s2(desc)
    }
    fn attr_mask() -> u64 {
        attrs::leaf_attr_mask_s2()
    }
}

/// Backing store for translation tables.
pub trait TableMemory {
    /// Allocates `count` (a power of two) physically contiguous 4 KiB tables,
    /// aligned to `count * 4 KiB`. The contents need not be zeroed.
    fn alloc_tables(&mut self, count: usize) -> Option<PhysAddr>;
    /// Returns tables obtained from [`TableMemory::alloc_tables`] with the same `count`.
    fn free_tables(&mut self, pa: PhysAddr, count: usize);
    /// The table at `pa` (one 4 KiB table, even inside a concatenated root).
    fn table(&mut self, pa: PhysAddr) -> &mut [u64; ENTRIES_PER_TABLE];
    /// Read-only view of the table at `pa`.
    fn table_ref(&self, pa: PhysAddr) -> &[u64; ENTRIES_PER_TABLE];
    /// Called after a valid entry covering `[input, input + size)` was made
    /// invalid: the implementation must make the walkers forget it (DSB, TLBI,
    /// DSB). The default does nothing (host tests, tables not yet live).
    fn tlb_invalidate(&mut self, input: u64, size: u64) {
        let _ = (input, size);
    }
}

/// Why a table operation failed. The table is unchanged unless stated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Input, output or size is not a multiple of 4 KiB.
    Unaligned,
    /// The input range does not fit the regime's input size.
    InputOutOfRange,
    /// The output range does not fit 48 bits.
    OutputOutOfRange,
    /// Part of the range is already mapped (`map` only).
    AlreadyMapped,
    /// No memory for a table.
    OutOfMemory,
    /// The regime cannot express the attributes (stage 1 has no write-only or
    /// no-access encoding).
    UnsupportedAttributes,
}

/// One leaf mapping reported by [`PageTable::walk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping<I> {
    /// First input address.
    pub input: I,
    /// First output address.
    pub output: PhysAddr,
    /// Bytes (4 KiB, 2 MiB or 1 GiB).
    pub size: u64,
    /// Attributes.
    pub attrs: Attributes,
}

/// A translation table tree for regime `R`.
#[derive(Debug)]
pub struct PageTable<R: Regime> {
    root: PhysAddr,
    tables: usize,
    regime: PhantomData<R>,
}

/// The hypervisor's own stage-1 tables.
pub type El2Table = PageTable<El2Stage1>;
/// A domain's stage-2 tables.
pub type Stage2Table = PageTable<Stage2>;

const fn level_shift(level: u32) -> u32 {
    PAGE_SHIFT + BITS_PER_LEVEL * (LAST_LEVEL - level)
}

const fn level_size(level: u32) -> u64 {
    1 << level_shift(level)
}

/// 4 KiB granule: blocks exist at levels 1 and 2 only (D8.3.1, no FEAT_LPA2).
const fn block_allowed(level: u32) -> bool {
    level == 1 || level == 2
}

fn desc(v: u64) -> LocalRegisterCopy<u64, DESC::Register> {
    LocalRegisterCopy::new(v)
}

fn is_valid(d: u64) -> bool {
    desc(d).is_set(DESC::VALID)
}

fn is_table(d: u64, level: u32) -> bool {
    level < LAST_LEVEL && is_valid(d) && desc(d).is_set(DESC::TABLE_OR_PAGE)
}

fn is_leaf(d: u64, level: u32) -> bool {
    is_valid(d) && !is_table(d, level)
}

fn desc_addr(d: u64) -> PhysAddr {
    PhysAddr(desc(d).read(DESC::OUTPUT_ADDR) << PAGE_SHIFT)
}

fn table_desc(pa: PhysAddr) -> u64 {
    (DESC::VALID::SET + DESC::TABLE_OR_PAGE::SET + DESC::OUTPUT_ADDR.val(pa.0 >> PAGE_SHIFT)).value
}

fn leaf_desc(level: u32, pa: PhysAddr, attr_bits: u64) -> u64 {
    // A level-3 page has bit 1 set; a level-1/2 block has it clear.
    let kind = DESC::TABLE_OR_PAGE.val(u64::from(level == LAST_LEVEL));
    (DESC::VALID::SET + kind + DESC::OUTPUT_ADDR.val(pa.0 >> PAGE_SHIFT)).value | attr_bits
}

mod ops;
