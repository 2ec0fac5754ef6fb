//! The facade's hardware side: global driver state and the operations the rest
//! of the hypervisor calls. AArch64 only (the GICv3 CPU interface is made of
//! system registers).

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, DAIF, ReadWriteable, Readable};
use spin::Once;

use super::{Acked, GicError, IntId, Mmio, SgiTarget};
use crate::addr::{PhysAddr, PhysRange};
use crate::drivers::{gicv2, gicv3};
use crate::memmap::FixedList;
use crate::percpu::{self, CpuIndex, MAX_CPUS, Mpidr};
use crate::platform::{Gic as GicDesc, MAX_REDIST_REGIONS, Platform};

/// The SGI [`self_test`] sends each CPU to itself.
pub const SELF_TEST_SGI: IntId = IntId::sgi(15);

/// How long [`self_test`] waits for its SGI.
const SELF_TEST_TIMEOUT_MS: u64 = 1000;

enum Driver {
    V2 {
        dist: Mmio<gicv2::GicdRegs>,
        cpu: Mmio<gicv2::GiccRegs>,
        gich: Option<Mmio<gicv2::GichRegs>>,
        vcpu: Option<PhysRange>,
        maintenance: Option<IntId>,
    },
    V3 {
        dist: Mmio<gicv3::GicdRegs>,
        redists: FixedList<PhysRange, MAX_REDIST_REGIONS>,
        maintenance: Option<IntId>,
    },
}

static DRIVER: Once<Driver> = Once::new();
/// Set once [`DRIVER`] is a GICv3: acknowledging and ending an interrupt
/// then take system registers alone, and this plain flag tells so with one
/// load where `DRIVER` takes two (its state, then the variant); they are on
/// every interrupt's path.
static SYSREG_CPUIF: AtomicBool = AtomicBool::new(false);

/// Per-CPU GICv2 CPU interface masks (bit n = CPU interface n); 0 = unknown.
static V2_CPU_MASK: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];
/// Per-CPU GICv3 redistributor RD_base; 0 = not found yet.
static V3_RD_BASE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// GICv2 distributor and CPU interface bases remembered by [`secure_init`] for
/// [`secure_init_this_cpu`] (which runs on CPUs that have no `Platform`).
static SECURE_V2_DIST: AtomicU64 = AtomicU64::new(0);
static SECURE_V2_CPU: AtomicU64 = AtomicU64::new(0);

fn driver() -> Result<&'static Driver, GicError> {
    DRIVER.get().ok_or(GicError::NotInitialised)
}

fn slot(cpu: CpuIndex) -> Result<usize, GicError> {
    if cpu.get() < MAX_CPUS {
        Ok(cpu.get())
    } else {
        Err(GicError::BadCpu)
    }
}

/// The Secure-side set-up firmware normally does, for when tern was entered at
/// EL3 (QEMU `secure=on` without firmware). Boot CPU only, at EL3, before
/// dropping to EL2; the MMU may be off.
///
/// GICv3: affinity routing for both states, every SPI and (through each
/// redistributor's MMIO frames) every CPU's SGIs and PPIs in Group 1
/// Non-secure, every redistributor woken (GICR_WAKER is Secure-only while
/// GICD_CTLR.DS = 0, IHI 0069 §12.11.42, so secondaries could not wake their
/// own from Non-secure EL2).
///
/// GICv2: SPIs and this CPU's banked SGIs/PPIs in Group 1, this CPU's priority
/// mask opened. Other CPUs' banked group bits and GICC_PMR (IHI 0048B §4.3.4,
/// §4.4.2) can only be written by each CPU itself in Secure state:
/// [`secure_init_this_cpu`]. Under QEMU this works because, when it enters the
/// `-kernel` ELF at EL3, it disables its built-in PSCI and starts every CPU at
/// the entry point, so each passes through EL3 (the entry code's holding pen).
/// A CPU started by a PSCI implementation straight into Non-secure EL2 would
/// need that firmware to have done this.
pub fn secure_init(platform: &Platform) -> Result<(), GicError> {
    match platform.gic.as_ref().ok_or(GicError::NoGic)? {
        GicDesc::V2(d) => {
            SECURE_V2_DIST.store(d.dist.start.get(), Ordering::Relaxed);
            SECURE_V2_CPU.store(d.cpu.start.get(), Ordering::Relaxed);
            secure_init_this_cpu();
        }
        GicDesc::V3(d) => {
            // SAFETY: the platform's GICD range; the MMU is off or identity maps it.
            let dist = unsafe { Mmio::<gicv3::GicdRegs>::new(d.dist.start) };
            gicv3::secure_init_distributor(dist.regs());
            for region in d.redists.iter() {
                // SAFETY: a redistributor region from the platform description.
                unsafe {
                    gicv3::for_each_redistributor(region.start, region.size(), |rd| {
                        rd.wake();
                        rd.set_group1_ns();
                        None::<()>
                    });
                }
            }
        }
    }
    Ok(())
}

