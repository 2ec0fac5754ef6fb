//! GICv3 driver (Arm IHI 0069, "GIC Architecture Specification v3 and v4"):
//! distributor (GICD), redistributors (GICR) and the system-register CPU
//! interface, plus the list registers used to inject virtual interrupts.
//!
//! Affinity routing is always on (GICD_CTLR.ARE_NS/ARE_S = 1): SPIs are routed
//! by GICD_IROUTER<n>, SGIs and PPIs are configured in each CPU's redistributor.
//! tern owns Group 1 Non-secure. With two Security states (QEMU `secure=on`)
//! Non-secure EL2 cannot touch group, wake or Secure control bits, so
//! [`secure_init`] does that at EL3; with one Security state (GICD_CTLR.DS = 1,
//! QEMU without `secure=on`) EL2 puts interrupts in Group 1 itself so that they
//! are signalled as IRQ, not FIQ (IHI 0069 §4.6).

use tock_registers::{
    interfaces::{ReadWriteable, Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite},
};

use super::gic::{DEFAULT_PRIORITY, IntId};
use crate::addr::PhysAddr;
use crate::percpu::Mpidr;

register_bitfields! {u32,
    /// Distributor control, Non-secure (or single Security state) view
    /// (IHI 0069 §12.9.4). With DS = 1, bit 0 enables Group 0 and bit 1 Group 1;
    /// in the Non-secure view bit 1 is EnableGrp1A (Non-secure Group 1) and bit 0
    /// EnableGrp1 (used only without affinity routing). Setting both is right
    /// in either view.
    pub GICD_CTLR [
        /// Register write pending: wait for 0 after changing CTLR or ICENABLER.
        RWP OFFSET(31) NUMBITS(1) [],
        /// ARE_NS in the Non-secure view, ARE with DS = 1 (bit 4 in both).
        ARE OFFSET(4) NUMBITS(1) [],
        EnableGrp1A OFFSET(1) NUMBITS(1) [],
        EnableGrp1 OFFSET(0) NUMBITS(1) [],
    ],
    /// Distributor control, Secure view with DS = 0 (IHI 0069 §12.9.4).
    pub GICD_CTLR_S [
        RWP OFFSET(31) NUMBITS(1) [],
        E1NWF OFFSET(7) NUMBITS(1) [],
        /// Disable Security: left 0, tern keeps both Security states.
        DS OFFSET(6) NUMBITS(1) [],
        ARE_NS OFFSET(5) NUMBITS(1) [],
        ARE_S OFFSET(4) NUMBITS(1) [],
        EnableGrp1S OFFSET(2) NUMBITS(1) [],
        EnableGrp1NS OFFSET(1) NUMBITS(1) [],
        EnableGrp0 OFFSET(0) NUMBITS(1) [],
    ],
    /// Interrupt controller type (IHI 0069 §12.9.38).
    pub GICD_TYPER [
        IDbits OFFSET(19) NUMBITS(5) [],
        SecurityExtn OFFSET(10) NUMBITS(1) [],
        /// The distributor supports SPIs up to INTID 32 * (ITLinesNumber + 1) - 1.
        ITLinesNumber OFFSET(0) NUMBITS(5) [],
    ],
    /// Redistributor power management (IHI 0069 §12.11.42).
    pub GICR_WAKER [
        /// Read-only: 1 while the interface to the CPU is quiescent.
        ChildrenAsleep OFFSET(2) NUMBITS(1) [],
        /// 1: the CPU is asleep, the redistributor does not forward to it.
        ProcessorSleep OFFSET(1) NUMBITS(1) [],
    ],
    /// Redistributor control (IHI 0069 §12.11.2).
    pub GICR_CTLR [
        UWP OFFSET(31) NUMBITS(1) [],
        /// Register write pending for ICENABLER0 writes.
        RWP OFFSET(3) NUMBITS(1) [],
    ],
}

