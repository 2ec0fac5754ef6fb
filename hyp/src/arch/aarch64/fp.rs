//! Lazy FP/SIMD switching. A vCPU put on a CPU does not get its V0..V31,
//! FPSR and FPCR loaded: `CPTR_EL2.TFP` traps its first FP/SIMD access
//! instead, and only then are they loaded ([`trap`]); they are saved back
//! when it leaves the CPU only if that happened ([`save`]). A vCPU that does
//! no FP/SIMD work between two switches (an event round trip, a ring
//! exchange) costs neither the 42-instruction save nor the load.
//!
//! The registers keep the last loaded state until another vCPU's state
//! replaces it, so a vCPU that comes back to a CPU still holding its state
//! (after idling, or after a vCPU that did no FP/SIMD work) is not
//! reloaded. One that trapped is loaded with the switch, untrapped, on its
//! next [`EAGER_RUNS`] runs (and saved after each): a vCPU that uses
//! FP/SIMD on every run pays a trap only once in that many, one that
//! stopped using it stops paying after as many (the heuristic of Linux's old
//! x86 lazy FPU, `fpu_counter`).
//!
//! Which state the registers hold is told by tokens: a vCPU put on a CPU
//! that does not hold its current token gets a new one (unique over the
//! hypervisor's life, from [`NEXT`]), and the CPU holds it once that
//! vCPU's state is loaded there. So a token names one copy of one vCPU's state on one CPU: it
//! goes stale as soon as the vCPU is put on another CPU, and writing a
//! context (`Domain::set_vcpu_entry`) or creating one resets it to 0
//! (none). Freed and reused memory cannot match either.
//!
//! Between a switch and the trap the registers may hold another vCPU's
//! values; the new one cannot read them: `TFP` traps every FP/SIMD
//! instruction and FPSR/FPCR access at EL0 and EL1 (Arm ARM D23.2.34,
//! CPTR_EL2), and the trap loads all 32 registers (or finds them the
//! vCPU's own) before clearing it. The hypervisor itself is soft-float and
//! touches them only in `tern_fp_save`/`tern_fp_load`, with `TFP` clear.
//!
//! Per CPU, in `run::PER_CPU` (indexed by `TPIDR_EL2`, the CPU index + 1),
//! so the trap finds its slot without `STATE`.

use core::arch::asm;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, Ordering};

use tock_registers::interfaces::Writeable;

use super::sysreg::{CPTR_EL2, CptrEl2};
use crate::vcpu::{FpHold, FpRegs};

/// One CPU's bookkeeping (in `run::PER_CPU`, next to the rest of what the
/// switch keeps per CPU). Its own CPU alone touches it; atomics only
/// because it is a shared static.
pub(super) struct Slot {
    /// The FP/SIMD context of the vCPU on the CPU (null: none), for
    /// [`trap`]. Valid from `run::load_vcpu` to `run::unload_vcpu` there,
    /// for the reasons `run::take_loaded` gives for the general registers.
    current: AtomicPtr<FpRegs>,
    /// The token of the vCPU on the CPU.
    token: AtomicU64,
    /// The token whose state the CPU's registers hold (0: none).
    held: AtomicU64,
    /// [`LIVE`], [`TRAPPED`].
    state: AtomicU8,
}

/// The current vCPU may use FP/SIMD without a trap (`TFP` clear, the
/// registers its state): set by [`trap`] or [`loaded`], cleared by [`save`].
const LIVE: u8 = 1;
/// The current vCPU trapped since it was put on the CPU.
const TRAPPED: u8 = 2;

impl Slot {
    pub(super) const fn new() -> Self {
        Self {
            current: AtomicPtr::new(core::ptr::null_mut()),
            token: AtomicU64::new(0),
            held: AtomicU64::new(0),
            state: AtomicU8::new(0),
        }
    }
}

/// CPU `slot`'s bookkeeping.
fn slot_of(slot: usize) -> &'static Slot {
    &super::run::PER_CPU[slot].fp
}

