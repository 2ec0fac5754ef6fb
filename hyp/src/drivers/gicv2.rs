//! GICv2 driver (Arm IHI 0048B, "GIC Architecture Specification v2"): the
//! distributor (GICD), the memory-mapped CPU interface (GICC) and the virtual
//! interface control block (GICH) used to inject virtual interrupts.
//!
//! Security model. tern runs in Non-secure EL2, so a GIC with the Security
//! Extensions shows it the Non-secure view: group registers are RAZ/WI, and
//! GICD_CTLR/GICC_CTLR have the Non-secure layout (IHI 0048B §4.3.1, §4.4.1).
//! Firmware (or [`secure_init`] when tern itself was entered at EL3) must have
//! put every interrupt in Group 1. A GIC without the Security Extensions
//! (QEMU `virt` without `secure=on`) has one state: interrupts stay in Group 0,
//! which with GICC_CTLR.FIQEn = 0 is signalled as IRQ. In both cases bit 0 of
//! both control registers enables "our" group and bit 9 of GICC_CTLR selects
//! split EOI for it (EOImodeNS in the Non-secure view, EOImodeS otherwise), so
//! the same writes serve both.

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite, WriteOnly},
};

use super::gic::{DEFAULT_PRIORITY, Injected, IntId, Mmio, VgicError};

register_bitfields! {u32,
    /// Distributor control (IHI 0048B §4.3.1). Bit 0 enables Group 0 in the
    /// Secure or single-state view and Group 1 in the Non-secure view.
    pub GICD_CTLR [
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        Enable OFFSET(0) NUMBITS(1) [],
    ],
    /// Interrupt controller type (IHI 0048B §4.3.2).
    pub GICD_TYPER [
        LSPI OFFSET(11) NUMBITS(5) [],
        SecurityExtn OFFSET(10) NUMBITS(1) [],
        CPUNumber OFFSET(5) NUMBITS(3) [],
        /// The GIC supports 32 * (ITLinesNumber + 1) INTIDs.
        ITLinesNumber OFFSET(0) NUMBITS(5) [],
    ],
    /// Software generated interrupt register (IHI 0048B §4.3.15).
    pub GICD_SGIR [
        TargetListFilter OFFSET(24) NUMBITS(2) [
            TargetList = 0b00,
            AllButSelf = 0b01,
            SelfOnly = 0b10,
        ],
        CPUTargetList OFFSET(16) NUMBITS(8) [],
        NSATT OFFSET(15) NUMBITS(1) [],
        SGIINTID OFFSET(0) NUMBITS(4) [],
    ],
    /// CPU interface control (IHI 0048B §4.4.1), as seen by tern (see the
    /// module comment for why one layout serves both views).
    pub GICC_CTLR [
        /// Split priority drop (GICC_EOIR) and deactivation (GICC_DIR).
        EOImode OFFSET(9) NUMBITS(1) [],
        IRQBypDis OFFSET(6) NUMBITS(1) [],
        FIQBypDis OFFSET(5) NUMBITS(1) [],
        Enable OFFSET(0) NUMBITS(1) [],
    ],
    /// Priority mask (IHI 0048B §4.4.2).
    pub GICC_PMR [
        Priority OFFSET(0) NUMBITS(8) [],
    ],
    /// Acknowledge / EOI / deactivate value (IHI 0048B §4.4.4, §4.4.5, §4.4.15):
    /// the INTID and, for SGIs, the CPU that sent it; EOI and DIR must be
    /// written with the full value IAR returned.
    pub GICC_IAR [
        CPUID OFFSET(10) NUMBITS(3) [],
        InterruptID OFFSET(0) NUMBITS(10) [],
    ],
    /// Hypervisor control (IHI 0048B §5.3.1).
    pub GICH_HCR [
        EOICount OFFSET(27) NUMBITS(5) [],
        VGrp1DIE OFFSET(7) NUMBITS(1) [],
        VGrp1EIE OFFSET(6) NUMBITS(1) [],
        VGrp0DIE OFFSET(5) NUMBITS(1) [],
        VGrp0EIE OFFSET(4) NUMBITS(1) [],
        NPIE OFFSET(3) NUMBITS(1) [],
        LRENPIE OFFSET(2) NUMBITS(1) [],
        UIE OFFSET(1) NUMBITS(1) [],
        /// Enables the virtual CPU interface.
        En OFFSET(0) NUMBITS(1) [],
    ],
    /// VGIC type (IHI 0048B §5.3.2).
    pub GICH_VTR [
        PRIbits OFFSET(29) NUMBITS(3) [],
        PREbits OFFSET(26) NUMBITS(3) [],
        /// Number of list registers minus one.
        ListRegs OFFSET(0) NUMBITS(6) [],
    ],
    /// List register (IHI 0048B §5.3.11).
    pub GICH_LR [
        /// 1: VirtualID is backed by physical interrupt PhysicalID.
        HW OFFSET(31) NUMBITS(1) [],
        Grp1 OFFSET(30) NUMBITS(1) [],
        State OFFSET(28) NUMBITS(2) [
            Invalid = 0b00,
            Pending = 0b01,
            Active = 0b10,
            PendingActive = 0b11,
        ],
        /// The upper five bits of the virtual priority.
        Priority OFFSET(23) NUMBITS(5) [],
        /// With HW = 0: bit 19 requests a maintenance interrupt on EOI, bits
        /// 12:10 hold the source CPU of a virtual SGI.
        PhysicalID OFFSET(10) NUMBITS(10) [],
        VirtualID OFFSET(0) NUMBITS(10) [],
    ],
}