register_bitfields! {u64,
    /// Redistributor type (IHI 0069 §12.11.37).
    pub GICR_TYPER [
        /// Aff3.Aff2.Aff1.Aff0 of the CPU this redistributor serves.
        Affinity OFFSET(32) NUMBITS(32) [],
        ProcessorNumber OFFSET(8) NUMBITS(16) [],
        /// This is the last redistributor of its region.
        Last OFFSET(4) NUMBITS(1) [],
        /// GICv4 virtual LPIs: the redistributor has two extra 64 KiB frames.
        VLPIS OFFSET(1) NUMBITS(1) [],
    ],
    /// SPI routing (IHI 0069 §12.9.22).
    pub GICD_IROUTER [
        Aff3 OFFSET(32) NUMBITS(8) [],
        /// 1: any participating CPU; 0: the CPU named by the affinity fields.
        InterruptRoutingMode OFFSET(31) NUMBITS(1) [],
        Aff2 OFFSET(16) NUMBITS(8) [],
        Aff1 OFFSET(8) NUMBITS(8) [],
        Aff0 OFFSET(0) NUMBITS(8) [],
    ],
}

register_structs! {
    /// Distributor (IHI 0069 §12.8, table 12-25).
    pub GicdRegs {
        (0x0000 => pub ctlr: ReadWrite<u32>),
        (0x0004 => pub typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x0008 => pub iidr: ReadOnly<u32>),
        (0x000c => _reserved0),
        (0x0080 => pub igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => pub isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => pub icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => pub ispendr: [ReadWrite<u32>; 32]),
        (0x0280 => pub icpendr: [ReadWrite<u32>; 32]),
        (0x0300 => pub isactiver: [ReadWrite<u32>; 32]),
        (0x0380 => pub icactiver: [ReadWrite<u32>; 32]),
        (0x0400 => pub ipriorityr: [ReadWrite<u8>; 1020]),
        (0x07fc => _reserved1),
        (0x0c00 => pub icfgr: [ReadWrite<u32>; 64]),
        (0x0d00 => pub igrpmodr: [ReadWrite<u32>; 32]),
        (0x0d80 => _reserved2),
        (0x6100 => pub irouter: [ReadWrite<u64, GICD_IROUTER::Register>; 988]),
        (0x7fe0 => _reserved3),
        (0x10000 => @END),
    }
}

register_structs! {
    /// Redistributor control frame, RD_base (IHI 0069 §12.10, table 12-27).
    pub GicrRdRegs {
        (0x0000 => pub ctlr: ReadWrite<u32, GICR_CTLR::Register>),
        (0x0004 => pub iidr: ReadOnly<u32>),
        (0x0008 => pub typer: ReadOnly<u64, GICR_TYPER::Register>),
        (0x0010 => pub statusr: ReadWrite<u32>),
        (0x0014 => pub waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0018 => _reserved0),
        (0x10000 => @END),
    }
}

register_structs! {
    /// Redistributor SGI/PPI frame, SGI_base = RD_base + 64 KiB
    /// (IHI 0069 §12.10, table 12-28).
    pub GicrSgiRegs {
        (0x0000 => _reserved0),
        (0x0080 => pub igroupr0: ReadWrite<u32>),
        (0x0084 => _reserved1),
        (0x0100 => pub isenabler0: ReadWrite<u32>),
        (0x0104 => _reserved2),
        (0x0180 => pub icenabler0: ReadWrite<u32>),
        (0x0184 => _reserved3),
        (0x0200 => pub ispendr0: ReadWrite<u32>),
        (0x0204 => _reserved4),
        (0x0280 => pub icpendr0: ReadWrite<u32>),
        (0x0284 => _reserved5),
        (0x0300 => pub isactiver0: ReadWrite<u32>),
        (0x0304 => _reserved6),
        (0x0380 => pub icactiver0: ReadWrite<u32>),
        (0x0384 => _reserved7),
        (0x0400 => pub ipriorityr: [ReadWrite<u8>; 32]),
        (0x0420 => _reserved8),
        (0x0c00 => pub icfgr: [ReadWrite<u32>; 2]),
        (0x0c08 => _reserved9),
        (0x0d00 => pub igrpmodr0: ReadWrite<u32>),
        (0x0d04 => _reserved10),
        (0x10000 => @END),
    }
}

