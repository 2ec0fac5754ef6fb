//! EL2 exception vectors (VBAR_EL2) and the trap frame.
//!
//! Exceptions from EL2 itself and the rare lower-EL kinds (FIQ, SError,
//! AArch32) save the full general-purpose state into a [`TrapFrame`] on the
//! current EL2 stack and call a Rust handler with `&mut TrapFrame`, which
//! reports the exception and halts the CPU (were one to return, every GPR
//! and ELR_EL2/SPSR_EL2 would be reloaded from the frame before `eret`).
//!
//! Lower-EL synchronous exceptions and IRQs, the hot paths, save the
//! guest's registers straight into the current vCPU's context instead
//! ([`GuestRegs`], found through this CPU's `run::PerCpu::regs`), so that a
//! vCPU switch has no general register left to copy: it saves only the EL1
//! (and FP/SIMD) registers, and the next vCPU is entered from its own
//! context. They save the caller-saved registers first (the null hypercall
//! not even those), and x19..x28 (and for an IRQ, ELR/SPSR) only when the
//! vCPU may be switched; a resume reloads what was saved from the same
//! place. The guest's x0/x1 wait on the EL2 stack while the context is
//! looked up, and that 16-byte slot then keeps the context's address for
//! the return. There is always a context to save into: with no vCPU a CPU
//! runs at EL2 (boot, idle, between two vCPUs), and its `regs` then points
//! at a spare one (`run::NO_VCPU`) that the handlers, finding no vCPU,
//! report. Layout of the table: Arm ARM D1.10.2, "Exception vectors" (4
//! groups of 4 entries, 0x80 bytes each, 2 KiB aligned).

use core::arch::global_asm;
use core::fmt;

use aarch64_cpu::registers::{ESR_EL2, VBAR_EL2};
use tock_registers::LocalRegisterCopy;
use tock_registers::interfaces::Writeable;

use crate::vcpu::GuestRegs;

/// Register state saved on every exception taken to EL2.
///
/// `#[repr(C)]` layout, shared with the assembly in this file (byte offsets):
///
/// | offset | field | restored on return |
/// |---|---|---|
/// | 0x000 | `x[0]`..`x[30]` (x0..x30) | yes |
/// | 0x0f8 | `sp`: SP_EL2 before the exception (frame address + 0x120) | no |
/// | 0x100 | `elr`: ELR_EL2, where `eret` returns | yes |
/// | 0x108 | `spsr`: SPSR_EL2, the state `eret` restores | yes |
/// | 0x110 | `esr`: ESR_EL2, syndrome | no |
/// | 0x118 | `far`: FAR_EL2, faulting address (when valid) | no |
///
/// Size 0x120 (288 bytes, a multiple of 16 as SP requires). For exceptions from
/// a lower EL, the guest's own SP (SP_EL1/SP_EL0) is untouched by the entry and
/// not in the frame.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// SP_EL2 before the exception (informational).
    pub sp: u64,
    /// Return address (ELR_EL2).
    pub elr: u64,
    /// Saved program status (SPSR_EL2).
    pub spsr: u64,
    /// Exception syndrome (ESR_EL2).
    pub esr: u64,
    /// Fault address (FAR_EL2).
    pub far: u64,
}

impl TrapFrame {
    /// A report's frame for a guest's exception: its registers as the
    /// lower-EL entry saved them into its context, its syndrome and fault
    /// address. `sp` is 0: the entry neither moves nor saves the guest's
    /// own SP (SP_EL1/SP_EL0).
    pub fn of_guest(regs: &GuestRegs, esr: u64, far: u64) -> Self {
        Self {
            x: regs.x,
            sp: 0,
            elr: regs.pc,
            spsr: regs.pstate,
            esr,
            far,
        }
    }
}

