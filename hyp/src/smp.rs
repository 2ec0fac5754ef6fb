//! Bringing every CPU of the platform into the hypervisor.
//!
//! The boot CPU calls [`init_boot_cpu`] (numbers the CPUs, initialises the GIC
//! distributor and its own CPU interface) and then [`start_secondaries`]. Each
//! secondary, once its MMU and vectors are up, calls [`secondary_up`]. A CPU is
//! "online" once its GIC CPU interface passed the self-test; it then logs
//! `cpu <n> online (mpidr <hex>)` itself.
//!
//! Secondaries are started one at a time, in device-tree order, each with a
//! time limit: a CPU that does not come up is reported and skipped. How each is
//! started follows its `enable-method`: PSCI CPU_ON (entry `secondary_entry`,
//! context id = logical index), spin-table (see `arch::aarch64::spin_table`),
//! or, when tern was itself entered at EL3 (no firmware, so no PSCI), the EL3
//! holding pen of the entry code.
//!
//! Only in the bare-metal image.
#![cfg(target_os = "none")]

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, Readable};
use log::{error, info, warn};

use crate::addr::PhysAddr;
use crate::arch::aarch64::{self as arch, psci, spin_table};
use crate::drivers::gic;
use crate::percpu::{self, CpuIndex, MAX_CPUS, Mpidr};
use crate::platform::{EnableMethod, Platform, PsciMethod};

/// How long the boot CPU waits for one secondary to report online.
const ONLINE_TIMEOUT_MS: u64 = 2000;

/// Boot CPU, once logging works: assigns logical indices (boot CPU 0, the rest
/// in DT order), selects the PSCI conduit, initialises the GIC distributor and
/// brings the boot CPU's own interrupt interface up.
pub fn init_boot_cpu(platform: &Platform<'_>) {
    let boot = Mpidr::current();
    percpu::register(CpuIndex::BOOT, boot);
    let mut next = 1;
    for cpu in platform.cpus.iter() {
        let mpidr = Mpidr::from_raw(cpu.mpidr);
        if mpidr == boot {
            continue;
        }
        if next >= MAX_CPUS {
            warn!("cpu with mpidr {mpidr} ignored: more than {MAX_CPUS} CPUs");
            continue;
        }
        percpu::register(CpuIndex(next), mpidr);
        next += 1;
    }
    match platform.psci {
        Some(PsciMethod::Smc) => psci::set_conduit(psci::Conduit::Smc),
        Some(PsciMethod::Hvc) => psci::set_conduit(psci::Conduit::Hvc),
        None => {}
    }
    if let Err(e) = gic::init_distributor(platform) {
        error!("gic: distributor not initialised: {e:?}");
    }
    this_cpu_up(CpuIndex::BOOT);
}

/// A secondary CPU, on its own stack with its MMU and vectors up.
pub fn secondary_up(cpu: CpuIndex) {
    this_cpu_up(cpu);
}

/// The per-CPU part common to all CPUs: GIC CPU interface, its self-test,
/// then the `online` report.
fn this_cpu_up(cpu: CpuIndex) {
    match gic::init_cpu(cpu) {
        Ok(()) => {
            // The self-test logs its own result; a failure is not fatal.
            let _ = gic::self_test(cpu);
        }
        Err(e) => error!("gic: cpu {cpu} interface not initialised: {e:?}"),
    }
    percpu::this_cpu().set_online();
    info!("cpu {cpu} online (mpidr {})", Mpidr::current());
}

/// Starts every registered CPU but the boot CPU and waits for each; ends with
/// `all <N> CPUs online` (or how many of how many made it).
pub fn start_secondaries(platform: &Platform<'_>) {
    let mut described = 1;
    let mut online = 1;
    for cpu in percpu::present().filter(|c| c.index() != CpuIndex::BOOT) {
        described += 1;
        let (index, mpidr) = (cpu.index(), cpu.mpidr());
        let method = platform
            .cpus
            .iter()
            .find(|c| Mpidr::from_raw(c.mpidr) == mpidr)
            .map_or(EnableMethod::Unknown, |c| c.enable);
        if let Err(why) = start(index, mpidr, method) {
            error!("cpu {index} (mpidr {mpidr}) not started: {why}");
            continue;
        }
        if wait_online(index) {
            online += 1;
        } else {
            error!("cpu {index} (mpidr {mpidr}) did not come online within {ONLINE_TIMEOUT_MS} ms");
        }
    }
    if online == described {
        info!("all {online} CPUs online");
    } else {
        warn!("{online} of {described} CPUs online");
    }
}

/// Why a CPU could not be started.
enum StartError {
    Psci(psci::PsciError),
    NoMethod,
    Pen,
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Psci(e) => write!(f, "PSCI CPU_ON failed: {e:?}"),
            Self::NoMethod => f.write_str("no usable enable-method"),
            Self::Pen => f.write_str("not in the EL3 holding pen"),
        }
    }
}

fn start(index: CpuIndex, mpidr: Mpidr, method: EnableMethod) -> Result<(), StartError> {
    let entry = PhysAddr(arch::secondary_entry_address());
    match method {
        EnableMethod::SpinTable { release_addr } => {
            // SAFETY: the DT's cpu-release-addr for this CPU, which the
            // firmware still holds (each CPU is released once, and we wait for
            // it before releasing the next).
            unsafe { spin_table::release(release_addr, index) };
            Ok(())
        }
        EnableMethod::Psci if psci::conduit().is_some() => {
            psci::cpu_on(mpidr, entry, index.get() as u64).map_err(StartError::Psci)
        }
        // Entered at EL3 there is no firmware. QEMU (`secure=on`, ELF given to
        // `-kernel`) then disables its built-in PSCI, since it would shadow our
        // EL3, and starts every CPU at the ELF entry, but still writes
        // `enable-method = "psci"` into the CPU nodes (and no /psci node). The
        // CPU waits in the entry code's holding pen (slot = Aff0).
        _ if arch::entered_at_el3() => {
            if arch::release_from_pen(usize::from(mpidr.aff0()), index.get()) {
                Ok(())
            } else {
                Err(StartError::Pen)
            }
        }
        EnableMethod::Psci => Err(StartError::Psci(psci::PsciError::NoConduit)),
        EnableMethod::Unknown => Err(StartError::NoMethod),
    }
}

fn wait_online(index: CpuIndex) -> bool {
    let Some(cpu) = percpu::get(index) else {
        return false;
    };
    let freq = CNTFRQ_EL0.get().max(1);
    let deadline = CNTPCT_EL0.get() + freq * ONLINE_TIMEOUT_MS / 1000;
    while CNTPCT_EL0.get() < deadline {
        if cpu.is_online() {
            return true;
        }
        core::hint::spin_loop();
    }
    cpu.is_online()
}
