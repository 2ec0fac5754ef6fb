//! Physical memory as the hypervisor sees it: identity mapped (VA == PA), so
//! a physical address is a pointer.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::PhysAddr;
use crate::physmem::PhysMem;

/// `DCZID_EL0.BS`: log2 of the `dc zva` block size in 4-byte words, and
/// `DCZID_EL0.DZP`: set when `dc zva` is prohibited (Arm ARM D23.2, DCZID_EL0).
const DCZID_BS_MASK: u64 = 0b1111;
const DCZID_DZP: u64 = 1 << 4;
const WORD_BYTES: u64 = 4;

/// The `dc zva` block size in bytes, or `None` if the instruction is prohibited.
fn zva_block() -> Option<u64> {
    let dczid: u64;
    // SAFETY: reading an identification register has no side effect.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    (dczid & DCZID_DZP == 0).then(|| WORD_BYTES << (dczid & DCZID_BS_MASK))
}

/// Zeroes `[start, start + len)`: whole blocks with `dc zva` (one instruction
/// per cache-line-sized block, which is what makes creating a domain cheap:
/// dom0's 64 MiB took 25 M instructions with byte stores), the ragged ends
/// with ordinary stores.
fn zero_range(start: u64, len: u64) {
    let end = start + len;
    let (body_start, body_end, block) = match zva_block() {
        Some(b) if start.next_multiple_of(b) < end & !(b - 1) => {
            (start.next_multiple_of(b), end & !(b - 1), b)
        }
        // No usable whole block: plain stores for all of it.
        _ => (end, end, 1),
    };
    // SAFETY: the caller owns the range, which the identity map maps as
    // normal write-back RAM (where `dc zva` is permitted); the three pieces
    // below lie inside it.
    unsafe {
        core::ptr::write_bytes(start as *mut u8, 0, (body_start.min(end) - start) as usize);
        let mut at = body_start;
        while at < body_end {
            asm!("dc zva, {}", in(reg) at, options(nostack, preserves_flags));
            at += block;
        }
        if body_end < end && body_end > body_start {
            core::ptr::write_bytes(body_end as *mut u8, 0, (end - body_end) as usize);
        }
    }
}

/// Bytes `tern_copy_forward` moves per iteration.
const COPY_STRIDE: u64 = 64;

unsafe extern "C" {
    /// Copies `len` bytes (a non-zero multiple of [`COPY_STRIDE`]) from
    /// `src` to `dst`, both 8-byte aligned, front to back.
    fn tern_copy_forward(dst: *mut u8, src: *const u8, len: u64);
}

core::arch::global_asm!(
    r#"
    .section .text.copy_forward, "ax"
    .global tern_copy_forward
tern_copy_forward:
1:  ldp x3, x4, [x1]
    ldp x5, x6, [x1, #16]
    ldp x7, x8, [x1, #32]
    ldp x9, x10, [x1, #48]
    add x1, x1, #{stride}
    stp x3, x4, [x0]
    stp x5, x6, [x0, #16]
    stp x7, x8, [x0, #32]
    stp x9, x10, [x0, #48]
    add x0, x0, #{stride}
    subs x2, x2, #{stride}
    b.ne 1b
    ret
"#,
    stride = const COPY_STRIDE,
);

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
        zero_range(pa.0, len);
    }
    fn copy(&self, src: PhysAddr, dst: PhysAddr, len: u64) {
        // The bulk in 64-byte strides when a forward copy is right (no
        // overlap, or the destination below the source) and both ends are
        // 8-byte aligned: the generic memmove moves one word per four
        // instructions (about 2,000 for a page), this 64 bytes per twelve.
        let forward = dst.0 <= src.0 || dst.0 >= src.0 + len;
        let bulk = if forward && (src.0 | dst.0).is_multiple_of(8) {
            len & !(COPY_STRIDE - 1)
        } else {
            0
        };
        // SAFETY: as in `read`: both ranges lie in frames the hypervisor
        // allocated, checked by the caller, mapped read-write at their
        // physical addresses. `tern_copy_forward` reads each stride before
        // writing it and moves forward, which is correct for the overlaps
        // `forward` admits; `bulk` is a multiple of its stride. `ptr::copy`
        // takes the rest and allows any overlap.
        unsafe {
            if bulk > 0 {
                tern_copy_forward(dst.0 as *mut u8, src.0 as *const u8, bulk);
            }
            core::ptr::copy(
                (src.0 + bulk) as *const u8,
                (dst.0 + bulk) as *mut u8,
                (len - bulk) as usize,
            );
        }
    }
    fn table_ptr(&self, pa: PhysAddr) -> *mut [u64; 512] {
        pa.0 as *mut [u64; 512]
    }
    fn load_u64(&self, pa: PhysAddr) -> u64 {
        word(pa).load(Ordering::Acquire)
    }
    fn store_u64(&self, pa: PhysAddr, value: u64) {
        word(pa).store(value, Ordering::Release)
    }
    fn fetch_or_u64(&self, pa: PhysAddr, bits: u64) -> u64 {
        word(pa).fetch_or(bits, Ordering::AcqRel)
    }
    fn fetch_and_u64(&self, pa: PhysAddr, bits: u64) -> u64 {
        word(pa).fetch_and(bits, Ordering::AcqRel)
    }
}

/// The identity-mapped word at `pa`, as an atomic the guest shares with us.
fn word(pa: PhysAddr) -> &'static AtomicU64 {
    debug_assert!(pa.is_aligned(8));
    // SAFETY: callers pass an 8-byte aligned word inside a frame of a live
    // domain's RAM (checked against that RAM when the guest registered the
    // page), mapped read-write, Normal write-back, at its physical address.
    // Other observers (the guest) touch it only with single-copy-atomic
    // 64-bit accesses, as `AtomicU64` requires.
    unsafe { AtomicU64::from_ptr(pa.0 as *mut u64) }
}