/// Size of one redistributor frame.
const FRAME_SIZE: u64 = 0x1_0000;

/// One CPU's redistributor: its RD_base and SGI_base frames.
#[derive(Clone, Copy)]
pub struct Redistributor {
    rd_base: PhysAddr,
}

impl Redistributor {
    /// The redistributor whose RD_base frame is at `rd_base`.
    ///
    /// # Safety
    /// `rd_base` must be the (identity-mapped, Device memory) RD_base of a
    /// GICv3 redistributor, followed by its SGI_base frame.
    pub const unsafe fn new(rd_base: PhysAddr) -> Self {
        Self { rd_base }
    }

    /// Physical address of RD_base.
    pub fn base(&self) -> PhysAddr {
        self.rd_base
    }

    /// The control frame.
    pub fn rd(&self) -> &'static GicrRdRegs {
        // SAFETY: `new`'s contract: `rd_base` is a mapped RD_base frame, which
        // stays mapped for the hypervisor's lifetime.
        unsafe { &*(self.rd_base.get() as *const GicrRdRegs) }
    }

    /// The SGI/PPI frame.
    pub fn sgi(&self) -> &'static GicrSgiRegs {
        // SAFETY: `new`'s contract: SGI_base follows RD_base.
        unsafe { &*((self.rd_base.get() + FRAME_SIZE) as *const GicrSgiRegs) }
    }

    /// Affinity of the CPU this redistributor serves.
    pub fn affinity(&self) -> u32 {
        self.rd().typer.read(GICR_TYPER::Affinity) as u32
    }

    /// Clears ProcessorSleep and waits until ChildrenAsleep reads 0, so the
    /// redistributor forwards interrupts to its CPU (IHI 0069 §11.1,
    /// "Power management"). With two Security states the register is RAZ/WI to
    /// Non-secure accesses, so from EL2 this is a no-op there and [`secure_init`]
    /// does it at EL3.
    pub fn wake(&self) {
        let rd = self.rd();
        rd.waker.modify(GICR_WAKER::ProcessorSleep::CLEAR);
        while rd.waker.is_set(GICR_WAKER::ChildrenAsleep) {
            core::hint::spin_loop();
        }
    }

    /// Puts this CPU's SGIs and PPIs in Group 1 Non-secure (IGROUPR0 = 1,
    /// IGRPMODR0 = 0; IHI 0069 §4.6.2, table 4-5). Needs a Secure access or
    /// DS = 1; otherwise the writes are ignored.
    pub fn set_group1_ns(&self) {
        let sgi = self.sgi();
        sgi.igroupr0.set(u32::MAX);
        sgi.igrpmodr0.set(0);
    }

    fn wait_rwp(&self) {
        while self.rd().ctlr.is_set(GICR_CTLR::RWP) {
            core::hint::spin_loop();
        }
    }
}

/// Walks the redistributors of a region (IHI 0069 §9.5.1: consecutive frames
/// until GICR_TYPER.Last), calling `f` on each until it returns `Some`.
///
/// # Safety
/// `[region_base, region_base + region_size)` must be a mapped redistributor
/// region described by the firmware.
pub unsafe fn for_each_redistributor<T>(
    region_base: PhysAddr,
    region_size: u64,
    mut f: impl FnMut(Redistributor) -> Option<T>,
) -> Option<T> {
    let mut offset = 0;
    while offset < region_size {
        // SAFETY: within the caller's region; each step lands on the RD_base of
        // the next redistributor because the stride follows GICR_TYPER.VLPIS.
        let rd = unsafe { Redistributor::new(PhysAddr(region_base.get() + offset)) };
        if let Some(found) = f(rd) {
            return Some(found);
        }
        let typer = rd.rd().typer.extract();
        if typer.is_set(GICR_TYPER::Last) {
            break;
        }
        let frames = if typer.is_set(GICR_TYPER::VLPIS) {
            4
        } else {
            2
        };
        offset += frames * FRAME_SIZE;
    }
    None
}

