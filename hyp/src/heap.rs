//! The hypervisor heap (`#[global_allocator]`): a buddy allocator seeded with a
//! bounded slice of free RAM. The rest of free memory is for the page-frame
//! allocator (guest memory, stage-2 tables).
//!
//! Memory is identity mapped (VA == PA), so free physical ranges are directly
//! usable as heap memory.
//!
//! Only in the bare-metal image (`target_os = "none"`).
#![cfg(target_os = "none")]

use buddy_system_allocator::LockedHeap;

use crate::addr::{PAGE_SIZE, PhysRange};

/// How much RAM the heap gets: enough for hypervisor bookkeeping (domains,
/// event channels, grant tables), small next to guest memory.
pub const HEAP_SIZE: u64 = 16 * 1024 * 1024;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Seeds the heap with up to [`HEAP_SIZE`] bytes taken from the end of the
/// largest of `free` (page-aligned, free RAM, excluded from everything else).
/// Returns the range given to the heap.
///
/// # Safety
/// `free` must hold only RAM that is mapped read-write and used by nothing
/// else for the rest of the program, and this must be called once.
pub unsafe fn init(free: &[PhysRange]) -> Option<PhysRange> {
    let largest = free.iter().max_by_key(|r| r.size())?;
    let size = HEAP_SIZE.min(largest.size()) & !(PAGE_SIZE - 1);
    let range = PhysRange {
        start: crate::addr::PhysAddr(largest.end.get() - size),
        end: largest.end,
    };
    // SAFETY: the caller guarantees the range is unused, mapped RAM; the
    // identity map makes its physical addresses valid pointers.
    unsafe {
        HEAP.lock()
            .init(range.start.get() as usize, range.size() as usize)
    };
    Some(range)
}
