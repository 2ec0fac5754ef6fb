//! STOPGAP until `crate::pagetable` (host-core helper) lands: a minimal
//! identity-map builder for the EL2 stage-1 tables (4K granule, 48-bit input,
//! levels 0-3; 1 GiB / 2 MiB blocks where alignment allows, else 4K pages).
//! Descriptor layout: Arm ARM D8.3 "Translation table descriptor formats".
//!
//! To be replaced by the generic builder; kept small on purpose.

use core::cell::UnsafeCell;

use tock_registers::register_bitfields;

use crate::addr::{PAGE_SIZE, PhysRange};

register_bitfields! {u64,
    /// Stage-1 table, block and page descriptor fields (EL2 regime, one VA range).
    DESC [
        /// Execute-never at EL2.
        XN OFFSET(54) NUMBITS(1) [],
        /// Output address / next-level table address, bits [47:12].
        ADDR OFFSET(12) NUMBITS(36) [],
        /// Access flag: set, so no access-flag faults.
        AF OFFSET(10) NUMBITS(1) [],
        /// Shareability.
        SH OFFSET(8) NUMBITS(2) [
            Non = 0b00,
            Outer = 0b10,
            Inner = 0b11
        ],
        /// Access permissions: read/write at EL2.
        AP OFFSET(6) NUMBITS(2) [
            ReadWrite = 0b00,
            ReadOnly = 0b10
        ],
        /// Index into MAIR_EL2 (see `mmu.rs`: 0 = Device-nGnRE, 1 = Normal WB).
        ATTRINDX OFFSET(2) NUMBITS(3) [
            Device = 0,
            Normal = 1
        ],
        /// Levels 0-2: 1 = table, 0 = block. Level 3: must be 1 (page).
        TYPE OFFSET(1) NUMBITS(1) [
            Block = 0,
            TableOrPage = 1
        ],
        VALID OFFSET(0) NUMBITS(1) []
    ]
}

/// How a range is mapped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemType {
    /// Normal memory, write-back cacheable, inner shareable, executable.
    Normal,
    /// Device-nGnRE, execute-never.
    Device,
}

/// Why the identity map could not be built.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MapError {
    /// The static table pool is exhausted.
    OutOfTables,
    /// The pool was already used (the map is built once).
    AlreadyBuilt,
    /// A range reaches beyond the 48-bit input address space.
    OutOfRange,
}

const ENTRIES: usize = 512;
const POOL_TABLES: usize = 32;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

struct Pool(UnsafeCell<[Table; POOL_TABLES]>);

// SAFETY: the pool is handed out once, by `IdentityMap::new` on the boot CPU
// before any other CPU runs Rust code (guarded by `TAKEN`).
unsafe impl Sync for Pool {}

static POOL: Pool = Pool(UnsafeCell::new([const { Table([0; ENTRIES]) }; POOL_TABLES]));
static TAKEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// An identity map under construction; owns the static table pool.
pub struct IdentityMap {
    tables: &'static mut [Table; POOL_TABLES],
    used: usize,
}

impl IdentityMap {
    /// Takes the table pool (once) and allocates the level-0 table.
    pub fn new() -> Result<Self, MapError> {
        if TAKEN.swap(true, core::sync::atomic::Ordering::Relaxed) {
            return Err(MapError::AlreadyBuilt);
        }
        // SAFETY: `TAKEN` guarantees this is the only reference ever made to
        // the pool; it lives for the rest of the program (`'static`).
        let tables = unsafe { &mut *POOL.0.get() };
        Ok(Self { tables, used: 1 })
    }

    /// Physical address of the level-0 table (for TTBR0_EL2).
    pub fn root(&self) -> usize {
        self.tables[0].0.as_ptr() as usize
    }

    /// The pool's address range (for cache maintenance).
    pub fn pool_range(&self) -> (usize, usize) {
        (self.tables.as_ptr() as usize, core::mem::size_of::<[Table; POOL_TABLES]>())
    }

    /// Maps `range` (rounded out to pages) to itself.
    pub fn map(&mut self, range: PhysRange, ty: MemType) -> Result<(), MapError> {
        let start = range.start.align_down(PAGE_SIZE).get();
        let end = range.end.align_up(PAGE_SIZE).get();
        if end > 1 << 48 {
            return Err(MapError::OutOfRange);
        }
        self.map_level(0, 0, start, end, ty)
    }

    fn map_level(&mut self, table: usize, level: u32, start: u64, end: u64, ty: MemType) -> Result<(), MapError> {
        let shift = 39 - 9 * level;
        let size = 1u64 << shift;
        let mut addr = start;
        while addr < end {
            let index = ((addr >> shift) as usize) % ENTRIES;
            let entry_end = ((addr >> shift) + 1) << shift;
            let chunk_end = entry_end.min(end);
            let whole = addr % size == 0 && chunk_end - addr == size;
            let current = self.tables[table].0[index];
            if level == 3 || (level >= 1 && whole && current == 0) {
                self.tables[table].0[index] = leaf(addr, level, ty);
            } else {
                let next = if current & 0b11 == 0b11 && level < 3 {
                    self.table_index(current)
                } else {
                    // Empty (a block never needs splitting: each range is mapped
                    // once and ranges do not overlap).
                    let next = self.alloc()?;
                    let base = self.tables[next].0.as_ptr() as u64;
                    self.tables[table].0[index] = (DESC::ADDR.val(base >> 12)
                        + DESC::TYPE::TableOrPage
                        + DESC::VALID::SET)
                        .value;
                    next
                };
                self.map_level(next, level + 1, addr, chunk_end, ty)?;
            }
            addr = chunk_end;
        }
        Ok(())
    }

    fn table_index(&self, desc: u64) -> usize {
        let addr = (desc & DESC::ADDR.mask << DESC::ADDR.shift) as usize;
        (addr - self.tables.as_ptr() as usize) / PAGE_SIZE as usize
    }

    fn alloc(&mut self) -> Result<usize, MapError> {
        if self.used == POOL_TABLES {
            return Err(MapError::OutOfTables);
        }
        self.used += 1;
        Ok(self.used - 1)
    }
}

fn leaf(addr: u64, level: u32, ty: MemType) -> u64 {
    let kind = if level == 3 { DESC::TYPE::TableOrPage } else { DESC::TYPE::Block };
    let attrs = match ty {
        MemType::Normal => DESC::ATTRINDX::Normal + DESC::SH::Inner,
        MemType::Device => DESC::ATTRINDX::Device + DESC::SH::Non + DESC::XN::SET,
    };
    (DESC::ADDR.val(addr >> 12) + DESC::AF::SET + DESC::AP::ReadWrite + kind + DESC::VALID::SET + attrs).value
}
