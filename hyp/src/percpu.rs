//! Per-CPU data: each CPU's logical index and affinity (MPIDR), reachable from
//! the CPU itself through `TPIDR_EL2`.
//!
//! Logical indices are assigned by the boot CPU from the device tree's `/cpus`
//! order (index 0 is the boot CPU). The table is static so that it exists
//! before the heap and before secondaries run with their MMU on.
//!
//! `TPIDR_EL2` holds `index + 1`: zero (its value out of QEMU's reset) then means
//! "not initialised" and [`this_cpu`] panics instead of silently answering CPU 0.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Most CPUs the hypervisor drives (QEMU `virt` tests use up to 8; the Pi has 4).
pub const MAX_CPUS: usize = 8;

/// A logical CPU index, `0..MAX_CPUS`; 0 is the boot CPU.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct CpuIndex(pub usize);

impl CpuIndex {
    /// The boot CPU.
    pub const BOOT: CpuIndex = CpuIndex(0);

    /// The raw index.
    pub const fn get(self) -> usize {
        self.0
    }
}

impl fmt::Display for CpuIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A CPU's affinity as found in `MPIDR_EL1` (Aff3..Aff0 only; the U, MT and
/// RES1 bits are dropped so that values compare equal to the device tree's
/// `reg` of a `/cpus/cpu@N` node and to `GICR_TYPER.Affinity_Value`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mpidr(u64);

impl Mpidr {
    const AFF0_SHIFT: u32 = 0;
    const AFF1_SHIFT: u32 = 8;
    const AFF2_SHIFT: u32 = 16;
    const AFF3_SHIFT: u32 = 32;
    /// Aff3 (bits 39:32) and Aff2..Aff0 (bits 23:0) of MPIDR_EL1 (Arm ARM D23.2.101).
    const AFFINITY_MASK: u64 = 0xff << Self::AFF3_SHIFT | 0xff_ffff;

    /// From a raw `MPIDR_EL1` value or a DT `reg`; non-affinity bits are dropped.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw & Self::AFFINITY_MASK)
    }

    /// Builds an affinity from its four fields.
    pub const fn from_affinity(aff3: u8, aff2: u8, aff1: u8, aff0: u8) -> Self {
        Self(
            (aff3 as u64) << Self::AFF3_SHIFT
                | (aff2 as u64) << Self::AFF2_SHIFT
                | (aff1 as u64) << Self::AFF1_SHIFT
                | (aff0 as u64) << Self::AFF0_SHIFT,
        )
    }

    /// The affinity bits, in MPIDR layout (what PSCI CPU_ON takes as target).
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Affinity level 0 (usually the core within a cluster).
    pub const fn aff0(self) -> u8 {
        (self.0 >> Self::AFF0_SHIFT) as u8
    }
    /// Affinity level 1.
    pub const fn aff1(self) -> u8 {
        (self.0 >> Self::AFF1_SHIFT) as u8
    }
    /// Affinity level 2.
    pub const fn aff2(self) -> u8 {
        (self.0 >> Self::AFF2_SHIFT) as u8
    }
    /// Affinity level 3.
    pub const fn aff3(self) -> u8 {
        (self.0 >> Self::AFF3_SHIFT) as u8
    }

    /// Packed as `Aff3.Aff2.Aff1.Aff0` in 32 bits, the layout of
    /// `GICR_TYPER.Affinity_Value` (IHI 0069 §12.11.37).
    pub const fn packed32(self) -> u32 {
        u32::from_be_bytes([self.aff3(), self.aff2(), self.aff1(), self.aff0()])
    }

    /// The affinity of the CPU executing this.
    #[cfg(target_arch = "aarch64")]
    pub fn current() -> Self {
        use aarch64_cpu::registers::{MPIDR_EL1, Readable};
        Self::from_raw(MPIDR_EL1.get())
    }
}

impl fmt::Debug for Mpidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mpidr({:#x})", self.0)
    }
}

impl fmt::Display for Mpidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// What the hypervisor knows about one CPU. Fields are atomics so that the
/// table can be a plain `static` written by the boot CPU and read by all.
#[derive(Debug)]
pub struct PerCpu {
    index: CpuIndex,
    mpidr: AtomicU64,
    present: AtomicBool,
    online: AtomicBool,
}

impl PerCpu {
    const fn new(index: usize) -> Self {
        Self {
            index: CpuIndex(index),
            mpidr: AtomicU64::new(0),
            present: AtomicBool::new(false),
            online: AtomicBool::new(false),
        }
    }

