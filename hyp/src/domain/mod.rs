//! Domains: the unit of isolation. A domain has an id, a name, a VMID, its own
//! stage-2 tables, RAM counted page by page, and one or more vCPUs.
//!
//! This module is policy and bookkeeping only; it never touches a system
//! register. Running a vCPU is the scheduler's and `arch`'s business.

pub mod loader;
pub mod ram;
pub mod table;

use alloc::vec::Vec;

use tern_abi::domctl::{DomainFlags, DomainId, DomainInfo, DomainState, VcpuEntry};
use tern_abi::sched::ShutdownReason;
use tern_abi::strings::{NAME_MAX, set_field};

use crate::physmem::{FrameSource, PhysMem};
use crate::stage2::Stage2;
use crate::vcpu::{FpHold, VcpuContext};
use ram::GuestRam;

/// Most vCPUs one domain may have.
pub const MAX_VCPUS: usize = 8;

/// A VMID: tags a domain's stage-2 TLB entries (Arm ARM D8.15, "VMID").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vmid(pub u16);

/// Where a domain is in its life. `DomainInfo::state` is derived from it and the
/// vCPUs' states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Created or paused by dom0: no vCPU runs.
    Paused,
    /// Its vCPUs may run.
    Active,
    /// The guest asked to stop.
    Shutdown(ShutdownReason),
    /// The hypervisor stopped it after a fault.
    Crashed,
    /// `destroy` has begun: its vCPUs are being taken off their CPUs.
    Dying,
}

impl Lifecycle {
    /// A word for logs (cheaper in the image than the derived `Debug`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Paused => "paused",
            Self::Active => "active",
            Self::Shutdown(_) => "shut down",
            Self::Crashed => "crashed",
            Self::Dying => "dying",
        }
    }
}

/// What a vCPU is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuState {
    /// Not brought up (secondary vCPUs before `vcpu_up`).
    Down,
    /// Wants a physical CPU.
    Runnable,
    /// Waiting for an event (`sched_op block`).
    Blocked,
}

/// One virtual CPU.
#[derive(Debug)]
pub struct Vcpu {
    /// Its architectural state while not on a physical CPU.
    pub ctx: VcpuContext,
    /// Whether it wants to run.
    pub state: VcpuState,
    /// The physical CPU it is on right now, if any.
    pub on_cpu: Option<usize>,
    /// It blocked in `sched_op poll` and has not been woken since: only then
    /// may its poll still be recorded, so only then does its wake-up look
    /// the poll up to end it.
    pub polled: bool,
    /// It blocked in `sched_op send_wait` and has not been woken since: a
    /// port handed over for it ([`crate::evtchn::Notify::direct`]) may
    /// then go into its `x1`.
    pub direct_wait: bool,
    /// Its `upcall_pending` word, once the domain registered its event page
    /// (a copy of `Events::upcall_word`, which never changes after that):
    /// the switch and `block` read it without looking the events up.
    pub upcall_word: Option<crate::addr::PhysAddr>,
    /// Whether a CPU may still hold its FP/SIMD state (see [`FpHold`]).
    pub fp_hold: FpHold,
}

/// A domain.
#[derive(Debug)]
pub struct Domain {
    id: DomainId,
    name: [u8; NAME_MAX + 1],
    vmid: Vmid,
    flags: DomainFlags,
    /// Where the domain is in its life.
    pub life: Lifecycle,
    /// Its RAM.
    pub ram: GuestRam,
    max_pages: u64,
    /// Its stage-2 translation tables.
    pub stage2: Stage2,
    /// Its vCPUs; index = vCPU id.
    pub vcpus: Vec<Vcpu>,
    /// The command line for its start-info page.
    pub cmdline: [u8; 256],
    /// Whether an image was loaded (it may be unpaused).
    pub image_loaded: bool,
    /// Whether it ever ran (no more images may be loaded).
    pub has_run: bool,
    /// Where its configuration store is (`domctl set_store`).
    pub store: StoreLoc,
    /// Hypercalls it made that reached the dispatcher (`DomainInfo::hypercalls`).
    pub hypercalls: u64,
    /// `CNTVOFF_EL2` of its vCPUs (a copy of `Events::counter_offset`, set
    /// once when the domain is created), for the switch.
    pub counter_offset: u64,
}

