//! Physical memory as the hypervisor sees it: identity mapped (VA == PA), so
//! a physical address is a pointer.

use crate::addr::PhysAddr;
use crate::physmem::PhysMem;

/// The identity map of all RAM, set up by `mmu` at boot.
#[derive(Debug)]
pub struct IdentityMem;

impl PhysMem for IdentityMem {
    fn read(&self, pa: PhysAddr, buf: &mut [u8]) {
        // SAFETY: callers pass ranges inside frames the hypervisor allocated
        // (checked against the owner's RAM beforehand); all RAM is mapped
        // read-write at its physical address; `buf` is hypervisor memory
        // distinct from guest frames.
        unsafe { core::ptr::copy_nonoverlapping(pa.0 as *const u8, buf.as_mut_ptr(), buf.len()) }
    }
    fn write(&self, pa: PhysAddr, data: &[u8]) {
        // SAFETY: as in `read`, with the roles swapped.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), pa.0 as *mut u8, data.len()) }
    }
    fn zero(&self, pa: PhysAddr, len: u64) {
        // SAFETY: as in `read`: an owned, mapped range.
        unsafe { core::ptr::write_bytes(pa.0 as *mut u8, 0, len as usize) }
    }
    fn table_ptr(&self, pa: PhysAddr) -> *mut [u64; 512] {
        pa.0 as *mut [u64; 512]
    }
}
