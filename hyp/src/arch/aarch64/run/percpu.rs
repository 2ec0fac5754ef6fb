//! Per-CPU state of the vCPU switch: what the trap and switch paths of
//! `run.rs` know of each CPU's current vCPU without `STATE`'s lookups.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use tock_registers::interfaces::Readable;

use super::DOM0_SLOTS;
use crate::vcpu::GuestRegs;

/// Per CPU: what the trap and switch paths need to know of its current
/// vCPU without a lookup under `STATE` (or without `STATE` at all). One
/// struct, so that the switch finds all of it from one address. Indexed by
/// `TPIDR_EL2` as it is (the CPU index + 1, see `crate::percpu`), so the trap path
/// finds its slot with no arithmetic but a mask (a power of two of them)
/// and a shift (a power of two in size); slot 0 (an uninitialised CPU)
/// stays empty.
#[repr(C, align(64))]
pub(in crate::arch::aarch64) struct PerCpu {
    /// Whether the current vCPU is dom0's. Lets the trap path answer
    /// discovery calls (which only need that) without taking `STATE`; the
    /// exception entry reads it as a byte at offset 0 (`vectors.rs`).
    pub(in crate::arch::aarch64) is_dom0: AtomicBool,
    /// See [`take_loaded`].
    pub(super) switched: AtomicBool,
    /// The general registers, PC and PSTATE of the current vCPU
    /// (`ctx.gp` in its context), where the exception entry saves them
    /// (`vectors.rs`) and the exception return reloads them from. With no
    /// vCPU, this CPU's slot of [`NO_VCPU`] ([`init_regs`], before the
    /// CPU's first vCPU; null only before that, when no guest ran on it).
    /// Set by `load_vcpu`, reset by `forget_vcpu`.
    pub(in crate::arch::aarch64) regs: AtomicPtr<GuestRegs>,
    /// The physical address of the current vCPU's `upcall_pending` word in
    /// the event page (0: no vCPU, or no event page). Lets `evtchn_op
    /// upcall_done`, which only re-evaluates the caller's upcall line, be
    /// answered without taking `STATE` (two of the six traps of an event
    /// round trip are that call).
    pub(super) upcall_word: AtomicU64,
    /// The current vCPU (null: none), set by `load_vcpu` and cleared by
    /// `forget_vcpu`: `hand_over` saves it without looking its domain up.
    /// Valid for as long as [`take_loaded`] says. The lazy FP/SIMD trap
    /// finds the vCPU's FP/SIMD context here (`fp.rs`).
    pub(in crate::arch::aarch64) vcpu: AtomicPtr<crate::domain::Vcpu>,
    /// Its lazy FP/SIMD bookkeeping.
    pub(in crate::arch::aarch64) fp: crate::arch::aarch64::fp::Slot,
}

/// All zeroes, so in `.bss`: [`PerCpu::regs`] is set by [`init_regs`].
pub(in crate::arch::aarch64) static PER_CPU: [PerCpu; DOM0_SLOTS] = [const {
    PerCpu {
        is_dom0: AtomicBool::new(false),
        switched: AtomicBool::new(false),
        regs: AtomicPtr::new(core::ptr::null_mut()),
        upcall_word: AtomicU64::new(0),
        vcpu: AtomicPtr::new(core::ptr::null_mut()),
        fp: crate::arch::aarch64::fp::Slot::new(),
    }
}; DOM0_SLOTS];

/// Where the exception entry of a CPU with no vCPU would save a guest's
/// registers. A lower-EL exception cannot come then (with no vCPU a CPU
/// runs at EL2: booting, idle, or between two vCPUs under `STATE`), but if a
/// bug let one come, its registers land here, not in a vCPU that may be
/// running elsewhere, and the handlers (which find no vCPU) report them.
pub(super) struct NoVcpu(UnsafeCell<GuestRegs>);

// SAFETY: only the CPU of its slot touches it, and only in the exception
// entry and return and the handler between them, with interrupts masked.
unsafe impl Sync for NoVcpu {}

/// One for each [`PER_CPU`] slot.
pub(super) static NO_VCPU: [NoVcpu; DOM0_SLOTS] = [const {
    NoVcpu(UnsafeCell::new(GuestRegs {
        x: [0; 31],
        pc: 0,
        pstate: 0,
    }))
}; DOM0_SLOTS];

/// [`PerCpu::regs`] of CPU `slot` when it has no vCPU.
pub(super) fn no_vcpu(slot: usize) -> *mut GuestRegs {
    NO_VCPU[slot].0.get()
}

/// Points this CPU's [`PerCpu::regs`] at its spare, before it runs a vCPU
/// (so it is never null once a guest may trap here). Set at run time, not in
/// the static: a pointer there would move `PER_CPU` from `.bss` into the
/// image, with a relocation each.
pub(super) fn init_regs() {
    let slot = this_slot();
    PER_CPU[slot].regs.store(no_vcpu(slot), Ordering::Relaxed);
}

/// The general registers of the vCPU `load_vcpu_deferred` last put on
/// this CPU ([`PerCpu::regs`]), if it put one there since the last take
/// (else null): a switch path enters that vCPU from them with every
/// register reloaded; null means the trapped vCPU goes on (its
/// callee-saved registers still live in the CPU's).
///
/// The pointer (like the one `load_vcpu` returns, and [`PerCpu::regs`],
/// which the exception entry writes through) is dereferenced after
/// `STATE` is released, until the `eret`, and again at the vCPU's traps.
/// It stays valid and unaliased for that long because:
/// - the vCPU is on this CPU (`on_cpu` set by `load_vcpu`, cleared only by
///   `unload_vcpu` or `hand_over`, all under `STATE` on this CPU itself), and
///   `Hypervisor::destroy_domain` refuses (`Busy`) while any vCPU of the
///   domain has `on_cpu` set, so its `Domain` is not freed;
/// - domains are `Box<Domain>` in the `DomainTable` (inserting or removing
///   other domains moves the box, not the domain), and a domain's `vcpus`
///   vector is built at creation and never grows or shrinks, so the
///   context does not move;
/// - while it is on a CPU, a context's general registers are written only
///   by that CPU's exception entry and its trap handler (through the
///   pointer), and its FP/SIMD bookkeeping (`fp_hold`) only by that CPU's
///   switch and lazy FP/SIMD trap (`fp.rs`); `unload_vcpu` and `hand_over` write the rest of the context
///   (its EL1 and FP/SIMD registers), and `Domain::set_vcpu_entry`, whose
///   callers refuse a vCPU that is on a CPU (`vcpu_op up`, `domctl
///   set_vcpu_context`) or set up a domain that never ran (the loader),
///   and `apply_notify_from`'s hand-over of a port into `x1` (`sched_op
///   send_wait`), which writes only a vCPU that is on no CPU, are the only
///   other writers. Nothing reads them but the exception return.
pub(in crate::arch::aarch64) fn take_loaded() -> *const GuestRegs {
    let this = &PER_CPU[this_slot()];
    if this.switched.swap(false, Ordering::Relaxed) {
        this.regs.load(Ordering::Relaxed)
    } else {
        core::ptr::null()
    }
}

/// This CPU's slot in [`PER_CPU`]: `TPIDR_EL2` as it is (see
/// `crate::percpu`).
pub(super) fn this_slot() -> usize {
    aarch64_cpu::registers::TPIDR_EL2.get() as usize % DOM0_SLOTS
}
