//! Per-CPU state of the vCPU switch: what the trap and switch paths of
//! `run.rs` know of each CPU's current vCPU without `STATE`'s lookups.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use tock_registers::interfaces::Readable;

use super::DOM0_SLOTS;

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
    /// The physical address of the current vCPU's `upcall_pending` word in
    /// the event page (0: no vCPU, or no event page). Lets `evtchn_op
    /// upcall_done`, which only re-evaluates the caller's upcall line, be
    /// answered without taking `STATE` (two of the six traps of an event
    /// round trip are that call).
    pub(super) upcall_word: AtomicU64,
    /// See [`take_loaded`].
    pub(super) loaded_regs: AtomicPtr<crate::vcpu::GuestRegs>,
    /// The current vCPU (null: none), set by `load_vcpu` and cleared by
    /// `forget_vcpu`: `hand_over` saves it without looking its domain up.
    /// Valid for as long as [`take_loaded`] says.
    pub(super) vcpu: AtomicPtr<crate::domain::Vcpu>,
    /// Its lazy FP/SIMD bookkeeping.
    pub(in crate::arch::aarch64) fp: crate::arch::aarch64::fp::Slot,
}

pub(in crate::arch::aarch64) static PER_CPU: [PerCpu; DOM0_SLOTS] = [const {
    PerCpu {
        is_dom0: AtomicBool::new(false),
        upcall_word: AtomicU64::new(0),
        loaded_regs: AtomicPtr::new(core::ptr::null_mut()),
        vcpu: AtomicPtr::new(core::ptr::null_mut()),
        fp: crate::arch::aarch64::fp::Slot::new(),
    }
}; DOM0_SLOTS];

/// The general registers of the vCPU `load_vcpu_deferred` last put on
/// this CPU, taken (null afterwards; null too if none was loaded since the
/// last take): a switch path enters the guest from them instead of from its
/// trap frame, which saves copying them into the frame. Null: the trap frame
/// still holds the guest to resume.
///
/// The pointer (like the one `load_vcpu` returns) is dereferenced after
/// `STATE` is released, until the `eret`.
/// It stays valid and unaliased for that long because:
/// - the vCPU is on this CPU (`on_cpu` set by `load_vcpu`, cleared only by
///   `unload_vcpu` or `hand_over`, all under `STATE` on this CPU itself), and
///   `Hypervisor::destroy_domain` refuses (`Busy`) while any vCPU of the
///   domain has `on_cpu` set, so its `Domain` is not freed;
/// - domains are `Box<Domain>` in the `DomainTable` (inserting or removing
///   other domains moves the box, not the domain), and a domain's `vcpus`
///   vector is built at creation and never grows or shrinks, so the
///   context does not move;
/// - the only writers of a context are `unload_vcpu` and `hand_over` (this
///   CPU, not before the next trap), `Domain::set_vcpu_entry`, whose callers refuse a
///   vCPU that is on a CPU (`vcpu_op up`, `domctl set_vcpu_context`) or set
///   up a domain that never ran (the loader), and `apply_notify_from`'s
///   hand-over of a port into `x1` (`sched_op send_wait`), which writes only
///   a vCPU that is on no CPU.
pub(in crate::arch::aarch64) fn take_loaded() -> *const crate::vcpu::GuestRegs {
    PER_CPU[this_slot()]
        .loaded_regs
        .swap(core::ptr::null_mut(), Ordering::Relaxed)
}

/// This CPU's slot in [`PER_CPU`]: `TPIDR_EL2` as it is (see
/// `crate::percpu`).
pub(super) fn this_slot() -> usize {
    aarch64_cpu::registers::TPIDR_EL2.get() as usize % DOM0_SLOTS
}