/// Where a domain's configuration store is, as its start-info page says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreLoc {
    /// The serving domain.
    pub domid: u32,
    /// Grant reference of the store page in the server's table.
    pub gref: u32,
    /// The server's unbound port; 0 = no store.
    pub port: u32,
}

impl Domain {
    /// What its start-info page says about where its RAM is physically:
    /// dom0's one contiguous run, hidden from everyone else.
    pub fn ram_phys_base(&self) -> u64 {
        match self.ram.chunks() {
            [only] if self.is_dom0() => only.pa.0,
            _ => tern_abi::start_info::NO_RAM_PHYS_BASE,
        }
    }

    /// Its id.
    pub const fn id(&self) -> DomainId {
        self.id
    }
    /// Its VMID.
    pub const fn vmid(&self) -> Vmid {
        self.vmid
    }
    /// Whether it is the control domain.
    pub fn is_dom0(&self) -> bool {
        self.flags.contains(DomainFlags::IS_DOM0)
    }
    /// Its flags.
    pub const fn flags(&self) -> DomainFlags {
        self.flags
    }
    /// Its name.
    // Out of line: it is called from many (mostly logging) sites, and inlined
    // copies of the UTF-8 check cost about 2 KiB of image.
    #[inline(never)]
    pub fn name(&self) -> &str {
        tern_abi::strings::field_str(&self.name).unwrap_or("?")
    }
    /// Its name field, NUL-padded.
    pub const fn name_field(&self) -> &[u8; NAME_MAX + 1] {
        &self.name
    }
    /// The most RAM it may hold, in pages.
    pub const fn max_pages(&self) -> u64 {
        self.max_pages
    }
    /// Sets the ballooning ceiling.
    pub fn set_max_pages(&mut self, pages: u64) {
        self.max_pages = pages;
    }

    /// Whether vCPU `v` may be put on a physical CPU now.
    pub fn vcpu_runnable(&self, v: usize) -> bool {
        self.life == Lifecycle::Active
            && self
                .vcpus
                .get(v)
                .is_some_and(|c| c.state == VcpuState::Runnable)
    }

    /// The physical CPUs its vCPUs are on, as a bit mask.
    pub fn running_cpus(&self) -> u64 {
        self.vcpus
            .iter()
            .filter_map(|v| v.on_cpu)
            .fold(0, |m, c| m | 1 << c)
    }

    /// The ABI state.
    pub fn state(&self) -> DomainState {
        match self.life {
            Lifecycle::Paused => DomainState::Paused,
            Lifecycle::Shutdown(_) => DomainState::Shutdown,
            Lifecycle::Crashed => DomainState::Crashed,
            Lifecycle::Dying => DomainState::Dying,
            Lifecycle::Active => {
                if self.vcpus.iter().any(|v| v.state == VcpuState::Runnable) {
                    DomainState::Running
                } else {
                    DomainState::Blocked
                }
            }
        }
    }

    /// Whether `entry` is a usable vCPU entry state in this domain: PC
    /// 4-byte aligned inside RAM, SP zero or 16-byte aligned with its first
    /// push inside RAM (it may be the very end of RAM: the stack grows down).
    pub fn check_entry(&self, entry: &VcpuEntry) -> Result<(), tern_abi::Error> {
        use crate::addr::GuestPhysAddr;
        const STACK_ALIGN: u64 = 16;
        let pc_ok = self.ram.contains(GuestPhysAddr(entry.pc), 4) && entry.pc.is_multiple_of(4);
        let sp_ok = entry.sp == 0
            || (entry.sp.is_multiple_of(STACK_ALIGN)
                && self
                    .ram
                    .contains(GuestPhysAddr(entry.sp - STACK_ALIGN), STACK_ALIGN));
        if pc_ok && sp_ok {
            Ok(())
        } else {
            Err(tern_abi::Error::InvalidArgument)
        }
    }

