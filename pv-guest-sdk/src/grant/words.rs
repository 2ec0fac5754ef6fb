//! Copies between a page shared with a peer (words another domain may write
//! at any time, hence atomics) and this domain's own bytes.

use core::sync::atomic::{AtomicU64, Ordering};

// Words are copied in native order, which must be the page's little-endian
// word order (`PageBuf::words`).
const _: () = assert!(cfg!(target_endian = "little"));

/// Bytes per word of a page.
const WORD: usize = core::mem::size_of::<u64>();
/// Bytes one iteration of [`burst`] moves: four 16-byte SIMD registers.
const BURST: usize = 64;

/// Copies `src`'s words (a granted page, shared with a peer) into `dst`:
/// `dst.len()` bytes, whole words, at most `src`'s. [`super::PageBuf::read`] and
/// [`super::PageBuf::write`] copy their whole words this way; the block back end
/// and front end move every 4 KiB of data with it.
///
/// Guests and dom0 are built with strict alignment (their data accesses
/// may be to Device memory), so a byte buffer is copied a byte at a time
/// unless it is known to be aligned. Here: 64 bytes per iteration with
/// SIMD loads and stores when both sides are 16-byte aligned and the
/// length a multiple of 64 (every page-sized transfer into a heap buffer),
/// else one relaxed load and store per word, or per byte. A 4 KiB copy is
/// some 400 instructions instead of 2,000 (word loop) or 11,000 (8-byte
/// arrays stored a byte at a time).
pub fn load_words(src: &[AtomicU64], dst: &mut [u8]) {
    let n = dst.len().min(src.len() * WORD) / WORD * WORD;
    let dst = &mut dst[..n];
    if burst_ok(src.as_ptr().cast(), dst.as_ptr(), n) {
        // SAFETY: both ranges are `n` bytes long (`src` holds at least
        // `n / WORD` words), 16-byte aligned and do not overlap (`dst` is
        // exclusively borrowed); the peer writing `src` meanwhile only
        // changes which bytes are copied, the asm being opaque.
        unsafe { burst(src.as_ptr().cast(), dst.as_mut_ptr(), n / BURST) };
        return;
    }
    // SAFETY: every bit pattern is a valid `u8` and a valid `u64`; the
    // aligned middle is a reinterpretation of bytes `dst` owns.
    let (head, mid, tail) = unsafe { dst.align_to_mut::<u64>() };
    if head.is_empty() && tail.is_empty() {
        // Native load, native store: the bytes keep their order.
        for (d, w) in mid.iter_mut().zip(src) {
            *d = w.load(Ordering::Relaxed);
        }
        return;
    }
    for (c, w) in dst.as_chunks_mut::<WORD>().0.iter_mut().zip(src) {
        *c = w.load(Ordering::Relaxed).to_ne_bytes();
    }
}

/// Copies `src` (whole words, at most `dst`'s) into the shared words
/// `dst`, the way [`load_words`] copies out.
pub fn store_words(dst: &[AtomicU64], src: &[u8]) {
    let n = src.len().min(dst.len() * WORD) / WORD * WORD;
    let src = &src[..n];
    if burst_ok(src.as_ptr(), dst.as_ptr().cast(), n) {
        // SAFETY: as in `load_words`; `dst` is shared words (atomics),
        // which the opaque asm may store to through a shared reference
        // as any atomic store may.
        unsafe { burst(src.as_ptr(), dst.as_ptr().cast_mut().cast(), n / BURST) };
        return;
    }
    // SAFETY: as in `load_words`: a read-only reinterpretation of bytes
    // as words, every bit pattern valid.
    let (head, mid, tail) = unsafe { src.align_to::<u64>() };
    if head.is_empty() && tail.is_empty() {
        for (d, w) in mid.iter().zip(dst) {
            w.store(*d, Ordering::Relaxed);
        }
        return;
    }
    for (c, w) in src.as_chunks::<WORD>().0.iter().zip(dst) {
        w.store(u64::from_ne_bytes(*c), Ordering::Relaxed);
    }
}

