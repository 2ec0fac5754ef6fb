//! Address newtypes. No bare integer crosses a module boundary meaning an address:
//! the type says which address space it belongs to.

use core::fmt;

/// Size of a translation granule and of an accounted page.
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw address.
            pub const fn get(self) -> u64 {
                self.0
            }
            /// Whether the address is aligned to `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
            /// Rounds down to `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align - 1))
            }
            /// Rounds up to `align` (a power of two); saturates at the top of the space.
            pub const fn align_up(self, align: u64) -> Self {
                match self.0.checked_add(align - 1) {
                    Some(v) => Self(v & !(align - 1)),
                    None => Self(u64::MAX & !(align - 1)),
                }
            }
            /// `self + offset`, or `None` on overflow.
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// A host physical address (what the hypervisor's identity map and stage-2 output use).
    PhysAddr
);
address_type!(
    /// A guest-physical (intermediate physical) address: a stage-2 input.
    GuestPhysAddr
);
address_type!(
    /// A virtual address in the hypervisor's own EL2 translation regime.
    VirtAddr
);

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PhysRange {
    /// First byte.
    pub start: PhysAddr,
    /// One past the last byte.
    pub end: PhysAddr,
}

/// Sorts `ranges` by start address. An insertion sort: the lists sorted
/// (memory banks, dom0's device windows) hold a few dozen entries at most and
/// are sorted once at boot, and the standard library's sorts cost about 2 KiB
/// of image per element type and key.
pub fn sort_by_start(ranges: &mut [PhysRange]) {
    for i in 1..ranges.len() {
        let mut j = i;
        while j > 0 && ranges[j - 1].start > ranges[j].start {
            ranges.swap(j - 1, j);
            j -= 1;
        }
    }
}

impl PhysRange {
    /// A range from a base and a size; saturates at the top of the address space.
    pub const fn from_base_size(base: u64, size: u64) -> Self {
        Self {
            start: PhysAddr(base),
            end: PhysAddr(base.saturating_add(size)),
        }
    }
    /// Length in bytes.
    pub const fn size(&self) -> u64 {
        self.end.0.saturating_sub(self.start.0)
    }
    /// Whether the range holds no bytes.
    pub const fn is_empty(&self) -> bool {
        self.end.0 <= self.start.0
    }
    /// Whether `addr` lies inside the range.
    pub const fn contains(&self, addr: PhysAddr) -> bool {
        self.start.0 <= addr.0 && addr.0 < self.end.0
    }
    /// Whether the two ranges share a byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start.0 < other.end.0 && other.start.0 < self.end.0
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#012x}-{:#012x})", self.start.0, self.end.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{PhysRange, sort_by_start};

    #[test]
    fn sort_by_start_orders_like_the_standard_sort() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..40 {
            let mut v: alloc::vec::Vec<PhysRange> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    PhysRange::from_base_size(seed % 64 * 0x1000, 0x1000)
                })
                .collect();
            let mut want = v.clone();
            want.sort_by_key(|r| r.start);
            sort_by_start(&mut v);
            assert_eq!(v, want);
        }
    }
}
