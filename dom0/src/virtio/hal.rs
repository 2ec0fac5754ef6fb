//! `virtio_drivers::Hal` for dom0: DMA memory from dom0's heap, device
//! addresses from its start-info page.
//!
//! dom0 runs with its stage-1 MMU off, so a pointer is its IPA, and its RAM
//! is one physically contiguous run whose physical address the hypervisor
//! writes into `StartInfo::ram_phys_base`: a buffer anywhere in RAM is
//! contiguous for the device too, at `ipa - ram_base + ram_phys_base`. With
//! the MMU off every access is Device-nGnRnE (uncached), so no cache
//! maintenance is needed around DMA.
//!
//! Besides its own RAM, a device may DMA into a foreign page dom0 has
//! mapped writable and registered with [`allow_dma`] (the block back end's
//! persistently mapped data pages): its mapping-window address translates
//! to the machine address the hypervisor gave with the mapping.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use tern_abi::grant::MAPTRACK_MAX;
use tern_abi::layout::MAP_WINDOW_BASE;
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};

/// Where dom0's RAM is: its first IPA, its size, and the physical address
/// of its first byte. Zero size until [`init`].
static RAM_IPA: AtomicU64 = AtomicU64::new(0);
static RAM_SIZE: AtomicU64 = AtomicU64::new(0);
static RAM_PHYS: AtomicU64 = AtomicU64::new(0);

/// Machine addresses of the foreign pages devices may DMA into, by slot of
/// the mapping window (0: none).
static FOREIGN: [AtomicU64; MAPTRACK_MAX as usize] =
    [const { AtomicU64::new(0) }; MAPTRACK_MAX as usize];

/// The mapping-window slot of the page at `ipa`, and the offset in it.
fn slot_of(ipa: u64) -> Option<(usize, u64)> {
    let off = ipa.checked_sub(MAP_WINDOW_BASE)?;
    let slot = usize::try_from(off / PAGE_SIZE as u64).ok()?;
    (slot < FOREIGN.len()).then_some((slot, off % PAGE_SIZE as u64))
}

/// Lets devices DMA into the foreign page mapped writable at `ipa` (a
/// mapping-window page), whose machine address is `machine`. The caller
/// keeps the mapping until [`forbid_dma`] and until every DMA into the
/// page is done.
pub fn allow_dma(ipa: u64, machine: u64) {
    if let Some((slot, 0)) = slot_of(ipa) {
        FOREIGN[slot].store(machine, Ordering::Release);
    }
}

/// Undoes [`allow_dma`] for the page at `ipa`, before it is unmapped.
pub fn forbid_dma(ipa: u64) {
    if let Some((slot, _)) = slot_of(ipa) {
        FOREIGN[slot].store(0, Ordering::Release);
    }
}

/// The device address of `len` bytes at `ipa` in a page [`allow_dma`]
/// registered, if they lie within it.
fn foreign_addr(ipa: u64, len: u64) -> Option<u64> {
    let (slot, off) = slot_of(ipa)?;
    let machine = FOREIGN[slot].load(Ordering::Acquire);
    (machine != 0 && off.checked_add(len)? <= PAGE_SIZE as u64).then(|| machine + off)
}

/// Records where dom0's RAM is (from the start-info page). Until this is
/// called every DMA allocation fails.
pub fn init(ram_ipa: u64, ram_size: u64, ram_phys: u64) {
    RAM_IPA.store(ram_ipa, Ordering::Relaxed);
    RAM_PHYS.store(ram_phys, Ordering::Relaxed);
    RAM_SIZE.store(ram_size, Ordering::Release);
}

/// The device address of `len` bytes at `ipa`, if they lie in the RAM run
/// `[ram_ipa, ram_ipa + ram_size)` that starts at physical `ram_phys`.
pub fn dma_addr(ipa: u64, len: u64, ram_ipa: u64, ram_size: u64, ram_phys: u64) -> Option<u64> {
    let offset = ipa.checked_sub(ram_ipa)?;
    (offset.checked_add(len)? <= ram_size).then(|| ram_phys + offset)
}