/// Whether [`burst`] can copy `n` bytes between `a` and `b`.
fn burst_ok(a: *const u8, b: *const u8, n: usize) -> bool {
    cfg!(target_arch = "aarch64")
        && n > 0
        && n.is_multiple_of(BURST)
        && (a as usize).is_multiple_of(16)
        && (b as usize).is_multiple_of(16)
}

/// Copies `bursts` times 64 bytes from `src` to `dst`.
///
/// # Safety
///
/// `src` readable and `dst` writable for `bursts * 64` bytes, both 16-byte
/// aligned, not overlapping.
#[cfg(target_arch = "aarch64")]
unsafe fn burst(src: *const u8, dst: *mut u8, bursts: usize) {
    // SAFETY: the caller's contract; the asm touches only those bytes and
    // the SIMD registers it declares clobbered.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldp {a:q}, {b:q}, [{src}], #32",
            "ldp {c:q}, {d:q}, [{src}], #32",
            "stp {a:q}, {b:q}, [{dst}], #32",
            "stp {c:q}, {d:q}, [{dst}], #32",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            src = inout(reg) src => _,
            dst = inout(reg) dst => _,
            n = inout(reg) bursts => _,
            a = out(vreg) _,
            b = out(vreg) _,
            c = out(vreg) _,
            d = out(vreg) _,
            options(nostack),
        );
    }
}

/// Never called: [`burst_ok`] is false off AArch64 (host tests).
#[cfg(not(target_arch = "aarch64"))]
unsafe fn burst(_: *const u8, _: *mut u8, _: usize) {
    unreachable!("burst copies are AArch64 only")
}

#[cfg(test)]
mod tests {
    use super::super::PAGE_BYTES;
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A page's worth of shared words holding the bytes 0, 1, 2, ...
    fn numbered() -> Vec<AtomicU64> {
        (0..PAGE_BYTES / WORD)
            .map(|w| {
                let mut b = [0u8; WORD];
                for (i, x) in b.iter_mut().enumerate() {
                    *x = (w * WORD + i) as u8;
                }
                AtomicU64::new(u64::from_ne_bytes(b))
            })
            .collect()
    }

    #[test]
    fn words_copy_out_aligned_or_not() {
        let src = numbered();
        let mut backing = vec![0u64; 2 * PAGE_BYTES / WORD];
        // SAFETY: u64 to u8, any bit pattern valid; the view is the whole
        // vector, exclusively borrowed.
        let bytes: &mut [u8] = unsafe { backing.align_to_mut::<u8>().1 };
        for at in [0, 1, 3, 8] {
            let dst = &mut bytes[at..at + 1024];
            dst.fill(0xee);
            load_words(&src, dst);
            assert!(
                dst.iter().enumerate().all(|(i, &b)| b == i as u8),
                "at {at}"
            );
        }
        // Longer than the page: only the page's bytes are copied.
        let dst = &mut bytes[..PAGE_BYTES + 8];
        dst.fill(0xee);
        load_words(&src, dst);
        assert_eq!(dst[PAGE_BYTES - 1], (PAGE_BYTES - 1) as u8);
        assert_eq!(dst[PAGE_BYTES], 0xee);
    }

    #[test]
    fn words_copy_in_aligned_or_not() {
        let mut backing = vec![0u64; PAGE_BYTES / WORD + 1];
        // SAFETY: as above.
        let bytes: &mut [u8] = unsafe { backing.align_to_mut::<u8>().1 };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        for at in [0, 5, 8] {
            let dst: Vec<AtomicU64> = (0..PAGE_BYTES / WORD).map(|_| AtomicU64::new(!0)).collect();
            store_words(&dst, &bytes[at..at + 512]);
            let got: Vec<u8> = dst
                .iter()
                .flat_map(|w| w.load(Ordering::Relaxed).to_ne_bytes())
                .collect();
            assert!((0..512).all(|i| got[i] == (at + i) as u8), "at {at}");
            assert!(
                got[512..].iter().all(|&b| b == 0xff),
                "at {at}: past the end"
            );
        }
    }
}