    /// The logical index.
    pub fn index(&self) -> CpuIndex {
        self.index
    }
    /// The affinity, as recorded by [`register`].
    pub fn mpidr(&self) -> Mpidr {
        Mpidr::from_raw(self.mpidr.load(Ordering::Acquire))
    }
    /// Whether the CPU is described by the platform (registered).
    pub fn is_present(&self) -> bool {
        self.present.load(Ordering::Acquire)
    }
    /// Whether the CPU has finished its bring-up (see `smp`).
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }
    /// Marks the CPU online; called by the CPU itself at the end of bring-up.
    pub fn set_online(&self) {
        self.online.store(true, Ordering::Release);
    }
}

static CPUS: [PerCpu; MAX_CPUS] = {
    let mut cpus = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        cpus[i] = PerCpu::new(i);
        i += 1;
    }
    cpus
};

/// Records CPU `index` with affinity `mpidr`. Called by the boot CPU for every
/// CPU in the platform description before any secondary starts.
///
/// Returns `None` when `index` is out of range.
pub fn register(index: CpuIndex, mpidr: Mpidr) -> Option<&'static PerCpu> {
    let cpu = CPUS.get(index.0)?;
    cpu.mpidr.store(mpidr.get(), Ordering::Release);
    cpu.present.store(true, Ordering::Release);
    Some(cpu)
}

/// The entry of CPU `index`, registered or not.
pub fn get(index: CpuIndex) -> Option<&'static PerCpu> {
    CPUS.get(index.0)
}

/// Every registered CPU, in index order.
pub fn present() -> impl Iterator<Item = &'static PerCpu> {
    CPUS.iter().filter(|c| c.is_present())
}

/// The logical index of the registered CPU with affinity `mpidr`.
pub fn index_of(mpidr: Mpidr) -> Option<CpuIndex> {
    present().find(|c| c.mpidr() == mpidr).map(|c| c.index)
}

/// Makes `index` this CPU's identity: stores it in `TPIDR_EL2`. Each CPU calls
/// this first thing in Rust, before anything that asks [`this_cpu`].
#[cfg(target_arch = "aarch64")]
pub fn init_this_cpu(index: CpuIndex) {
    use aarch64_cpu::registers::{TPIDR_EL2, Writeable};
    assert!(index.0 < MAX_CPUS, "cpu index {index} out of range");
    TPIDR_EL2.set(index.0 as u64 + 1);
}

/// The per-CPU entry of the CPU executing this.
///
/// Panics when [`init_this_cpu`] has not run on this CPU.
#[cfg(target_arch = "aarch64")]
pub fn this_cpu() -> &'static PerCpu {
    use aarch64_cpu::registers::{Readable, TPIDR_EL2};
    let stored = TPIDR_EL2.get() as usize;
    match stored.checked_sub(1).and_then(|i| CPUS.get(i)) {
        Some(cpu) => cpu,
        None => panic!("percpu: TPIDR_EL2 not initialised on this CPU"),
    }
}

/// The logical index of the CPU executing this.
#[cfg(target_arch = "aarch64")]
pub fn this_cpu_index() -> CpuIndex {
    this_cpu().index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpidr_drops_non_affinity_bits() {
        // MPIDR_EL1 of QEMU's CPU 1: RES1 bit 31 set, U=0, MT=0.
        let m = Mpidr::from_raw(0x8000_0001);
        assert_eq!(m.get(), 1);
        assert_eq!(m, Mpidr::from_affinity(0, 0, 0, 1));
    }

    #[test]
    fn mpidr_fields_and_packing() {
        let m = Mpidr::from_affinity(0x12, 0x34, 0x56, 0x78);
        assert_eq!(m.get(), 0x12_0034_5678);
        assert_eq!(
            (m.aff3(), m.aff2(), m.aff1(), m.aff0()),
            (0x12, 0x34, 0x56, 0x78)
        );
        assert_eq!(m.packed32(), 0x1234_5678);
    }

    #[test]
    fn register_and_lookup() {
        let mpidr = Mpidr::from_affinity(0, 0, 1, 3);
        register(CpuIndex(5), mpidr).unwrap();
        assert_eq!(index_of(mpidr), Some(CpuIndex(5)));
        assert!(get(CpuIndex(5)).unwrap().is_present());
        assert!(register(CpuIndex(MAX_CPUS), mpidr).is_none());
    }
}
