//! A set of physical CPUs, one bit per logical CPU index: vCPU affinity and
//! the CPUs to kick with an IPI.

use core::fmt;

use crate::percpu::CpuIndex;

/// A set of logical CPU indices `0..CpuMask::BITS`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuMask(pub u64);

impl CpuMask {
    /// How many CPUs a mask can name.
    pub const BITS: usize = u64::BITS as usize;
    /// No CPU.
    pub const EMPTY: Self = Self(0);

    /// The first `n` CPUs (`0..n`); every CPU a mask can name if `n` is larger.
    pub const fn first(n: usize) -> Self {
        if n >= Self::BITS {
            Self(u64::MAX)
        } else {
            Self((1u64 << n) - 1)
        }
    }

    /// Just `cpu` (empty if it is beyond what a mask can name).
    pub const fn only(cpu: CpuIndex) -> Self {
        if cpu.0 < Self::BITS {
            Self(1 << cpu.0)
        } else {
            Self::EMPTY
        }
    }

    /// Whether `cpu` is in the set.
    pub const fn contains(self, cpu: CpuIndex) -> bool {
        cpu.0 < Self::BITS && self.0 & (1 << cpu.0) != 0
    }

    /// Adds `cpu` (ignored if beyond what a mask can name).
    pub const fn insert(&mut self, cpu: CpuIndex) {
        self.0 |= Self::only(cpu).0;
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many CPUs are in the set.
    pub const fn count(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The CPUs in both sets.
    pub const fn and(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The CPUs in either set.
    pub const fn or(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The CPUs in the set, lowest index first.
    pub fn iter(self) -> impl Iterator<Item = CpuIndex> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(CpuIndex(i))
        })
    }
}

impl fmt::Debug for CpuMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(|c| c.0)).finish()
    }
}
