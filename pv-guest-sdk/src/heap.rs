//! The heap: which part of guest RAM it may use (host-tested), and the global
//! allocator over it (feature `alloc`, target only).

use tern_abi::PAGE_SIZE;

/// A half-open guest-physical range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpaRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl IpaRange {
    /// Bytes in the range (0 if empty or inverted).
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const fn align_up(x: u64) -> u64 {
    x.saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

const fn align_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// The largest page-aligned piece of `[image_end, ram_end)` that overlaps none
/// of `reserved` (e.g. the start-info page, which the hypervisor may place
/// anywhere in RAM). `None` if nothing is left.
pub fn free_range(image_end: u64, ram_end: u64, reserved: &[IpaRange]) -> Option<IpaRange> {
    let mut best: Option<IpaRange> = None;
    let mut cursor = align_up(image_end);
    let limit = align_down(ram_end);
    while cursor < limit {
        // The next reservation that starts at or after `cursor` bounds this
        // gap; a reservation covering `cursor` moves `cursor` past itself.
        let mut gap_end = limit;
        let mut skip_to = None;
        for r in reserved.iter().filter(|r| !r.is_empty()) {
            let (rs, re) = (align_down(r.start), align_up(r.end));
            if rs <= cursor && cursor < re {
                skip_to = Some(skip_to.map_or(re, |s: u64| s.max(re)));
            } else if rs > cursor && rs < gap_end {
                gap_end = rs;
            }
        }
        if let Some(next) = skip_to {
            cursor = next;
            continue;
        }
        let gap = IpaRange {
            start: cursor,
            end: gap_end,
        };
        if best.is_none_or(|b| gap.len() > b.len()) {
            best = Some(gap);
        }
        cursor = gap_end;
    }
    best
}

#[cfg(all(feature = "alloc", target_os = "none"))]
mod global {
    use super::IpaRange;
    use buddy_system_allocator::LockedHeap;

    /// Buddy orders up to 2^31 bytes: more than any guest's RAM in practice.
    #[global_allocator]
    static HEAP: LockedHeap<32> = LockedHeap::empty();

    /// Hands `range` to the allocator. Called once at start-up.
    pub(crate) fn init(range: IpaRange) {
        // SAFETY: `range` comes from `free_range`: page-aligned, inside this
        // guest's RAM, above the image's last section and clear of the
        // start-info page, so nothing else in the program uses it. VA == IPA
        // (MMU off), so the IPA is a valid pointer. Called once, before
        // `main`, so no allocation can be live.
        unsafe {
            HEAP.lock().init(range.start as usize, range.len() as usize);
        }
    }
}

#[cfg(all(feature = "alloc", target_os = "none"))]
pub(crate) use global::init;

/// Without the allocator there is nothing to initialise.
#[cfg(all(not(feature = "alloc"), target_os = "none"))]
pub(crate) fn init(_range: IpaRange) {}

#[cfg(test)]
mod tests {
    use super::*;

    const fn r(start: u64, end: u64) -> IpaRange {
        IpaRange { start, end }
    }

    #[test]
    fn no_reservations() {
        assert_eq!(
            free_range(0x4010_0123, 0x4800_0000, &[]),
            Some(r(0x4010_1000, 0x4800_0000))
        );
    }

    #[test]
    fn reservation_below_image_is_ignored() {
        let si = r(0x4000_0000, 0x4000_1000);
        assert_eq!(
            free_range(0x4010_0000, 0x4800_0000, &[si]),
            Some(r(0x4010_0000, 0x4800_0000))
        );
    }

    #[test]
    fn picks_largest_gap_around_reservation() {
        let si = r(0x47ff_f000, 0x4800_0000);
        assert_eq!(
            free_range(0x4010_0000, 0x4800_0000, &[si]),
            Some(r(0x4010_0000, 0x47ff_f000))
        );
        let mid = r(0x4100_0800, 0x4100_1000);
        assert_eq!(
            free_range(0x4010_0000, 0x4200_0000, &[mid]),
            Some(r(0x4100_1000, 0x4200_0000))
        );
    }

    #[test]
    fn overlapping_reservations() {
        let a = r(0x4010_0000, 0x4020_0000);
        let b = r(0x4018_0000, 0x4030_0000);
        assert_eq!(
            free_range(0x4010_0000, 0x4040_0000, &[a, b]),
            Some(r(0x4030_0000, 0x4040_0000))
        );
    }

    #[test]
    fn nothing_left() {
        assert_eq!(free_range(0x4800_0000, 0x4800_0000, &[]), None);
        let all = r(0x4000_0000, 0x4800_0000);
        assert_eq!(free_range(0x4010_0000, 0x4800_0000, &[all]), None);
    }
}