const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();
/// `version`'s function id is a `movz` immediate: its low half is zero.
const VERSION_HI: u32 = tern_abi::call::VERSION >> 16;
const _: () = assert!(tern_abi::call::VERSION & 0xffff == 0);
/// Call 0 of the ABI major served here: what a call's id is with its call
/// number and SVE hint cleared (`tern_abi::call::decode` accepts exactly
/// those ids as that major).
const ABI_CALLS: u32 = tern_abi::call::function_id(tern_abi::Call::MAJOR, 0);
/// The entry indexes `VERSION_REGS` by a `PerCpu::is_dom0` byte (0 or 1),
/// 32 bytes a row.
const _: () = assert!(core::mem::size_of::<[u64; 4]>() == 32);
/// The entry finds a CPU's `PerCpu` by shifting its slot (`TPIDR_EL2`, the
/// CPU index + 1, unmasked: every CPU that runs guests has one of the
/// slots), and reads `is_dom0` at its start.
const _: () = assert!(super::MAX_CPUS < super::run::DOM0_SLOTS);
const PER_CPU_SHIFT: u32 = core::mem::size_of::<super::run::PerCpu>().trailing_zeros();
const _: () = assert!(core::mem::size_of::<super::run::PerCpu>().is_power_of_two());
const _: () = assert!(core::mem::offset_of!(super::run::PerCpu, is_dom0) == 0);
/// The lower-EL entries save the guest's registers at `GuestRegs` offsets
/// (x0..x30 8 bytes apart from 0, PC/PSTATE after them; `guest.rs` checks
/// that `tern_enter_guest` reads the same), and find it through `regs`.
const GUEST_PC: usize = core::mem::offset_of!(GuestRegs, pc);
const _: () = assert!(core::mem::offset_of!(GuestRegs, x) == 0);
const _: () = assert!(GUEST_PC == 31 * 8);
const _: () = assert!(core::mem::offset_of!(GuestRegs, pstate) == GUEST_PC + 8);
const PER_CPU_REGS: usize = core::mem::offset_of!(super::run::PerCpu, regs);
/// What a lower-EL entry keeps on the EL2 stack: the guest's x0/x1 first,
/// then the address of its `GuestRegs` (16 bytes: SP stays aligned).
const LOWER_SLOT: usize = 16;
const _: () = assert!(FRAME_SIZE == 0x120);
const _: () = assert!(core::mem::offset_of!(TrapFrame, sp) == 0xf8);
const _: () = assert!(core::mem::offset_of!(TrapFrame, elr) == 0x100);
const _: () = assert!(core::mem::offset_of!(TrapFrame, esr) == 0x110);

impl TrapFrame {
    /// The exception class, by name (`None` for an EC `aarch64-cpu` does not know).
    pub fn exception_class(&self) -> Option<ESR_EL2::EC::Value> {
        LocalRegisterCopy::<u64, ESR_EL2::Register>::new(self.esr).read_as_enum(ESR_EL2::EC)
    }

    /// The syndrome's ISS field.
    pub fn iss(&self) -> u64 {
        LocalRegisterCopy::<u64, ESR_EL2::Register>::new(self.esr).read(ESR_EL2::ISS)
    }
}