register_structs! {
    /// Distributor (IHI 0048B §4.1.2, table 4-1).
    pub GicdRegs {
        (0x000 => pub ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x004 => pub typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x008 => pub iidr: ReadOnly<u32>),
        (0x00c => _reserved0),
        (0x080 => pub igroupr: [ReadWrite<u32>; 32]),
        (0x100 => pub isenabler: [ReadWrite<u32>; 32]),
        (0x180 => pub icenabler: [ReadWrite<u32>; 32]),
        (0x200 => pub ispendr: [ReadWrite<u32>; 32]),
        (0x280 => pub icpendr: [ReadWrite<u32>; 32]),
        (0x300 => pub isactiver: [ReadWrite<u32>; 32]),
        (0x380 => pub icactiver: [ReadWrite<u32>; 32]),
        (0x400 => pub ipriorityr: [ReadWrite<u8>; 1020]),
        (0x7fc => _reserved1),
        (0x800 => pub itargetsr: [ReadWrite<u8>; 1020]),
        (0xbfc => _reserved2),
        (0xc00 => pub icfgr: [ReadWrite<u32>; 64]),
        (0xd00 => _reserved3),
        (0xf00 => pub sgir: WriteOnly<u32, GICD_SGIR::Register>),
        (0xf04 => _reserved4),
        (0x1000 => @END),
    }
}

register_structs! {
    /// CPU interface (IHI 0048B §4.1.3, table 4-2). Each CPU sees its own.
    pub GiccRegs {
        (0x0000 => pub ctlr: ReadWrite<u32, GICC_CTLR::Register>),
        (0x0004 => pub pmr: ReadWrite<u32, GICC_PMR::Register>),
        (0x0008 => pub bpr: ReadWrite<u32>),
        (0x000c => pub iar: ReadOnly<u32, GICC_IAR::Register>),
        (0x0010 => pub eoir: WriteOnly<u32, GICC_IAR::Register>),
        (0x0014 => pub rpr: ReadOnly<u32>),
        (0x0018 => pub hppir: ReadOnly<u32, GICC_IAR::Register>),
        (0x001c => _reserved0),
        (0x00d0 => pub apr: [ReadWrite<u32>; 4]),
        (0x00e0 => pub nsapr: [ReadWrite<u32>; 4]),
        (0x00f0 => _reserved1),
        (0x00fc => pub iidr: ReadOnly<u32>),
        (0x0100 => _reserved2),
        (0x1000 => pub dir: WriteOnly<u32, GICC_IAR::Register>),
        (0x1004 => _reserved3),
        (0x2000 => @END),
    }
}

register_structs! {
    /// Virtual interface control (IHI 0048B §5.3, table 5-1). Each CPU sees
    /// its own at the same address.
    pub GichRegs {
        (0x000 => pub hcr: ReadWrite<u32, GICH_HCR::Register>),
        (0x004 => pub vtr: ReadOnly<u32, GICH_VTR::Register>),
        (0x008 => pub vmcr: ReadWrite<u32>),
        (0x00c => _reserved0),
        (0x010 => pub misr: ReadOnly<u32>),
        (0x014 => _reserved1),
        (0x020 => pub eisr: [ReadOnly<u32>; 2]),
        (0x028 => _reserved2),
        (0x030 => pub elrsr: [ReadOnly<u32>; 2]),
        (0x038 => _reserved3),
        (0x0f0 => pub apr: ReadWrite<u32>),
        (0x0f4 => _reserved4),
        (0x100 => pub lr: [ReadWrite<u32, GICH_LR::Register>; 64]),
        (0x200 => @END),
    }
}

/// Bit `n % 32` of word `n / 32`: the layout of every one-bit-per-INTID register.
fn bit(intid: IntId) -> (usize, u32) {
    let n = intid.get() as usize;
    (n / 32, 1 << (n % 32))
}