/// The device address of a buffer in dom0's RAM or in a foreign page
/// registered for DMA. A buffer elsewhere is a driver bug, which must
/// never reach a device as a wild address.
fn device_addr(ipa: u64, len: usize) -> PhysAddr {
    let size = RAM_SIZE.load(Ordering::Acquire);
    let (base, phys) = (
        RAM_IPA.load(Ordering::Relaxed),
        RAM_PHYS.load(Ordering::Relaxed),
    );
    match dma_addr(ipa, len as u64, base, size, phys).or_else(|| foreign_addr(ipa, len as u64)) {
        Some(pa) => pa,
        None => panic!("DMA buffer {ipa:#x}+{len:#x} is not in dom0's RAM"),
    }
}

fn pages_layout(pages: usize) -> Option<Layout> {
    Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, PAGE_SIZE).ok()
}

/// dom0's `Hal`: see the module documentation.
pub struct Dom0Hal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned memory from the global
// allocator that nothing else uses until `dma_dealloc`; device addresses
// are the physical addresses of the same bytes (contiguous RAM, checked
// bounds); MMIO is identity-mapped (VA == IPA == PA in the device window).
unsafe impl Hal for Dom0Hal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(layout) = pages_layout(pages) else {
            return (0, NonNull::dangling());
        };
        if RAM_SIZE.load(Ordering::Acquire) == 0 || layout.size() == 0 {
            // `Dma::new` reports a zero address as `Error::DmaError`.
            return (0, NonNull::dangling());
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        match NonNull::new(ptr) {
            Some(p) => (device_addr(p.as_ptr() as u64, layout.size()), p),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let Some(layout) = pages_layout(pages) else {
            return -1;
        };
        // SAFETY: the caller passes back what `dma_alloc` returned for the
        // same page count, so `vaddr` was allocated with this layout.
        unsafe { alloc::alloc::dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Only the PCI transport asks; dom0's device MMIO is identity-mapped.
        NonNull::new(paddr as *mut u8).expect("MMIO at physical address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        device_addr(buffer.cast::<u8>().as_ptr() as u64, buffer.len())
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {
        // Shared in place: nothing to copy back.
    }
}

#[cfg(test)]
mod tests {
    use super::{MAP_WINDOW_BASE, allow_dma, dma_addr, forbid_dma, foreign_addr};

    #[test]
    fn registered_foreign_pages_translate_within_the_page_only() {
        let page = MAP_WINDOW_BASE + 7 * 4096;
        assert_eq!(foreign_addr(page, 512), None, "not registered yet");
        allow_dma(page, 0x1234_5000);
        assert_eq!(foreign_addr(page + 512, 512), Some(0x1234_5200));
        assert_eq!(foreign_addr(page, 4096), Some(0x1234_5000));
        assert_eq!(foreign_addr(page + 512, 4096), None, "past the page");
        assert_eq!(foreign_addr(page + 4096, 8), None, "the next slot");
        assert_eq!(foreign_addr(MAP_WINDOW_BASE - 4096, 8), None);
        forbid_dma(page);
        assert_eq!(foreign_addr(page, 512), None);
    }

    #[test]
    fn device_addresses_follow_the_ram_run() {
        let (ipa, size, phys) = (0x4000_0000, 0x400_0000, 0x4800_0000);
        assert_eq!(
            dma_addr(0x4000_0000, 16, ipa, size, phys),
            Some(0x4800_0000)
        );
        assert_eq!(
            dma_addr(0x4123_4560, 0x20, ipa, size, phys),
            Some(0x4923_4560)
        );
        // The last byte is in, one more is not; below the run is not.
        assert_eq!(dma_addr(0x43ff_ffff, 1, ipa, size, phys), Some(0x4bff_ffff));
        assert_eq!(dma_addr(0x43ff_ffff, 2, ipa, size, phys), None);
        assert_eq!(dma_addr(0x3fff_ffff, 1, ipa, size, phys), None);
        assert_eq!(dma_addr(u64::MAX, 2, ipa, size, phys), None);
    }
}