    /// Sets vCPU `v`'s entry state.
    pub fn set_vcpu_entry(&mut self, v: usize, entry: &VcpuEntry, sctlr_reset: u64) {
        let vcpu = &mut self.vcpus[v];
        vcpu.ctx = VcpuContext::at_entry(entry, sctlr_reset);
        vcpu.fp_hold = FpHold::default();
        vcpu.state = VcpuState::Runnable;
        vcpu.direct_wait = false;
    }

    /// The `DomainInfo` dom0 sees, with the CPU time its vCPUs have used
    /// (the scheduler keeps that figure: it also counts a running slice)
    /// and the events it sent (the event channels keep that count).
    pub fn info(&self, cpu_time_ns: u64, events_sent: u64) -> DomainInfo {
        let reason = match self.life {
            Lifecycle::Shutdown(r) => r.raw(),
            _ => 0,
        };
        DomainInfo {
            domain_id: self.id.0,
            state: self.state().raw(),
            shutdown_reason: reason,
            vcpus: self.vcpus.len() as u32,
            flags: self.flags.bits(),
            reserved0: 0,
            memory_pages: self.ram.pages(),
            max_memory_pages: self.max_pages,
            cpu_time_ns,
            name: self.name,
            hypercalls: self.hypercalls,
            events_sent,
        }
    }

    /// Gives back every page the domain holds: RAM and stage-2 tables.
    fn release(&mut self, frames: &mut dyn FrameSource, mem: &dyn PhysMem) {
        self.stage2.destroy(frames, mem);
        self.ram.free(frames);
    }
}

/// What a new domain needs.
#[derive(Clone, Copy, Debug)]
pub struct DomainConfig<'a> {
    /// Unique name.
    pub name: &'a [u8],
    /// RAM in pages.
    pub pages: u64,
    /// vCPU count.
    pub vcpus: usize,
    /// Command line (may be empty).
    pub cmdline: &'a [u8],
    /// Flags (`IS_DOM0` for the control domain).
    pub flags: DomainFlags,
}

impl Domain {
    fn build(
        id: DomainId,
        vmid: Vmid,
        cfg: &DomainConfig<'_>,
        frames: &mut dyn FrameSource,
        mem: &dyn PhysMem,
    ) -> Result<Self, tern_abi::Error> {
        let mut name = [0u8; NAME_MAX + 1];
        set_field(&mut name, cfg.name)?;
        let mut cmdline = [0u8; 256];
        set_field(&mut cmdline, cfg.cmdline)?;
        let base = crate::addr::GuestPhysAddr(tern_abi::layout::GUEST_RAM_BASE);
        let mut ram = if cfg.flags.contains(DomainFlags::IS_DOM0) {
            GuestRam::allocate_contiguous(base, cfg.pages, frames, mem)?
        } else {
            GuestRam::allocate(base, cfg.pages, frames, mem)?
        };
        let stage2 = match Stage2::for_ram(&ram, frames, mem) {
            Ok(s) => s,
            Err(e) => {
                ram.free(frames);
                return Err(e);
            }
        };
        let vcpus = (0..cfg.vcpus)
            .map(|_| Vcpu {
                ctx: VcpuContext::default(),
                state: VcpuState::Down,
                on_cpu: None,
                polled: false,
                direct_wait: false,
                upcall_word: None,
                fp_hold: FpHold::default(),
            })
            .collect();
        Ok(Self {
            id,
            name,
            vmid,
            flags: cfg.flags,
            life: Lifecycle::Paused,
            max_pages: cfg.pages,
            ram,
            stage2,
            vcpus,
            cmdline,
            image_loaded: false,
            has_run: false,
            store: StoreLoc::default(),
            hypercalls: 0,
            counter_offset: 0,
        })
    }
}