/// Number of INTIDs the distributor implements (IHI 0048B §4.3.2), capped at 1020.
pub fn num_intids(dist: &GicdRegs) -> u32 {
    (32 * (dist.typer.read(GICD_TYPER::ITLinesNumber) + 1)).min(IntId::SPECIAL_START)
}

/// Secure-side setup, run at EL3 by the boot CPU when tern was entered there
/// (the part of firmware a Non-secure hypervisor relies on): every SPI and this
/// CPU's SGIs/PPIs go to Group 1 (IHI 0048B §4.3.4), Group 1 forwarding is
/// enabled, and this CPU's GICC_PMR is opened from the Secure side, because a
/// Non-secure write to GICC_PMR is ignored while the mask is in the Secure
/// half (IHI 0048B §3.6.2, §4.4.2), which it is out of reset (0).
///
/// GICD_IGROUPR0 is banked per CPU and only the CPU itself, in Secure state,
/// can write its copy. Secondaries started by QEMU's built-in PSCI arrive in
/// Non-secure EL2 and can never do so: see `gic::secure_init`.
pub fn secure_init(dist: &GicdRegs, cpu: &GiccRegs) {
    let words = num_intids(dist).div_ceil(32) as usize;
    for reg in &dist.igroupr[..words] {
        reg.set(u32::MAX);
    }
    dist.ctlr
        .write(GICD_CTLR::Enable::SET + GICD_CTLR::EnableGrp1::SET);
    cpu.pmr.write(GICC_PMR::Priority.val(0xff));
}

/// Distributor initialisation from Non-secure EL2 (IHI 0048B §4.3): all SPIs
/// disabled, inactive, not pending, at [`DEFAULT_PRIORITY`], level-sensitive,
/// targeted at `boot_cpu_mask`; then forwarding enabled.
pub fn init_distributor(dist: &GicdRegs, boot_cpu_mask: u8) {
    dist.ctlr.set(0);
    let n = num_intids(dist) as usize;
    for w in 1..n / 32 {
        dist.icenabler[w].set(u32::MAX);
        dist.icactiver[w].set(u32::MAX);
        dist.icpendr[w].set(u32::MAX);
    }
    for i in IntId::SPI_START as usize..n {
        dist.ipriorityr[i].set(DEFAULT_PRIORITY);
        dist.itargetsr[i].set(boot_cpu_mask);
    }
    // ICFGR: two bits per INTID, 0b00 = level-sensitive (IHI 0048B §4.3.13).
    for w in 2..n / 16 {
        dist.icfgr[w].set(0);
    }
    dist.ctlr.write(GICD_CTLR::Enable::SET);
}

/// The mask of CPU interface 0: what a uniprocessor GIC routes everything to.
const UNIPROCESSOR_MASK: u8 = 1;

/// This CPU's interface mask, read from its banked GICD_ITARGETSR0..7
/// (IHI 0048B §4.3.12). A uniprocessor GIC implements those registers as
/// RAZ/WI and delivers every interrupt to its one CPU interface, so a mask of
/// 0 means interface 0 (without this, nothing could be enabled with `-smp 1`).
pub fn this_cpu_mask(dist: &GicdRegs) -> u8 {
    match dist.itargetsr[..32]
        .iter()
        .map(|r| r.get())
        .fold(0, |acc, v| acc | v)
    {
        0 => UNIPROCESSOR_MASK,
        mask => mask,
    }
}

/// Per-CPU initialisation from Non-secure EL2: this CPU's SGIs and PPIs
/// (banked) disabled except the SGIs, priorities set, then the CPU interface
/// enabled with split EOI and an open priority mask.
pub fn init_cpu(dist: &GicdRegs, cpu: &GiccRegs) {
    dist.icenabler[0].set(u32::MAX);
    dist.icactiver[0].set(u32::MAX);
    dist.icpendr[0].set(u32::MAX);
    for i in 0..IntId::SPI_START as usize {
        dist.ipriorityr[i].set(DEFAULT_PRIORITY);
    }
    // SGIs are always enabled on GICv2 (enable bits RAO/WI on most
    // implementations); setting them is harmless where they are writable.
    dist.isenabler[0].set(u32::from(u16::MAX));
    cpu.pmr.write(GICC_PMR::Priority.val(0xff));
    cpu.bpr.set(0);
    cpu.ctlr
        .write(GICC_CTLR::Enable::SET + GICC_CTLR::EOImode::SET);
}