/// Per-CPU Secure-side set-up (GICv2 banked registers), at EL3, on each CPU
/// that passes through EL3 after [`secure_init`] ran on the boot CPU. Nothing
/// to do for GICv3.
pub fn secure_init_this_cpu() {
    let (dist, cpu) = (
        SECURE_V2_DIST.load(Ordering::Relaxed),
        SECURE_V2_CPU.load(Ordering::Relaxed),
    );
    if dist == 0 || cpu == 0 {
        return;
    }
    // SAFETY: recorded from the platform's GICv2 description by `secure_init`.
    let (dist, cpu) = unsafe {
        (
            Mmio::<gicv2::GicdRegs>::new(PhysAddr(dist)),
            Mmio::<gicv2::GiccRegs>::new(PhysAddr(cpu)),
        )
    };
    gicv2::secure_init(dist.regs(), cpu.regs());
}

/// Initialises the distributor, once, on the boot CPU at EL2, and logs what it
/// found (`gic: v2 ...` / `gic: v3 ...`). Every SPI starts disabled and routed
/// to the boot CPU.
pub fn init_distributor(platform: &Platform) -> Result<(), GicError> {
    let driver = match platform.gic.as_ref().ok_or(GicError::NoGic)? {
        GicDesc::V2(d) => {
            // SAFETY: the platform's GICv2 ranges, identity mapped as Device memory
            // by the boot code (every DT `reg` region is mapped).
            let (dist, cpu, gich) = unsafe {
                (
                    Mmio::<gicv2::GicdRegs>::new(d.dist.start),
                    Mmio::<gicv2::GiccRegs>::new(d.cpu.start),
                    d.hyp.map(|r| Mmio::<gicv2::GichRegs>::new(r.start)),
                )
            };
            let mask = gicv2::this_cpu_mask(dist.regs());
            gicv2::init_distributor(dist.regs(), mask);
            let (intids, security) = gicv2::describe(dist.regs());
            log::info!(
                "gic: v2, distributor {}, cpu interface {}, {} INTIDs{}{}",
                d.dist.start,
                d.cpu.start,
                intids,
                if security {
                    ", security extensions"
                } else {
                    ""
                },
                if gich.is_some() {
                    ", virtualization extensions"
                } else {
                    ""
                },
            );
            Driver::V2 {
                dist,
                cpu,
                gich,
                vcpu: d.vcpu,
                maintenance: d.maintenance_irq,
            }
        }
        GicDesc::V3(d) => {
            // SAFETY: as above, for the GICv3 distributor.
            let dist = unsafe { Mmio::<gicv3::GicdRegs>::new(d.dist.start) };
            gicv3::init_distributor(dist.regs(), Mpidr::current());
            let mut count = 0;
            for region in d.redists.iter() {
                // SAFETY: a redistributor region from the platform description.
                unsafe {
                    gicv3::for_each_redistributor(region.start, region.size(), |_| {
                        count += 1;
                        None::<()>
                    });
                }
            }
            log::info!(
                "gic: v3, distributor {}, {} INTIDs, {} redistributors, {} security state{}",
                d.dist.start,
                gicv3::num_intids(dist.regs()),
                count,
                if gicv3::has_two_security_states(dist.regs()) {
                    "two"
                } else {
                    "one"
                },
                if gicv3::has_two_security_states(dist.regs()) {
                    "s"
                } else {
                    ""
                },
            );
            Driver::V3 {
                dist,
                redists: d.redists,
                maintenance: d.maintenance_irq,
            }
        }
    };
    let v3 = matches!(driver, Driver::V3 { .. });
    DRIVER.call_once(|| driver);
    SYSREG_CPUIF.store(v3, Ordering::Release);
    Ok(())
}