/// Writes the full report: `EL2 exception: <EC name>`, ESR/ISS, ELR, FAR, SPSR,
/// x0..x30, SP. The caller adds the "halted" line.
pub struct Report<'a> {
    /// What kind of vector was taken (e.g. "synchronous, current EL").
    pub kind: &'static str,
    /// The saved state.
    pub frame: &'a TrapFrame,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = self.frame;
        let class = ec_name(frame.exception_class());
        writeln!(f, "EL2 exception: {class} ({})", self.kind)?;
        writeln!(f, "  ESR {:#018x} (ISS {:#x})", frame.esr, frame.iss())?;
        writeln!(f, "  ELR {:#018x}  FAR {:#018x}", frame.elr, frame.far)?;
        writeln!(f, "  SPSR {:#010x}  SP {:#018x}", frame.spsr, frame.sp)?;
        for (i, pair) in frame.x.chunks(2).enumerate() {
            let r = i * 2;
            match pair {
                [a, b] => writeln!(f, "  x{r:<2} {a:#018x}  x{:<2} {b:#018x}", r + 1)?,
                [a] => writeln!(f, "  x{r:<2} {a:#018x}")?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// An exception class by its name in `aarch64-cpu` (e.g. `DataAbortLowerEL`).
pub struct EcName(Option<ESR_EL2::EC::Value>);

/// Names `ec` for reports; `unknown EC` when the crate has no name for it.
pub fn ec_name(ec: Option<ESR_EL2::EC::Value>) -> EcName {
    EcName(ec)
}

impl fmt::Display for EcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ec) => write!(f, "{ec:?}"),
            None => f.write_str("unknown EC"),
        }
    }
}