/// Enables `intid`; an SPI is first targeted at `cpu_mask`. SGIs and PPIs are
/// banked: only the calling CPU's copy is affected.
pub fn enable(dist: &GicdRegs, intid: IntId, cpu_mask: u8) {
    if intid.is_spi() {
        dist.itargetsr[intid.get() as usize].set(cpu_mask);
    }
    let (word, mask) = bit(intid);
    dist.isenabler[word].set(mask);
}

/// Disables `intid` (the calling CPU's copy for SGIs and PPIs).
pub fn disable(dist: &GicdRegs, intid: IntId) {
    let (word, mask) = bit(intid);
    dist.icenabler[word].set(mask);
}

/// Acknowledges the highest priority pending interrupt: the raw GICC_IAR value.
pub fn acknowledge(cpu: &GiccRegs) -> u32 {
    cpu.iar.get()
}

/// The INTID in a GICC_IAR value.
pub fn intid_of(raw: u32) -> IntId {
    IntId::new(GICC_IAR::InterruptID.read(raw))
}

/// Priority drop (EOImode is 1, IHI 0048B §3.2.1, §4.4.5).
pub fn priority_drop(cpu: &GiccRegs, raw: u32) {
    cpu.eoir.set(raw);
}

/// Deactivation (IHI 0048B §4.4.15).
pub fn deactivate(cpu: &GiccRegs, raw: u32) {
    cpu.dir.set(raw);
}

/// Where a GICv2 SGI goes.
#[derive(Clone, Copy, Debug)]
pub enum SgiTargets {
    /// The CPUs whose interface bits are set.
    Mask(u8),
    /// The sending CPU.
    SelfOnly,
    /// Every CPU but the sender.
    AllButSelf,
}

/// Generates SGI `sgi` (IHI 0048B §4.3.15).
pub fn send_sgi(dist: &GicdRegs, targets: SgiTargets, sgi: IntId) {
    let filter = match targets {
        SgiTargets::Mask(mask) => {
            GICD_SGIR::TargetListFilter::TargetList + GICD_SGIR::CPUTargetList.val(mask.into())
        }
        SgiTargets::SelfOnly => GICD_SGIR::TargetListFilter::SelfOnly,
        SgiTargets::AllButSelf => GICD_SGIR::TargetListFilter::AllButSelf,
    };
    dist.sgir.write(filter + GICD_SGIR::SGIINTID.val(sgi.get()));
}

/// Enables the virtual CPU interface of this CPU with every list register empty.
pub fn vgic_init_cpu(gich: &GichRegs) {
    for lr in &gich.lr[..num_lrs(gich)] {
        lr.set(0);
    }
    gich.apr.set(0);
    gich.hcr.write(GICH_HCR::En::SET);
}

/// Number of list registers.
pub fn num_lrs(gich: &GichRegs) -> usize {
    gich.vtr.read(GICH_VTR::ListRegs) as usize + 1
}

/// Makes virtual interrupt `vintid` (not backed by hardware, Group 1) pending
/// in a free list register.
pub fn vgic_inject(gich: &GichRegs, vintid: IntId, priority: u8) -> Result<Injected, VgicError> {
    let n = num_lrs(gich);
    let lrs = &gich.lr[..n];
    if lrs.iter().any(|lr| {
        lr.read(GICH_LR::VirtualID) == vintid.get()
            && lr.matches_any(&[GICH_LR::State::Pending, GICH_LR::State::PendingActive])
    }) {
        return Ok(Injected::AlreadyPending);
    }
    // ELRSR: bit n set when LR n holds no interrupt (IHI 0048B §5.3.7).
    let empty = u64::from(gich.elrsr[0].get()) | u64::from(gich.elrsr[1].get()) << 32;
    let free = (0..n)
        .find(|&i| empty & (1 << i) != 0)
        .ok_or(VgicError::NoFreeListRegister)?;
    lrs[free].write(
        GICH_LR::State::Pending
            + GICH_LR::Grp1::SET
            + GICH_LR::Priority.val(u32::from(priority >> 3))
            + GICH_LR::VirtualID.val(vintid.get()),
    );
    Ok(Injected::Added)
}

/// Number of INTIDs and whether the Security Extensions are implemented (for the log line).
pub fn describe(dist: &GicdRegs) -> (u32, bool) {
    (
        num_intids(dist),
        dist.typer.is_set(GICD_TYPER::SecurityExtn),
    )
}

/// The GICv2 register blocks tern uses, wrapped for sharing between CPUs.
pub struct GicV2 {
    /// Distributor.
    pub dist: Mmio<GicdRegs>,
    /// CPU interface (banked: each CPU reaches its own at this address).
    pub cpu: Mmio<GiccRegs>,
    /// Virtual interface control, if the GIC has the virtualization extensions.
    pub gich: Option<Mmio<GichRegs>>,
}
