//! The interrupt controller, whichever GIC the platform has: one facade over
//! [`super::gicv2`] and [`super::gicv3`].
//!
//! Boot order (see `boot.rs`):
//! 1. at EL3 only (tern entered there, no firmware): [`secure_init`] on the
//!    boot CPU, [`secure_init_this_cpu`] on every CPU that passes through EL3;
//! 2. [`init_distributor`] once, on the boot CPU, at EL2;
//! 3. [`init_cpu`] on every CPU (boot CPU first), then [`self_test`].
//!
//! Interrupt handling: [`acknowledge`] returns an [`Acked`] token that must be
//! handed back to [`end_of_interrupt`]. The CPU interface runs with split EOI
//! (EOImode = 1): `end_of_interrupt` = priority drop + deactivate; the two
//! halves are available separately ([`priority_drop`], [`deactivate`]) so that
//! a physical interrupt can later be forwarded to a guest and deactivated when
//! the guest is done with it.
//!
//! Virtual interrupts for guests go through the list registers: see [`vgic`].

use core::marker::PhantomData;

use crate::addr::PhysAddr;
pub use crate::platform::IntId;

/// Priority given to every interrupt at initialisation: mid-range, so that
/// Non-secure views (which halve priorities, IHI 0069 §4.8.6) still order it
/// above the open priority mask (0xff).
pub const DEFAULT_PRIORITY: u8 = 0xa0;

impl IntId {
    /// First SGI.
    pub const SGI_START: u32 = 0;
    /// First PPI.
    pub const PPI_START: u32 = 16;
    /// First SPI.
    pub const SPI_START: u32 = 32;
    /// First special INTID (1020..1023: "no interrupt" and friends).
    pub const SPECIAL_START: u32 = 1020;
    /// Returned by an acknowledge when nothing is pending.
    pub const SPURIOUS: IntId = IntId(1023);

    /// From a raw INTID.
    pub const fn new(raw: u32) -> Self {
        IntId(raw)
    }
    /// The raw INTID.
    pub const fn get(self) -> u32 {
        self.0
    }
    /// SGI `n` (0..16).
    pub const fn sgi(n: u32) -> Self {
        assert!(n < Self::PPI_START);
        IntId(n)
    }
    /// Whether this is a software-generated interrupt (0..16).
    pub const fn is_sgi(self) -> bool {
        self.0 < Self::PPI_START
    }
    /// Whether this is a private peripheral interrupt (16..32).
    pub const fn is_ppi(self) -> bool {
        self.0 >= Self::PPI_START && self.0 < Self::SPI_START
    }
    /// Whether this is a shared peripheral interrupt (32..1020).
    pub const fn is_spi(self) -> bool {
        self.0 >= Self::SPI_START && self.0 < Self::SPECIAL_START
    }
    /// Whether this is one of the special INTIDs 1020..1023 (IHI 0069 §2.2.1):
    /// an acknowledge that returns one took no interrupt.
    pub const fn is_special(self) -> bool {
        self.0 >= Self::SPECIAL_START && self.0 < 1024
    }
}

/// A memory-mapped register block at a fixed physical address, shareable
/// between CPUs (GIC registers are designed for concurrent access: set/clear
/// registers, per-CPU banking, RWP for ordering).
pub struct Mmio<T> {
    base: PhysAddr,
    _regs: PhantomData<fn() -> T>,
}

impl<T> Mmio<T> {
    /// # Safety
    /// `base` must be the identity-mapped (Device memory, or MMU off) base of a
    /// register block of type `T`, valid for the rest of the hypervisor's life.
    pub const unsafe fn new(base: PhysAddr) -> Self {
        Self {
            base,
            _regs: PhantomData,
        }
    }

    /// The block's physical base.
    pub fn base(&self) -> PhysAddr {
        self.base
    }

    /// The registers.
    pub fn regs(&self) -> &'static T {
        // SAFETY: `new`'s contract: `base` points at a live, mapped block of `T`.
        unsafe { &*(self.base.get() as *const T) }
    }
}

impl<T> Clone for Mmio<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Mmio<T> {}

/// The interrupt taken by [`acknowledge`], to be passed back to
/// [`end_of_interrupt`] (GICv2 needs the raw acknowledge value, which carries
/// the source CPU of an SGI, IHI 0048B §4.4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    intid: IntId,
    raw: u32,
}

impl Acked {
    /// The token of SPI `intid` acknowledged earlier on some CPU: an SPI's
    /// acknowledge value is its INTID (only SGIs carry a source CPU, IHI
    /// 0048B §4.4.4), so it can be deactivated later from anywhere.
    pub const fn spi(intid: IntId) -> Self {
        Self {
            intid,
            raw: intid.get(),
        }
    }

    /// The interrupt's INTID.
    pub fn intid(&self) -> IntId {
        self.intid
    }

    /// Whether nothing was acknowledged (a special INTID was read, see
    /// [`acknowledge_sysreg`]).
    pub fn is_none(&self) -> bool {
        self.intid.is_special()
    }
}

/// What a virtual interrupt injection did (see `vgic::inject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// A list register now holds it, pending.
    Added,
    /// It was already pending in a list register: nothing changed.
    AlreadyPending,
}

/// Why a virtual interrupt injection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgicError {
    /// No virtual interface (GICv2 without GICH, or GIC not initialised).
    NotAvailable,
    /// Every list register holds an interrupt: the caller retries after
    /// the guest has taken some (a maintenance interrupt with
    /// ICH_HCR_EL2.UIE / GICH_HCR.UIE would signal that; not enabled yet).
    NoFreeListRegister,
}

/// Where [`send_sgi`] sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiTarget {
    /// One CPU, by logical index (it must have run [`init_cpu`]).
    Cpu(crate::percpu::CpuIndex),
    /// The calling CPU.
    This,
}

/// Why a GIC operation failed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// The platform describes no GIC.
    NoGic,
    /// [`init_distributor`] has not run.
    NotInitialised,
    /// No redistributor serves this CPU's affinity.
    NoRedistributor,
    /// The GICv3 system-register interface could not be enabled at EL2.
    NoSystemRegisterInterface,
    /// The CPU index is out of range or the CPU was not initialised.
    BadCpu,
    /// The self-test SGI was not taken within its time limit.
    SelfTestTimeout,
    /// The self-test acknowledged a different interrupt.
    SelfTestWrongIntid(IntId),
}

// By hand: the derived one was 524 bytes of image for boot-time log lines.
impl core::fmt::Debug for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self {
            Self::NoGic => "NoGic",
            Self::NotInitialised => "NotInitialised",
            Self::NoRedistributor => "NoRedistributor",
            Self::NoSystemRegisterInterface => "NoSystemRegisterInterface",
            Self::BadCpu => "BadCpu",
            Self::SelfTestTimeout => "SelfTestTimeout",
            Self::SelfTestWrongIntid(i) => return write!(f, "SelfTestWrongIntid({})", i.get()),
        };
        f.write_str(name)
    }
}

#[cfg(target_arch = "aarch64")]
mod hw;
#[cfg(target_arch = "aarch64")]
pub use hw::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intid_classes() {
        assert!(IntId::sgi(15).is_sgi());
        assert!(IntId::new(16).is_ppi() && IntId::new(31).is_ppi());
        assert!(IntId::new(32).is_spi() && IntId::new(1019).is_spi());
        assert!(!IntId::new(1020).is_spi());
        assert!(IntId::SPURIOUS.is_special());
        assert!(!IntId::new(1024).is_special());
    }
}