/// Installs the vector table on this CPU.
pub fn install() {
    unsafe extern "C" {
        // Defined in the assembly below; only its address is taken.
        static el2_vectors: u8;
    }
    VBAR_EL2.set(&raw const el2_vectors as u64);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Reports an exception the hypervisor did not expect and halts this CPU.
fn unexpected(kind: &'static str, frame: &TrapFrame) -> ! {
    crate::logger::report(format_args!("{}", Report { kind, frame }));
    super::halt_this_cpu()
}

extern "C" fn current_sync(frame: &mut TrapFrame) {
    unexpected("synchronous, current EL", frame)
}
extern "C" fn current_irq(frame: &mut TrapFrame) {
    unexpected("IRQ, current EL", frame)
}
extern "C" fn current_fiq(frame: &mut TrapFrame) {
    unexpected("FIQ, current EL", frame)
}
extern "C" fn current_serror(frame: &mut TrapFrame) {
    unexpected("SError, current EL", frame)
}
extern "C" fn current_sp0(frame: &mut TrapFrame) {
    unexpected("exception with SP_EL0 at EL2", frame)
}
// The lower-EL handlers below get `frame` from `run::PerCpu::regs`: the
// general registers in the context of the vCPU on this CPU, valid and
// reached by nothing else while it is here (see `run::take_loaded`), or
// this CPU's spare (`run::NO_VCPU`).

/// Lower-EL synchronous exception, first look: `frame` holds only the
/// caller-saved registers (x0..x18, x29, x30); ELR/SPSR are still in their
/// registers. Answers discovery calls (the null hypercall among them) as a
/// leaf function, so that path saves nothing more. Returns 0 to resume the
/// guest at once, anything else to go on to [`lower_sync_locked`].
extern "C" fn lower_sync_fast(frame: &mut GuestRegs) -> u64 {
    super::trap::lower_sync_discovery(frame)
}
/// Lower-EL synchronous exception: everything but discovery calls. `frame`
/// as for [`lower_sync_fast`], plus x19..x28. Returns 0 to resume the guest
/// from `frame`, anything else is the address of the general registers
/// of the vCPU to enter (a switch; see `run::take_loaded`).
extern "C" fn lower_sync_locked(frame: &mut GuestRegs) -> u64 {
    super::trap::lower_sync(frame)
}
/// Lower-EL IRQ, first half: the caller-saved registers are saved (as for
/// [`lower_sync_fast`]). Returns 0 to resume the guest at once.
extern "C" fn lower_irq() -> u64 {
    super::trap::lower_irq()
}
/// Lower-EL IRQ, second half: every register is saved (PC/PSTATE
/// included), the vCPU may be switched. Returns the general registers of
/// the vCPU to enter (see `run::take_loaded`), or null to resume the one
/// that trapped.
extern "C" fn lower_irq_slow() -> *const GuestRegs {
    super::trap::lower_irq_switch();
    super::run::take_loaded()
}
extern "C" fn lower_fiq(frame: &mut TrapFrame) {
    unexpected("FIQ, lower EL", frame)
}
extern "C" fn lower_serror(frame: &mut TrapFrame) {
    unexpected("SError, lower EL", frame)
}
extern "C" fn lower_aarch32(frame: &mut TrapFrame) {
    unexpected("exception from AArch32", frame)
}

global_asm!(
    r#"
/* One vector: reserve the frame, save x0/x1, load the handler, go common. */
.macro VECTOR handler
    .balign 0x80
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #0x00]
    adrp    x1, \handler
    add     x1, x1, :lo12:\handler
    b       el2_trap_common
.endm

/* Lower-EL entries, the guest's x0/x1 on the EL2 stack: x0 = this CPU's
   `PerCpu::regs`, the current vCPU's GuestRegs (x1 clobbered). The slot
   (TPIDR_EL2) needs no mask: a CPU that runs guests has its index set
   (below MAX_CPUS + 1 <= the number of slots). */
.macro VCPU_REGS
    mrs     x1, tpidr_el2
    adrp    x0, {per_cpu}
    add     x0, x0, x1, lsl #{per_cpu_shift}
    ldr     x0, [x0, :lo12:{per_cpu} + {per_cpu_regs}]
.endm

/* x0 = GuestRegs: x2/x3, then the guest's x0/x1 from the stack, into it;
   the stack slot keeps its address for the return (el2_lower_return). */
.macro SAVE_X0_X3
    stp     x2, x3, [x0, #0x10]
    ldp     x2, x3, [sp]
    stp     x2, x3, [x0, #0x00]
    str     x0, [sp]
.endm

/* The rest of the caller-saved registers into GuestRegs at x0 (the short
   paths: x19..x28 stay live, the Rust handler preserves them). */
.macro SAVE_X4_X18_FP_LR
    stp     x4, x5, [x0, #0x20]
    stp     x6, x7, [x0, #0x30]
    stp     x8, x9, [x0, #0x40]
    stp     x10, x11, [x0, #0x50]
    stp     x12, x13, [x0, #0x60]
    stp     x14, x15, [x0, #0x70]
    stp     x16, x17, [x0, #0x80]
    str     x18, [x0, #0x90]
    stp     x29, x30, [x0, #0xe8]
.endm

/* x19..x28 into GuestRegs at x0, once a vCPU switch may need them. */
.macro SAVE_X19_X28
    stp     x19, x20, [x0, #0x98]
    stp     x21, x22, [x0, #0xa8]
    stp     x23, x24, [x0, #0xb8]
    stp     x25, x26, [x0, #0xc8]
    stp     x27, x28, [x0, #0xd8]
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global el2_vectors
el2_vectors:
    /* Current EL with SP_EL0 (never used by hyp). */
    VECTOR {current_sp0}
    VECTOR {current_sp0}
    VECTOR {current_sp0}
    VECTOR {current_sp0}
    /* Current EL with SP_ELx. */
    VECTOR {current_sync}
    VECTOR {current_irq}
    VECTOR {current_fiq}
    VECTOR {current_serror}
    /* Lower EL, AArch64. Synchronous exceptions (hypercalls above all) take a
       shorter path that saves only what the Rust handler may clobber. */
    .balign 0x80
    stp     x0, x1, [sp, #-{lower_slot}]!
    b       el2_lower_sync
    /* IRQs likewise: most (a guest timer, an event) need no vCPU switch.
       The first half whole in the entry (22 of its 32 slots): no branch. */
    .balign 0x80
    stp     x0, x1, [sp, #-{lower_slot}]!
    VCPU_REGS
    SAVE_X0_X3
    SAVE_X4_X18_FP_LR
    bl      {lower_irq}
    cbz     x0, el2_lower_return
    b       el2_lower_irq_slow
    VECTOR {lower_fiq}
    VECTOR {lower_serror}
    /* Lower EL, AArch32 (guests are AArch64 only). */
    VECTOR {lower_aarch32}
    VECTOR {lower_aarch32}
    VECTOR {lower_aarch32}
    VECTOR {lower_aarch32}

/* Lower-EL sync, x0/x1 saved. The null hypercall (`version`) first, with
   x0/x1 as the only scratch: its results are constants picked by whether the
   caller is dom0 (run::VERSION_REGS, built by a const fn), and it may change
   only x0..x3 (specs/hypercalls.md), so nothing else is saved. */
el2_lower_sync:
    /* The id first: a miss (every other call, every other trap) then costs
       three instructions and the reload of x1. */
    movz    w1, #{version_hi}, lsl #16
    cmp     w0, w1
    b.ne    1f
    mrs     x1, esr_el2
    ubfx    x1, x1, #{ec_shift}, #{ec_width}
    cmp     x1, #{ec_hvc64}
    b.ne    1f
    mrs     x0, tpidr_el2
    adrp    x1, {per_cpu}
    add     x1, x1, x0, lsl #{per_cpu_shift}
    ldrb    w0, [x1, :lo12:{per_cpu}]
    adrp    x1, {version_regs}
    add     x1, x1, :lo12:{version_regs}
    add     x1, x1, x0, lsl #5
    ldp     x2, x3, [x1, #16]
    ldp     x0, x1, [x1]
    add     sp, sp, #{lower_slot}
    eret
    /* Anything else: the handler follows the AAPCS64, so it preserves
       x19..x28 itself: they stay live in their registers unless a vCPU switch
       needs them in the context (slow path). */
1:  VCPU_REGS
    SAVE_X0_X3
    /* A call of the ABI served here (any call number, SVE hint or not) is no
       discovery call: it skips the discovery look (flags stay to the b.eq).
       x2 is the guest's x0. */
    and     w2, w2, #{no_call}
    and     w2, w2, #{no_hint}
    movz    w3, #{abi_hi}, lsl #16
    movk    w3, #{abi_lo}
    cmp     w2, w3
    SAVE_X4_X18_FP_LR
    /* ELR_EL2/SPSR_EL2 stay in their registers: with interrupts masked nothing
       at EL2 overwrites them. The locked handler copies them into the
       context (a switch needs them there), and writes them back before
       returning 0. */
    b.eq    3f
    bl      {lower_sync_fast}
    cbz     x0, el2_lower_return
    ldr     x0, [sp]
    /* Not a discovery call: the hypervisor state is needed, and x19..x28
       saved too, so that a vCPU switch can be done at once. A resume leaves
       x19..x28 as they are (the handler preserves them). */
3:  SAVE_X19_X28
    bl      {lower_sync_locked}
    cbnz    x0, el2_enter_regs
    /* Resume the vCPU that trapped: what the entry saved (the results of a
       call among them) from its context. */
el2_lower_return:
    ldr     x1, [sp]
    ldp     x2, x3, [x1, #0x10]
    ldp     x4, x5, [x1, #0x20]
    ldp     x6, x7, [x1, #0x30]
    ldp     x8, x9, [x1, #0x40]
    ldp     x10, x11, [x1, #0x50]
    ldp     x12, x13, [x1, #0x60]
    ldp     x14, x15, [x1, #0x70]
    ldp     x16, x17, [x1, #0x80]
    ldr     x18, [x1, #0x90]
    ldp     x29, x30, [x1, #0xe8]
    ldp     x0, x1, [x1, #0x00]
    add     sp, sp, #{lower_slot}
    eret
    /* x0: the registers of the vCPU to enter, straight from its context
       (the stack slot is dropped: the stack is empty again at the guest's
       next trap). */
el2_enter_regs:
    add     sp, sp, #{lower_slot}
    b       tern_enter_guest

/* Lower-EL IRQ, second half (the first is in the vector): as for
   el2_lower_sync, but this also saves ELR/SPSR itself (the first half leaves
   them in their registers). It returns the same way: a resume reloads
   neither x19..x28 (the handler preserves them) nor ELR/SPSR (nothing at
   EL2 overwrote them, interrupts masked). */
el2_lower_irq_slow:
    ldr     x0, [sp]
    SAVE_X19_X28
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x0, #{guest_pc}]
    bl      {lower_irq_slow}
    cbnz    x0, el2_enter_regs
    b       el2_lower_return

/* x0/x1 saved, x1 = handler. Save the rest, call handler(&mut frame), restore. */
el2_trap_common:
    stp     x2, x3, [sp, #0x10]
    stp     x4, x5, [sp, #0x20]
    stp     x6, x7, [sp, #0x30]
    stp     x8, x9, [sp, #0x40]
    stp     x10, x11, [sp, #0x50]
    stp     x12, x13, [sp, #0x60]
    stp     x14, x15, [sp, #0x70]
    stp     x16, x17, [sp, #0x80]
    stp     x18, x19, [sp, #0x90]
    stp     x20, x21, [sp, #0xa0]
    stp     x22, x23, [sp, #0xb0]
    stp     x24, x25, [sp, #0xc0]
    stp     x26, x27, [sp, #0xd0]
    stp     x28, x29, [sp, #0xe0]
    add     x2, sp, #{frame_size}
    stp     x30, x2, [sp, #0xf0]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [sp, #0x100]
    mrs     x2, esr_el2
    mrs     x3, far_el2
    stp     x2, x3, [sp, #0x110]
    mov     x0, sp
    blr     x1
    ldp     x2, x3, [sp, #0x100]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x2, x3, [sp, #0x10]
    ldp     x4, x5, [sp, #0x20]
    ldp     x6, x7, [sp, #0x30]
    ldp     x8, x9, [sp, #0x40]
    ldp     x10, x11, [sp, #0x50]
    ldp     x12, x13, [sp, #0x60]
    ldp     x14, x15, [sp, #0x70]
    ldp     x16, x17, [sp, #0x80]
    ldp     x18, x19, [sp, #0x90]
    ldp     x20, x21, [sp, #0xa0]
    ldp     x22, x23, [sp, #0xb0]
    ldp     x24, x25, [sp, #0xc0]
    ldp     x26, x27, [sp, #0xd0]
    ldp     x28, x29, [sp, #0xe0]
    ldr     x30, [sp, #0xf0]
    ldp     x0, x1, [sp, #0x00]
    add     sp, sp, #{frame_size}
    eret
"#,
    frame_size = const FRAME_SIZE,
    lower_slot = const LOWER_SLOT,
    guest_pc = const GUEST_PC,
    per_cpu_regs = const PER_CPU_REGS,
    ec_shift = const ESR_EL2::EC.shift,
    ec_width = const ESR_EL2::EC.mask.count_ones(),
    ec_hvc64 = const super::run::EC_HVC64,
    version_hi = const VERSION_HI,
    no_call = const !(tern_abi::call::CALL_MASK as u32),
    no_hint = const !tern_abi::call::SVE_HINT,
    abi_hi = const ABI_CALLS >> 16,
    abi_lo = const ABI_CALLS & 0xffff,
    per_cpu_shift = const PER_CPU_SHIFT,
    per_cpu = sym super::run::PER_CPU,
    version_regs = sym super::run::VERSION_REGS,
    current_sp0 = sym current_sp0,
    current_sync = sym current_sync,
    current_irq = sym current_irq,
    current_fiq = sym current_fiq,
    current_serror = sym current_serror,
    lower_sync_fast = sym lower_sync_fast,
    lower_sync_locked = sym lower_sync_locked,
    lower_irq = sym lower_irq,
    lower_irq_slow = sym lower_irq_slow,
    lower_fiq = sym lower_fiq,
    lower_serror = sym lower_serror,
    lower_aarch32 = sym lower_aarch32,
);