/// Initialises the calling CPU's part of the GIC (GICv2: banked SGI/PPI state
/// and the CPU interface; GICv3: its redistributor and CPU interface) and its
/// virtual interface. `cpu` is the caller's logical index.
pub fn init_cpu(cpu: CpuIndex) -> Result<(), GicError> {
    let i = slot(cpu)?;
    match driver()? {
        Driver::V2 {
            dist, cpu, gich, ..
        } => {
            V2_CPU_MASK[i].store(gicv2::this_cpu_mask(dist.regs()), Ordering::Release);
            gicv2::init_cpu(dist.regs(), cpu.regs());
            if let Some(gich) = gich {
                gicv2::vgic_init_cpu(gich.regs());
            }
        }
        Driver::V3 { redists, .. } => {
            let me = Mpidr::current().packed32();
            let rd = redists
                .iter()
                .find_map(|region| {
                    // SAFETY: a redistributor region from the platform description.
                    unsafe {
                        gicv3::for_each_redistributor(region.start, region.size(), |rd| {
                            (rd.affinity() == me).then_some(rd)
                        })
                    }
                })
                .ok_or(GicError::NoRedistributor)?;
            V3_RD_BASE[i].store(rd.base().get(), Ordering::Release);
            gicv3::init_redistributor(&rd);
            gicv3::cpuif::init().map_err(|_| GicError::NoSystemRegisterInterface)?;
            gicv3::cpuif::vgic_init();
        }
    }
    Ok(())
}

fn redistributor(cpu: CpuIndex) -> Result<gicv3::Redistributor, GicError> {
    match V3_RD_BASE[slot(cpu)?].load(Ordering::Acquire) {
        0 => Err(GicError::BadCpu),
        // SAFETY: recorded by `init_cpu` from a redistributor found in the
        // platform's regions.
        base => Ok(unsafe { gicv3::Redistributor::new(PhysAddr(base)) }),
    }
}

fn v2_mask(cpu: CpuIndex) -> Result<u8, GicError> {
    match V2_CPU_MASK[slot(cpu)?].load(Ordering::Acquire) {
        0 => Err(GicError::BadCpu),
        mask => Ok(mask),
    }
}

/// Enables `intid` and, for an SPI, routes it to `cpu`. For an SGI or PPI,
/// `cpu` selects whose copy: on GICv2 that must be the calling CPU (the
/// registers are banked, IHI 0048B §4.3.5).
pub fn enable_irq(intid: IntId, cpu: CpuIndex) -> Result<(), GicError> {
    match driver()? {
        Driver::V2 { dist, .. } => gicv2::enable(dist.regs(), intid, v2_mask(cpu)?),
        Driver::V3 { dist, .. } => {
            let target = percpu::get(cpu).ok_or(GicError::BadCpu)?.mpidr();
            gicv3::enable(dist.regs(), &redistributor(cpu)?, intid, target)
        }
    }
    Ok(())
}

/// Disables `intid` (for an SGI or PPI: `cpu`'s copy, as for [`enable_irq`]).
pub fn disable_irq(intid: IntId, cpu: CpuIndex) -> Result<(), GicError> {
    match driver()? {
        Driver::V2 { dist, .. } => gicv2::disable(dist.regs(), intid),
        Driver::V3 { dist, .. } => gicv3::disable(dist.regs(), &redistributor(cpu)?, intid),
    }
    Ok(())
}

/// Acknowledges the highest priority pending interrupt of the calling CPU;
/// `None` when nothing is pending (a special INTID was read).
pub fn acknowledge() -> Option<Acked> {
    if SYSREG_CPUIF.load(Ordering::Relaxed) {
        let intid = gicv3::cpuif::acknowledge();
        return (!intid.is_special()).then_some(Acked {
            intid,
            raw: intid.get(),
        });
    }
    let acked = match driver().ok()? {
        Driver::V2 { cpu, .. } => {
            let raw = gicv2::acknowledge(cpu.regs());
            Acked {
                intid: gicv2::intid_of(raw),
                raw,
            }
        }
        Driver::V3 { .. } => {
            let intid = gicv3::cpuif::acknowledge();
            Acked {
                intid,
                raw: intid.get(),
            }
        }
    };
    (!acked.intid.is_special()).then_some(acked)
}

/// Whether the CPU interface is GICv3's system registers (then
/// [`acknowledge_sysreg`] and [`end_of_interrupt_sysreg`] apply): one load,
/// for the timer interrupt's path, which asks once for both.
#[inline(always)]
pub fn sysreg_cpuif() -> bool {
    SYSREG_CPUIF.load(Ordering::Relaxed)
}

/// [`acknowledge`] through the system registers (only when
/// [`sysreg_cpuif`]), without the special-INTID check: the caller compares
/// the INTID with the one it expects first (the EL2 timer's, never special)
/// and asks [`Acked::is_none`] only otherwise.
#[inline(always)]
pub fn acknowledge_sysreg() -> Acked {
    let intid = gicv3::cpuif::acknowledge();
    Acked {
        intid,
        raw: intid.get(),
    }
}

