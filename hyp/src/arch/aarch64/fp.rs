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
//! Which state the registers hold is told by tokens. A token names one
//! copy of one vCPU's state in one CPU's registers: a CPU makes a new one
//! each time it loads a vCPU's state (at the trap, or eagerly with the
//! switch), from its own sequence with its slot in the low bits, so tokens
//! are unique over the hypervisor's life without a shared counter, and a
//! token is only ever held by the CPU that made it. The vCPU keeps the
//! token of its last loaded copy; put on a CPU, it needs no reload while
//! that CPU still holds the token. A copy goes stale only when the state
//! changes elsewhere, which takes a load (and so a new token) there, or a
//! write of the context (`Domain::set_vcpu_entry`, or creating one), which
//! resets the token to 0 (none). Freed and reused memory cannot match
//! either. A switch that loads nothing makes no token: most switches.
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
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use tock_registers::interfaces::Writeable;

use super::sysreg::{CPTR_EL2, CptrEl2};
use crate::vcpu::{FpHold, FpRegs};

/// One CPU's bookkeeping (in `run::PER_CPU`, next to the rest of what the
/// switch keeps per CPU). Its own CPU alone touches it; atomics only
/// because it is a shared static.
pub(super) struct Slot {
    /// The token whose state the CPU's registers hold, which is also the
    /// last one this CPU made; before any, a value that is no token (its
    /// slot bits clear) and not 0 either (a vCPU's "none"), set by
    /// [`init_cpu`], so that the trap compares it with no other test.
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
            held: AtomicU64::new(0),
            state: AtomicU8::new(0),
        }
    }
}

/// CPU `slot`'s bookkeeping.
fn slot_of(slot: usize) -> &'static Slot {
    &super::run::PER_CPU[slot].fp
}

impl Slot {
    /// Whether the registers hold the copy of a vCPU's state named `token`.
    fn holds(&self, token: u64) -> bool {
        self.held.load(Ordering::Relaxed) == token
    }

    /// The vCPU on CPU `slot` (this one) gets its state into the registers
    /// (the caller loads them): returns a new token for that copy, now
    /// held here. Only on the CPU itself, so plain loads and stores
    /// suffice, also on the trap path, which runs without `STATE`.
    fn new_copy(&self, slot: usize) -> u64 {
        let token = next_count(self.held.load(Ordering::Relaxed)) | slot as u64;
        self.held.store(token, Ordering::Relaxed);
        token
    }
}

/// The bits of a token that name the CPU slot that made it (slots are
/// below `run::DOM0_SLOTS`, a power of two, and slot 0 runs no vCPU); the
/// bits above count that CPU's tokens.
const SLOT_MASK: u64 = super::run::DOM0_SLOTS as u64 - 1;

/// The count after the one in `held` (slot bits clear): never 0, and
/// above every token made before on the CPU.
fn next_count(held: u64) -> u64 {
    (held | SLOT_MASK) + 1
}
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
/// `slot`: the CPU's (as for [`loaded`]). Whatever the registers held
/// (if the CPU ran before) is forgotten.
pub fn init_cpu(slot: usize) {
    let c = slot_of(slot);
    c.held.store(
        next_count(c.held.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    CptrEl2.set(trapping());
    isb();
}

/// `CPTR_EL2` while the current vCPU may use FP/SIMD.
fn free() -> u64 {
    trapping() & !CPTR_EL2::TFP::SET.value
}

/// The vCPU whose context is `fp` and bookkeeping `hold` was just put on
/// CPU `slot`. Under `STATE`. Nothing to do unless it is likely to use
/// FP/SIMD: [`trap`] finds the vCPU through `run::PerCpu::vcpu`.
pub fn loaded(slot: usize, fp: &FpRegs, hold: &mut FpHold) {
    if hold.eager > 0 {
        // Its state now, and no trap.
        hold.eager -= 1;
        CptrEl2.set(free());
        let c = slot_of(slot);
        if !c.holds(hold.token) {
            isb();
            super::guest::fp_load(fp);
            hold.token = c.new_copy(slot);
        }
        c.state.store(LIVE, Ordering::Relaxed);
    }
}

/// The vCPU leaves CPU `slot`: its FP/SIMD state into `fp`, its context,
/// if it may have changed; accesses trap again. Under `STATE`.
pub fn save(slot: usize, fp: &mut FpRegs, hold: &mut FpHold) {
    let c = slot_of(slot);
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
    let vcpu = super::run::PER_CPU[slot].vcpu.load(Ordering::Relaxed);
    if vcpu.is_null() {
        return false;
    }
    CptrEl2.set(free());
    isb();
    // Only this CPU touches the FP/SIMD context and `fp_hold` of its vCPU
    // while it is here: the switch under `STATE`, and this trap, which
    // cannot interrupt the switch.
    // SAFETY: `vcpu` is this CPU's vCPU, valid while it is here
    // (`run::take_loaded`); the two references are to disjoint fields.
    let (fp, hold) = unsafe { (&(*vcpu).ctx.fp, &mut (*vcpu).fp_hold) };
    let c = slot_of(slot);
    if !c.holds(hold.token) {
        super::guest::fp_load(fp);
        hold.token = c.new_copy(slot);
    }
    c.state.store(LIVE | TRAPPED, Ordering::Relaxed);
    true
}

fn isb() {
    // SAFETY: `isb` only synchronizes the `CPTR_EL2` write before it.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}