/// Number of INTIDs the distributor implements (SGIs, PPIs and SPIs; IHI 0069
/// §12.9.38), capped at 1020.
pub fn num_intids(dist: &GicdRegs) -> u32 {
    (32 * (dist.typer.read(GICD_TYPER::ITLinesNumber) + 1)).min(IntId::SPECIAL_START)
}

/// Whether the distributor implements two Security states as seen from here:
/// GICD_CTLR.DS reads 1 when it has only one (IHI 0069 §12.9.4).
pub fn has_two_security_states(dist: &GicdRegs) -> bool {
    dist.typer.is_set(GICD_TYPER::SecurityExtn)
}

fn wait_dist_rwp(dist: &GicdRegs) {
    while dist.ctlr.get() & GICD_CTLR::RWP::SET.value != 0 {
        core::hint::spin_loop();
    }
}

/// Secure-side distributor setup, at EL3 (the firmware's part; compare IHI
/// 0069 §4.6 and Arm's "GICv3 and GICv4 Software Overview" §4): affinity
/// routing for both Security states, every SPI in Group 1 Non-secure, Group 1
/// Non-secure forwarding enabled. GICD_CTLR.DS stays 0.
pub fn secure_init_distributor(dist: &GicdRegs) {
    use tock_registers::LocalRegisterCopy;
    let mut ctlr = LocalRegisterCopy::<u32, GICD_CTLR_S::Register>::new(0);
    // Affinity routing may only be enabled with the groups disabled (§12.9.4).
    dist.ctlr.set(0);
    wait_dist_rwp(dist);
    ctlr.write(GICD_CTLR_S::ARE_S::SET + GICD_CTLR_S::ARE_NS::SET);
    dist.ctlr.set(ctlr.get());
    wait_dist_rwp(dist);
    let words = num_intids(dist).div_ceil(32) as usize;
    for w in 1..words {
        dist.igroupr[w].set(u32::MAX);
        dist.igrpmodr[w].set(0);
    }
    ctlr.modify(GICD_CTLR_S::EnableGrp1NS::SET);
    dist.ctlr.set(ctlr.get());
    wait_dist_rwp(dist);
}

/// Distributor initialisation from Non-secure EL2: affinity routing and Group 1
/// enabled, every SPI disabled, inactive, not pending, Group 1 (where writable),
/// at [`DEFAULT_PRIORITY`], level-sensitive, routed to `boot_cpu`.
pub fn init_distributor(dist: &GicdRegs, boot_cpu: Mpidr) {
    let ns_enable = GICD_CTLR::ARE::SET + GICD_CTLR::EnableGrp1A::SET + GICD_CTLR::EnableGrp1::SET;
    // Disable forwarding while reprogramming; keep ARE (it may only change with
    // the groups disabled, and with two Security states the firmware set it).
    dist.ctlr.set(GICD_CTLR::ARE::SET.value);
    wait_dist_rwp(dist);
    let n = num_intids(dist) as usize;
    for w in 1..n / 32 {
        dist.igroupr[w].set(u32::MAX);
        dist.icenabler[w].set(u32::MAX);
        dist.icactiver[w].set(u32::MAX);
        dist.icpendr[w].set(u32::MAX);
    }
    wait_dist_rwp(dist);
    for i in IntId::SPI_START as usize..n {
        dist.ipriorityr[i].set(DEFAULT_PRIORITY);
        dist.irouter[i - IntId::SPI_START as usize].write(route_to(boot_cpu));
    }
    // ICFGR: two bits per INTID, 0b00 = level-sensitive (IHI 0069 §12.9.10).
    for w in 2..n / 16 {
        dist.icfgr[w].set(0);
    }
    dist.ctlr.set(ns_enable.value);
    wait_dist_rwp(dist);
}