/// [`end_of_interrupt`] through the system registers (only when
/// [`sysreg_cpuif`]).
#[inline(always)]
pub fn end_of_interrupt_sysreg(irq: Acked) {
    gicv3::cpuif::priority_drop(irq.intid);
    gicv3::cpuif::deactivate(irq.intid);
}

/// [`end_of_interrupt_sysreg`] for a caller that returns to the guest right
/// after (see `gicv3::cpuif::deactivate_before_eret`).
#[inline(always)]
pub fn end_of_interrupt_sysreg_before_eret(irq: Acked) {
    gicv3::cpuif::priority_drop(irq.intid);
    gicv3::cpuif::deactivate_before_eret(irq.intid);
}

/// Drops the running priority to what it was before `irq` was acknowledged
/// (lets other interrupts in; the interrupt stays active).
pub fn priority_drop(irq: Acked) {
    match DRIVER.get() {
        Some(Driver::V2 { cpu, .. }) => gicv2::priority_drop(cpu.regs(), irq.raw),
        Some(Driver::V3 { .. }) => gicv3::cpuif::priority_drop(irq.intid),
        None => {}
    }
}

/// Deactivates `irq` (it may be taken again).
pub fn deactivate(irq: Acked) {
    match DRIVER.get() {
        Some(Driver::V2 { cpu, .. }) => gicv2::deactivate(cpu.regs(), irq.raw),
        Some(Driver::V3 { .. }) => gicv3::cpuif::deactivate(irq.intid),
        None => {}
    }
}

/// Ends `irq`: priority drop, then deactivation (one look at the driver for
/// both: this is on every interrupt's path).
pub fn end_of_interrupt(irq: Acked) {
    if sysreg_cpuif() {
        end_of_interrupt_sysreg(irq);
        return;
    }
    match DRIVER.get() {
        Some(Driver::V2 { cpu, .. }) => {
            gicv2::priority_drop(cpu.regs(), irq.raw);
            gicv2::deactivate(cpu.regs(), irq.raw);
        }
        Some(Driver::V3 { .. }) => {
            gicv3::cpuif::priority_drop(irq.intid);
            gicv3::cpuif::deactivate(irq.intid);
        }
        None => {}
    }
}

/// Sends SGI `sgi` (0..16).
pub fn send_sgi(target: SgiTarget, sgi: IntId) -> Result<(), GicError> {
    match driver()? {
        Driver::V2 { dist, .. } => {
            let targets = match target {
                SgiTarget::This => gicv2::SgiTargets::SelfOnly,
                SgiTarget::Cpu(cpu) => gicv2::SgiTargets::Mask(v2_mask(cpu)?),
            };
            gicv2::send_sgi(dist.regs(), targets, sgi);
        }
        Driver::V3 { .. } => {
            let mpidr = match target {
                SgiTarget::This => Mpidr::current(),
                SgiTarget::Cpu(cpu) => percpu::get(cpu).ok_or(GicError::BadCpu)?.mpidr(),
            };
            gicv3::cpuif::send_sgi(mpidr, sgi);
        }
    }
    Ok(())
}

/// Proves the calling CPU's interrupt path works: sends itself
/// [`SELF_TEST_SGI`] and takes it by polling the acknowledge register with
/// IRQs masked at the CPU (PSTATE.I does not stop the GIC from presenting the
/// interrupt to the acknowledge register), then ends it. Logs
/// `gic: cpu <n> sgi ok` on success.
pub fn self_test(cpu: CpuIndex) -> Result<(), GicError> {
    let was_masked = DAIF.is_set(DAIF::I);
    DAIF.modify(DAIF::I::Masked);
    let result = poll_self_sgi();
    if !was_masked {
        DAIF.modify(DAIF::I::Unmasked);
    }
    match result {
        Ok(()) => log::info!("gic: cpu {cpu} sgi ok"),
        Err(e) => log::error!("gic: cpu {cpu} sgi self-test failed: {e:?}"),
    }
    if let Err(e) = vgic::self_test() {
        log::error!("gic: cpu {cpu} vgic self-test failed: {e}");
    }
    result
}