/// The next token. Only under `STATE` (by `run::load_vcpu`), so a load
/// and a store suffice.
static NEXT: AtomicU64 = AtomicU64::new(1);
/// Runs after a trap put on a CPU holding the vCPU's state untrapped.
const EAGER_RUNS: u8 = 8;

/// `CPTR_EL2` while a vCPU may not touch FP/SIMD: that traps, as do SVE
/// (its Z/P state is not switched), trace and activity-monitor registers
/// (they would observe other domains). `TCPAC` stays clear: a guest kernel
/// manages its own `CPACR_EL1`, whose traps go to it first.
fn trapping() -> u64 {
    (CPTR_EL2::RES1_0.val(0xff)
        + CPTR_EL2::RES1_9::SET
        + CPTR_EL2::RES1_12.val(0b11)
        + CPTR_EL2::TFP::SET
        + CPTR_EL2::TZ::SET
        + CPTR_EL2::TTA::SET
        + CPTR_EL2::TAM::SET)
        .value
}

/// Sets this CPU up: no FP/SIMD state loaded, accesses trap.
pub fn init_cpu() {
    CptrEl2.set(trapping());
    isb();
}

/// `CPTR_EL2` while the current vCPU may use FP/SIMD.
fn free() -> u64 {
    trapping() & !CPTR_EL2::TFP::SET.value
}

/// The vCPU whose context is `fp` and bookkeeping `hold` was just put on
/// CPU `slot`. Under `STATE`.
pub fn loaded(slot: usize, fp: *mut FpRegs, hold: &mut FpHold) {
    let c = slot_of(slot);
    c.current.store(fp, Ordering::Relaxed);
    let here = hold.token != 0 && c.held.load(Ordering::Relaxed) == hold.token;
    if !here {
        hold.token = NEXT.load(Ordering::Relaxed);
        NEXT.store(hold.token + 1, Ordering::Relaxed);
    }
    c.token.store(hold.token, Ordering::Relaxed);
    if hold.eager > 0 {
        // It is likely to use FP/SIMD: its state now, and no trap.
        hold.eager -= 1;
        CptrEl2.set(free());
        if !here {
            isb();
            // SAFETY: as in `trap`; `fp` is the context of the vCPU just
            // put on this CPU.
            super::guest::fp_load(unsafe { &*fp });
            c.held.store(hold.token, Ordering::Relaxed);
        }
        c.state.store(LIVE, Ordering::Relaxed);
    }
}

/// The vCPU leaves CPU `slot`: its FP/SIMD state into `fp`, its context,
/// if it may have changed; accesses trap again. Under `STATE`.
pub fn save(slot: usize, fp: &mut FpRegs, hold: &mut FpHold) {
    let c = slot_of(slot);
    c.current.store(core::ptr::null_mut(), Ordering::Relaxed);
    let state = c.state.load(Ordering::Relaxed);
    if state != 0 {
        c.state.store(0, Ordering::Relaxed);
        if state & TRAPPED != 0 {
            hold.eager = EAGER_RUNS;
        }
        super::guest::fp_save(fp);
        // No FP/SIMD instruction runs before the next guest's `eret`, which
        // synchronizes the write (Arm ARM D1.10, exception return).
        CptrEl2.set(trapping());
    }
}

/// An FP/SIMD access trapped on CPU `slot`: makes its vCPU's state the
/// registers' and lets it go on (the access is retried). False if no vCPU
/// is loaded there.
pub fn trap(slot: usize) -> bool {
    let c = slot_of(slot);
    let ptr = c.current.load(Ordering::Relaxed);
    if ptr.is_null() {
        return false;
    }
    CptrEl2.set(free());
    isb();
    let token = c.token.load(Ordering::Relaxed);
    if c.held.load(Ordering::Relaxed) != token {
        // SAFETY: `ptr` is the context of the vCPU on this CPU (`loaded`),
        // valid and not written by anyone else while it is here (see
        // `Slot::current`).
        super::guest::fp_load(unsafe { &*ptr });
        c.held.store(token, Ordering::Relaxed);
    }
    c.state.store(LIVE | TRAPPED, Ordering::Relaxed);
    true
}

fn isb() {
    // SAFETY: `isb` only synchronizes the `CPTR_EL2` write before it.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}