fn route_to(cpu: Mpidr) -> tock_registers::fields::FieldValue<u64, GICD_IROUTER::Register> {
    GICD_IROUTER::Aff3.val(cpu.aff3().into())
        + GICD_IROUTER::Aff2.val(cpu.aff2().into())
        + GICD_IROUTER::Aff1.val(cpu.aff1().into())
        + GICD_IROUTER::Aff0.val(cpu.aff0().into())
}

/// Per-CPU redistributor initialisation from Non-secure EL2: woken, SGIs/PPIs
/// in Group 1 (where writable), PPIs disabled, SGIs enabled, priorities set.
pub fn init_redistributor(rd: &Redistributor) {
    rd.wake();
    rd.set_group1_ns();
    let sgi = rd.sgi();
    sgi.icenabler0.set(u32::MAX);
    rd.wait_rwp();
    sgi.icactiver0.set(u32::MAX);
    sgi.icpendr0.set(u32::MAX);
    for p in &sgi.ipriorityr {
        p.set(DEFAULT_PRIORITY);
    }
    // PPIs level-sensitive (ICFGR1); SGIs are always edge (ICFGR0 read-only).
    sgi.icfgr[1].set(0);
    sgi.isenabler0.set(u32::from(u16::MAX));
}

/// Enables `intid`. SPIs are first routed to `target`; SGIs and PPIs are
/// enabled in `rd`, the target CPU's redistributor.
pub fn enable(dist: &GicdRegs, rd: &Redistributor, intid: IntId, target: Mpidr) {
    let (word, mask) = bit(intid);
    if intid.is_spi() {
        dist.irouter[(intid.get() - IntId::SPI_START) as usize].write(route_to(target));
        dist.isenabler[word].set(mask);
    } else {
        rd.sgi().isenabler0.set(mask);
    }
}

/// Disables `intid` (in `rd` for SGIs and PPIs) and waits for the write to
/// take effect (RWP), so that no new activation follows.
pub fn disable(dist: &GicdRegs, rd: &Redistributor, intid: IntId) {
    let (word, mask) = bit(intid);
    if intid.is_spi() {
        dist.icenabler[word].set(mask);
        wait_dist_rwp(dist);
    } else {
        rd.sgi().icenabler0.set(mask);
        rd.wait_rwp();
    }
}

fn bit(intid: IntId) -> (usize, u32) {
    let n = intid.get() as usize;
    (n / 32, 1 << (n % 32))
}

/// The system-register CPU interface (IHI 0069 §12.2) and the virtual
/// interface control registers (§12.4) of the CPU executing the code.
#[cfg(target_arch = "aarch64")]
pub mod cpuif {
    use aarch64_cpu::registers::{ICC_SRE_EL2, ICH_HCR_EL2, ICH_VTR_EL2};
    use tock_registers::LocalRegisterCopy;
    use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

    use super::IntId;
    use crate::arch::aarch64::gic_sysreg::{self as sr, isb};
    use crate::drivers::gic::{Injected, VgicError};
    use crate::percpu::Mpidr;