fn poll_self_sgi() -> Result<(), GicError> {
    send_sgi(SgiTarget::This, SELF_TEST_SGI)?;
    let freq = CNTFRQ_EL0.get().max(1);
    let deadline = CNTPCT_EL0.get() + freq * SELF_TEST_TIMEOUT_MS / 1000;
    while CNTPCT_EL0.get() < deadline {
        if let Some(irq) = acknowledge() {
            end_of_interrupt(irq);
            return if irq.intid() == SELF_TEST_SGI {
                Ok(())
            } else {
                Err(GicError::SelfTestWrongIntid(irq.intid()))
            };
        }
        core::hint::spin_loop();
    }
    Err(GicError::SelfTestTimeout)
}

/// Virtual interrupts for the guest running (or about to run) on the calling
/// CPU, through the list registers of its virtual CPU interface (GICv3:
/// ICH_LR<n>_EL2, IHI 0069 §12.4.10; GICv2: GICH_LR<n>, IHI 0048B §5.3.11).
///
/// Minimal by design: interrupts are injected as Group 1, not backed by a
/// physical interrupt (HW = 0), and the list registers are per physical CPU,
/// so whoever switches vCPUs must save/restore them. The guest acknowledges and
/// ends them through its own CPU interface (GICv3: ICV_* system registers,
/// redirected by HCR_EL2.IMO = 1; GICv2: the GICV frame, which must be mapped
/// at the guest's GICC address — see [`vgic::vcpu_interface`]). The guest must
/// enable its virtual Group 1 and open its virtual priority mask, or nothing is
/// signalled.
pub mod vgic {
    use super::{Driver, driver, gicv2, gicv3};
    use crate::addr::PhysRange;
    use crate::drivers::gic::IntId;
    pub use crate::drivers::gic::{Injected, VgicError};

    /// Makes virtual interrupt `vintid` pending for the guest on this CPU, at
    /// `priority` (GICv2 keeps its upper five bits).
    pub fn inject(vintid: IntId, priority: u8) -> Result<Injected, VgicError> {
        match driver().map_err(|_| VgicError::NotAvailable)? {
            Driver::V2 {
                gich: Some(gich), ..
            } => gicv2::vgic_inject(gich.regs(), vintid, priority),
            Driver::V2 { gich: None, .. } => Err(VgicError::NotAvailable),
            Driver::V3 { .. } => gicv3::cpuif::vgic_inject(vintid, priority),
        }
    }

    /// Empties every list register of this CPU's virtual interface and
    /// enables it (GICv3: ICH_HCR_EL2.En; GICv2: GICH_HCR.En).
    pub fn reset_this_cpu() {
        match driver() {
            Ok(Driver::V2 {
                gich: Some(gich), ..
            }) => gicv2::vgic_init_cpu(gich.regs()),
            Ok(Driver::V3 { .. }) => gicv3::cpuif::vgic_init(),
            _ => {}
        }
    }

    /// Boot-time check of the list-register path, with no guest running:
    /// injecting an interrupt fills a list register, injecting it again finds
    /// it pending; the list registers are emptied afterwards.
    pub(super) fn self_test() -> Result<(), &'static str> {
        const PROBE: IntId = IntId::new(IntId::PPI_START);
        if num_list_registers() == 0 {
            return Ok(());
        }
        let first = inject(PROBE, super::super::DEFAULT_PRIORITY);
        let second = inject(PROBE, super::super::DEFAULT_PRIORITY);
        reset_this_cpu();
        match (first, second) {
            (Ok(Injected::Added), Ok(Injected::AlreadyPending)) => Ok(()),
            (Ok(Injected::Added), _) => Err("injected interrupt not found pending"),
            _ => Err("no list register accepted the interrupt"),
        }
    }

    /// Number of list registers of this CPU's virtual interface (0 if none).
    pub fn num_list_registers() -> usize {
        match driver() {
            Ok(Driver::V2 {
                gich: Some(gich), ..
            }) => gicv2::num_lrs(gich.regs()),
            Ok(Driver::V3 { .. }) => gicv3::cpuif::num_lrs(),
            _ => 0,
        }
    }

    /// The virtual interface maintenance interrupt (a PPI), if described.
    pub fn maintenance_irq() -> Option<IntId> {
        match driver().ok()? {
            Driver::V2 { maintenance, .. } | Driver::V3 { maintenance, .. } => *maintenance,
        }
    }

    /// GICv2 only: the virtual CPU interface frame (GICV) to map into a
    /// guest's stage 2 at the address where it expects the CPU interface.
    /// GICv3 guests use system registers instead: `None`.
    pub fn vcpu_interface() -> Option<PhysRange> {
        match driver().ok()? {
            Driver::V2 { vcpu, .. } => *vcpu,
            Driver::V3 { .. } => None,
        }
    }
}