    /// Why the CPU interface could not be enabled.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum CpuIfError {
        /// ICC_SRE_EL2.SRE did not stick: no system-register interface, or
        /// EL3 left ICC_SRE_EL3.Enable at 0.
        NoSystemRegisterInterface,
    }

    /// Enables this CPU's interface for Non-secure EL2 use: system registers
    /// on (and allowed for EL1: ICC_SRE_EL2.Enable), priority mask open,
    /// split EOI (EOImode = 1: ICC_EOIR1_EL1 drops priority, ICC_DIR_EL1
    /// deactivates; IHI 0069 §4.1.1 — this lets a physical interrupt later be
    /// handed to a guest and deactivated by it through a HW list register),
    /// Group 1 enabled.
    pub fn init() -> Result<(), CpuIfError> {
        ICC_SRE_EL2.write(
            ICC_SRE_EL2::SRE::SET
                + ICC_SRE_EL2::DFB::SET
                + ICC_SRE_EL2::DIB::SET
                + ICC_SRE_EL2::ENABLE::SET,
        );
        isb();
        if !ICC_SRE_EL2.is_set(ICC_SRE_EL2::SRE) {
            return Err(CpuIfError::NoSystemRegisterInterface);
        }
        sr::ICC_PMR_EL1.write(sr::ICC_PMR_EL1::Priority.val(0xff));
        sr::ICC_BPR1_EL1.set(0);
        sr::ICC_CTLR_EL1.modify(sr::ICC_CTLR_EL1::EOImode::SET + sr::ICC_CTLR_EL1::CBPR::CLEAR);
        sr::ICC_IGRPEN1_EL1.write(sr::ICC_IGRPEN1_EL1::Enable::SET);
        isb();
        Ok(())
    }

    /// Reads ICC_IAR1_EL1: acknowledges the highest priority pending Group 1
    /// interrupt (IHI 0069 §12.2.14). Special INTIDs (1020..1023) mean none.
    pub fn acknowledge() -> IntId {
        let intid = IntId::new(sr::ICC_IAR1_EL1.read(sr::ICC_INTID::INTID) as u32);
        // The acknowledgement must complete before the handler's accesses.
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
        intid
    }

    /// Priority drop (ICC_EOIR1_EL1; §12.2.10).
    pub fn priority_drop(intid: IntId) {
        sr::ICC_EOIR1_EL1.write(sr::ICC_INTID::INTID.val(intid.get().into()));
        isb();
    }

    /// Deactivation (ICC_DIR_EL1; §12.2.9).
    pub fn deactivate(intid: IntId) {
        deactivate_before_eret(intid);
        isb();
    }

    /// [`deactivate`] without the ISB that makes it take effect at once, for
    /// a caller that returns to a lower EL right after: that ERET is itself
    /// a context synchronization event (SCTLR_EL2.EOS, set by `mmu`), so the
    /// interrupt is inactive before the guest runs, and nothing at EL2 in
    /// between can take it (PSTATE.I is set) or depends on it.
    pub fn deactivate_before_eret(intid: IntId) {
        sr::ICC_DIR_EL1.write(sr::ICC_INTID::INTID.val(intid.get().into()));
    }

    /// Sends Group 1 SGI `sgi` to the CPU with affinity `target`
    /// (ICC_SGI1R_EL1; §12.2.22). Aff0 above 15 needs the range selector.
    pub fn send_sgi(target: Mpidr, sgi: IntId) {
        let aff0 = u64::from(target.aff0());
        // Make earlier writes (the data the SGI announces) visible first.
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        sr::ICC_SGI1R_EL1.write(
            sr::ICC_SGI1R_EL1::Aff3.val(target.aff3().into())
                + sr::ICC_SGI1R_EL1::Aff2.val(target.aff2().into())
                + sr::ICC_SGI1R_EL1::Aff1.val(target.aff1().into())
                + sr::ICC_SGI1R_EL1::RS.val(aff0 / 16)
                + sr::ICC_SGI1R_EL1::TargetList.val(1 << (aff0 % 16))
                + sr::ICC_SGI1R_EL1::INTID.val(sgi.get().into()),
        );
        isb();
    }

    /// Number of list registers (ICH_VTR_EL2.ListRegs + 1; §12.4.9).
    pub fn num_lrs() -> usize {
        ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1
    }

    /// Enables this CPU's virtual CPU interface (ICH_HCR_EL2.En; §12.4.4)
    /// with every list register empty.
    pub fn vgic_init() {
        for n in 0..num_lrs() {
            write_lr(n, 0);
        }
        ICH_HCR_EL2.write(ICH_HCR_EL2::En::SET);
        isb();
    }

    type Lr = LocalRegisterCopy<u64, aarch64_cpu::registers::ICH_LR0_EL2::Register>;

    /// Makes virtual interrupt `vintid` (Group 1, not backed by a physical
    /// interrupt) pending in a free list register (§12.4.10).
    pub fn vgic_inject(vintid: IntId, priority: u8) -> Result<Injected, VgicError> {
        use aarch64_cpu::registers::ICH_LR0_EL2 as F;
        let n = num_lrs();
        let already = (0..n).map(|i| Lr::new(read_lr(i))).any(|lr| {
            lr.read(F::vINTID) == u64::from(vintid.get())
                && lr.matches_any(&[F::State::Pending, F::State::PendingAndActive])
        });
        if already {
            return Ok(Injected::AlreadyPending);
        }
        let empty = sr::ICH_ELRSR_EL2.read(sr::ICH_ELRSR_EL2::Status);
        let free = (0..n)
            .find(|&i| empty & (1 << i) != 0)
            .ok_or(VgicError::NoFreeListRegister)?;
        let mut lr = Lr::new(0);
        lr.write(
            F::State::Pending
                + F::Group::SET
                + F::Priority.val(priority.into())
                + F::vINTID.val(vintid.get().into()),
        );
        write_lr(free, lr.get());
        isb();
        Ok(Injected::Added)
    }

    /// Reads ICH_LR<n>_EL2.
    pub fn read_lr(n: usize) -> u64 {
        use aarch64_cpu::registers::*;
        match n {
            0 => ICH_LR0_EL2.get(),
            1 => ICH_LR1_EL2.get(),
            2 => ICH_LR2_EL2.get(),
            3 => ICH_LR3_EL2.get(),
            4 => ICH_LR4_EL2.get(),
            5 => ICH_LR5_EL2.get(),
            6 => ICH_LR6_EL2.get(),
            7 => ICH_LR7_EL2.get(),
            8 => ICH_LR8_EL2.get(),
            9 => ICH_LR9_EL2.get(),
            10 => ICH_LR10_EL2.get(),
            11 => ICH_LR11_EL2.get(),
            12 => ICH_LR12_EL2.get(),
            13 => ICH_LR13_EL2.get(),
            14 => ICH_LR14_EL2.get(),
            15 => ICH_LR15_EL2.get(),
            _ => panic!("gicv3: no list register {n}"),
        }
    }

    /// Writes ICH_LR<n>_EL2.
    pub fn write_lr(n: usize, value: u64) {
        use aarch64_cpu::registers::*;
        match n {
            0 => ICH_LR0_EL2.set(value),
            1 => ICH_LR1_EL2.set(value),
            2 => ICH_LR2_EL2.set(value),
            3 => ICH_LR3_EL2.set(value),
            4 => ICH_LR4_EL2.set(value),
            5 => ICH_LR5_EL2.set(value),
            6 => ICH_LR6_EL2.set(value),
            7 => ICH_LR7_EL2.set(value),
            8 => ICH_LR8_EL2.set(value),
            9 => ICH_LR9_EL2.set(value),
            10 => ICH_LR10_EL2.set(value),
            11 => ICH_LR11_EL2.set(value),
            12 => ICH_LR12_EL2.set(value),
            13 => ICH_LR13_EL2.set(value),
            14 => ICH_LR14_EL2.set(value),
            15 => ICH_LR15_EL2.set(value),
            _ => panic!("gicv3: no list register {n}"),
        }
    }
}
