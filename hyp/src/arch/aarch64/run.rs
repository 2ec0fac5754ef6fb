//! Running domains on this CPU: the hypervisor state behind one lock, the
//! trap handler for guests, and the switch between vCPUs.
//!
//! Trap path: the vector saves the guest's GPRs straight into its vCPU's
//! context ([`PerCpu::regs`]); [`guest_sync`] decodes the syndrome, hands
//! hypercalls to the safe dispatcher and turns every guest fault into that
//! guest's crash; if the vCPU cannot go on, only its EL1 (and FP/SIMD)
//! registers are saved into its context, and the vector's exception return
//! enters the next vCPU straight from that one's context (`take_loaded`).
//! Interrupts taken from a guest are handled in `run/irq.rs`.

use alloc::boxed::Box;

use aarch64_cpu::registers::{ELR_EL2, ESR_EL2, Readable, SPSR_EL2, Writeable};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use tock_registers::LocalRegisterCopy;

use spin::Mutex;
use tern_abi::domctl::DomainId;
use tern_abi::smccc;

use super::dom0_boot::{self, UartConsole};
use super::physmem::IdentityMem;
use super::{guest, timer};
use crate::addr::PhysRange;
use crate::drivers::gic;
use crate::frames::FrameAllocator;
use crate::hypercall::{Next, discovery};
use crate::hypervisor::Hypervisor;
use crate::percpu::CpuIndex;
use crate::physmem::PhysMem;
use crate::platform::IntId;
use crate::sched::{NEVER, VcpuRef};
use crate::vcpu::GuestRegs;

mod fault;
mod idle;
mod irq;
mod percpu;

use fault::{crash, dom0_stopped, unexpected_guest, vm_control_write};
use idle::{arm_timer, go_idle, rearm_for_guest_timers, wait_for_work};
use irq::{after_events, drain_irqs, kick, kick_pending, timer_irq};
pub use irq::{guest_irq, guest_irq_switch};
pub(super) use percpu::{PER_CPU, PerCpu, take_loaded};
use percpu::{init_regs, no_vcpu, this_slot};

/// The hypervisor as it runs on the board.
type Hv = Hypervisor<'static, IdentityMem, FrameAllocator>;

/// Everything guests can change, under one lock (taken only at EL2 with
/// interrupts masked, so it never deadlocks against itself on one CPU).
struct State {
    hv: Hv,
    /// The vCPU each physical CPU runs.
    current: [Option<VcpuRef>; super::MAX_CPUS],
    /// CPUs waiting for work in WFI.
    idle_mask: u64,
    /// The deadline each CPU's EL2 timer is armed for (`NEVER`: stopped).
    armed: [u64; super::MAX_CPUS],
    /// The scheduler's deadline for each CPU's current vCPU (its last
    /// `Decision::run_until`): before it, an interrupt that changed nothing
    /// for the scheduler needs no new decision.
    run_until: [u64; super::MAX_CPUS],
}

/// Boxed so that the empty static is all zeroes and lives in `.bss` (an
/// unboxed `None` is a non-zero niche: 1.9 KiB of `.data` in the image).
static STATE: Mutex<Option<Box<State>>> = Mutex::new(None);
/// Number of [`PER_CPU`] slots.
pub(super) const DOM0_SLOTS: usize = (super::MAX_CPUS + 1).next_power_of_two();
/// The result registers of `version`, indexed by whether the caller is dom0
/// ([`PerCpu::is_dom0`]): the exception entry answers the null hypercall
/// from here without calling Rust (`vectors.rs`).
pub(super) static VERSION_REGS: [[u64; 4]; 2] = [
    crate::hypercall::version_regs(false),
    crate::hypercall::version_regs(true),
];
/// `ESR_EL2.EC` of an HVC from AArch64 state (Arm ARM D23.2, ESR_EL2).
pub(super) const EC_HVC64: u64 = ESR_EL2::EC::Value::HVC64 as u64;
/// `ESR_EL2.EC` of a trapped FP/SIMD access (`CPTR_EL2.TFP`, see `fp.rs`).
const EC_FP: u64 = ESR_EL2::EC::Value::TrappedFP as u64;
/// The EL2 timer's INTID, readable without `STATE` (idle CPUs check their
/// interrupts without taking the lock another CPU may hold).
static TIMER_IRQ: AtomicU32 = AtomicU32::new(u32::MAX);
/// The console UART's receive interrupt (`u32::MAX`: none).
static CONSOLE_IRQ: AtomicU32 = AtomicU32::new(u32::MAX);
/// Set once `STATE` holds the hypervisor: secondary CPUs wait for it.
static READY: AtomicBool = AtomicBool::new(false);

/// The SGI that asks a CPU to reschedule (an IPI). SGIs 0..7 are left to the
/// GIC self-test and future uses.
const RESCHED_SGI: IntId = IntId::sgi(8);
/// Default time slice (`sched.slice_us=` on the command line changes it).
const DEFAULT_SLICE_US: u32 = crate::sched::params::DEFAULT_SLICE_US;
static MEM: IdentityMem = IdentityMem;

/// Size of an AArch64 instruction: how far `ELR_EL2` moves to skip one.
const INSN_BYTES: u64 = 4;
/// `MPIDR_EL1` bit 31 is RES1 (Arm ARM D13.2.86).
const MPIDR_RES1: u64 = 1 << 31;

/// What dom0 needs from the boot: free memory, the initrd, the boot arguments.
pub struct Dom0Boot<'a> {
    /// Free RAM for the frame allocator.
    pub free: &'a [PhysRange],
    /// The initrd (boot modules), if any.
    pub initrd: Option<PhysRange>,
    /// The hypervisor's boot arguments.
    pub bootargs: &'a str,
    /// The EL2 physical timer's interrupt (from the device tree).
    pub timer_irq: IntId,
    /// Devices given to dom0.
    pub dom0_devices: &'a [crate::platform::Dom0Device],
    /// The console UART's receive interrupt, if it has one (typed input
    /// raises `Virq::Console`, see `crate::console_in`).
    pub console_irq: Option<IntId>,
}

/// Builds dom0 from the `dom0` boot module and enters it on this CPU.
pub fn start(boot: &Dom0Boot<'_>, ticks_per_s: u64) -> ! {
    let mut frames = FrameAllocator::new();
    for r in boot.free {
        if let Err(e) = frames.add_region(*r) {
            log::error!("frame allocator refused {r}: {e:?}");
        }
    }
    log::info!("frames: {} free pages for domains", frames.free_pages());
    let modules = dom0_boot::boot_modules(boot.initrd);
    for m in &modules {
        log::info!("module: {} ({} bytes)", m.name, m.bytes.len());
    }
    let console: &'static mut UartConsole = Box::leak(Box::new(UartConsole));
    let mut hv = Hypervisor::new(&MEM, frames, modules, console, ticks_per_s);
    hv.clock = timer::now;
    // CPUs come online in index order, so the online ones are 0..n.
    let cpus = (0..super::MAX_CPUS)
        .filter(|&i| crate::percpu::get(crate::percpu::CpuIndex(i)).is_some_and(|c| c.is_online()))
        .count();
    let args = crate::bootargs::BootArgs::parse(boot.bootargs);
    // Before READY: every CPU reads it in guest::init_cpu.
    guest::allow_guest_pmu(args.guest_pmu);
    let slice_us = args
        .slice_us
        .and_then(|us| u32::try_from(us).ok())
        .unwrap_or(DEFAULT_SLICE_US);
    if let Err(e) = hv.configure_scheduler(cpus, slice_us) {
        log::error!("sched: {slice_us} us slice refused ({e:?}); using the default");
        let _ = hv.configure_scheduler(cpus, DEFAULT_SLICE_US);
    }
    if let Err(e) = dom0_boot::create_dom0(&mut hv, boot.bootargs, boot.dom0_devices) {
        log::error!("dom0: {e}");
        super::halt_this_cpu()
    }
    *STATE.lock() = Some(Box::new(State {
        hv,
        current: [None; super::MAX_CPUS],
        idle_mask: 0,
        armed: [NEVER; super::MAX_CPUS],
        run_until: [NEVER; super::MAX_CPUS],
    }));
    TIMER_IRQ.store(boot.timer_irq.get(), Ordering::Relaxed);
    if let Some(irq) = boot.console_irq
        && crate::console_in::registered_source().is_some()
    {
        CONSOLE_IRQ.store(irq.get(), Ordering::Relaxed);
        // SPIs are routed to CPU 0, like dom0's device interrupts.
        if let Err(e) = gic::enable_irq(irq, CpuIndex(0)) {
            log::error!("console: cannot enable {irq:?}: {e:?}");
        }
    }
    log::info!("sched: credit, {slice_us} us time slice, {cpus} CPUs");
    READY.store(true, Ordering::Release);
    run_cpu(this_cpu())
}

/// A secondary CPU's life after bring-up: wait for the hypervisor, then run vCPUs.
pub fn secondary(cpu: usize) -> ! {
    while !READY.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    run_cpu(cpu)
}

/// Prepares this CPU for guests and runs vCPUs on it for ever.
fn run_cpu(cpu: usize) -> ! {
    init_regs();
    guest::init_cpu(cpu + 1);
    for irq in [timer_irq(), RESCHED_SGI] {
        if let Err(e) = gic::enable_irq(irq, CpuIndex(cpu)) {
            log::error!("cpu{cpu}: cannot enable {irq:?}: {e:?}");
        }
    }
    wait_for_work(cpu, false);
    let regs = take_loaded();
    assert!(!regs.is_null(), "wait_for_work loads a vCPU");
    // SAFETY: `take_loaded`'s contract: a vCPU was just loaded here, and its
    // context stays in place while it is on this CPU.
    guest::enter(unsafe { &*regs })
}

fn this_cpu() -> usize {
    super::cpu_index().unwrap_or(0)
}

/// Puts vCPU `(dom, v)` on this CPU: its state into the CPU's registers, its
/// virtual time and upcall line, and arms the timer for `run_until`; its
/// general registers become the ones the exception entry saves into
/// ([`PerCpu::regs`]). Returns them (never null), which the caller
/// enters it from (see [`take_loaded`], also for why they stay valid), or
/// leaves for [`take_loaded`] with [`load_vcpu_deferred`].
#[inline(never)]
fn load_vcpu(st: &mut State, cpu: usize, vcpu: VcpuRef, run_until: u64) -> *const GuestRegs {
    load_vcpu_inline(st, cpu, vcpu, run_until)
}

/// [`load_vcpu`], inline in [`hand_over`] (the switch of an event round
/// trip), which then needs no call and no second save of registers.
#[inline(always)]
fn load_vcpu_inline(
    st: &mut State,
    cpu: usize,
    (dom, v): VcpuRef,
    run_until: u64,
) -> *const GuestRegs {
    st.current[cpu] = Some((dom, v));
    st.hv.events.load_slot(cpu, dom, v);
    let this = &PER_CPU[cpu + 1];
    this.is_dom0.store(dom == DomainId::DOM0, Ordering::Relaxed);
    let Ok(d) = st.hv.domains.get_mut(dom) else {
        scheduled_without_domain((dom, v))
    };
    let vttbr = guest::vttbr(d.vmid().0, d.stage2.root().0);
    let vc = &mut d.vcpus[v];
    vc.on_cpu = Some(cpu);
    guest::load(
        &mut vc.ctx,
        &mut vc.fp_hold,
        cpu + 1,
        vttbr,
        MPIDR_RES1 | v as u64,
    );
    guest::set_virtual_time_offset(d.counter_offset);
    let word = vc.upcall_word.map_or(0, |pa| pa.0);
    let regs = &raw mut vc.ctx.gp;
    let vcpu = core::ptr::from_mut(vc);
    this.regs.store(regs, Ordering::Relaxed);
    this.vcpu.store(vcpu, Ordering::Relaxed);
    this.upcall_word.store(word, Ordering::Relaxed);
    guest::set_upcall(upcall_raised(word));
    arm_timer(st, cpu, run_until);
    regs
}

/// The scheduler picked a vCPU whose domain is not in the domain table.
/// Both change together under `STATE` (a domain leaves the scheduler
/// before the table, and joins it after), so this is a hypervisor bug. It
/// stops here: going on would leave the callers nothing to enter but the
/// trap frame of the vCPU just taken off this CPU, which would run again
/// unloaded (its FP slot empty, the scheduler thinking it elsewhere).
#[cold]
fn scheduled_without_domain((dom, v): VcpuRef) -> ! {
    panic!(
        "sched: picked vCPU {v} of domain {}, which the domain table does not hold",
        dom.0
    )
}

/// [`load_vcpu`] for a path that enters the vCPU after returning through
/// callers that know nothing of it: its registers wait for [`take_loaded`].
fn load_vcpu_deferred(st: &mut State, cpu: usize, vcpu: VcpuRef, run_until: u64) {
    load_vcpu(st, cpu, vcpu, run_until);
    PER_CPU[cpu + 1].switched.store(true, Ordering::Relaxed);
}

/// Raises or lowers the running vCPU's virtual IRQ (the event upcall) to
/// match its `upcall_pending` flag in the event page.
/// The word comes from this CPU's [`PerCpu::upcall_word`], looked up only while
/// that has none (the vCPU may have registered its event page since it was
/// loaded; a page, once registered, stays where it is).
fn update_upcall(st: &State, (dom, v): VcpuRef) {
    let slot = this_slot();
    let mut word = PER_CPU[slot].upcall_word.load(Ordering::Relaxed);
    if word == 0 {
        word = st.hv.events.upcall_word(dom, v).map_or(0, |pa| pa.0);
        PER_CPU[slot].upcall_word.store(word, Ordering::Relaxed);
    }
    guest::set_upcall(upcall_raised(word));
}

/// Whether the `upcall_pending` word at physical address `word` (0: none)
/// is set.
fn upcall_raised(word: u64) -> bool {
    word != 0 && MEM.load_u64(crate::addr::PhysAddr(word)) != 0
}

/// Takes this CPU's vCPU off it (its general registers are in its context
/// already). Answers whether that vCPU could run on (for the scheduler,
/// from the same lookup).
/// The CPU's bookkeeping of it (`current`, [`PER_CPU`], its events slot)
/// stays until, under the same lock, [`load_vcpu`] overwrites it or
/// [`go_idle`] drops it with [`forget_vcpu`]: nothing reads it in between.
fn unload_vcpu(st: &mut State, cpu: usize) -> bool {
    let Some((dom, v)) = st.current[cpu] else {
        return false;
    };
    match st.hv.domains.get_mut(dom) {
        Ok(d) => {
            let vc = &mut d.vcpus[v];
            guest::save(&mut vc.ctx.el1, &mut vc.ctx.fp, &mut vc.fp_hold, cpu + 1);
            vc.on_cpu = None;
            d.vcpu_runnable(v)
        }
        Err(_) => false,
    }
}

/// This CPU runs no vCPU any more: drops what it kept of the last one.
fn forget_vcpu(st: &mut State, cpu: usize) {
    if st.current[cpu].take().is_none() {
        return;
    }
    st.hv.events.unload_slot(cpu);
    let this = &PER_CPU[cpu + 1];
    this.is_dom0.store(false, Ordering::Relaxed);
    this.upcall_word.store(0, Ordering::Relaxed);
    this.vcpu.store(core::ptr::null_mut(), Ordering::Relaxed);
    this.regs.store(no_vcpu(cpu + 1), Ordering::Relaxed);
}

/// A synchronous exception from a guest, first look, before anything else is
/// saved: answers discovery calls, which read only constants and whether the
/// caller is dom0 (the null hypercall `version` above all). A leaf function
/// that needs no registers beyond those the vector saved. Returns 0 when it
/// answered, else non-zero for [`guest_sync`].
#[inline(always)]
pub fn guest_discovery(frame: &mut GuestRegs) -> u64 {
    let esr = LocalRegisterCopy::<u64, ESR_EL2::Register>::new(ESR_EL2.get());
    let ec = esr.read(ESR_EL2::EC);
    if ec != EC_HVC64 {
        // The vCPU's first FP/SIMD access since it was put on this CPU.
        return u64::from(!(ec == EC_FP && super::fp::trap(this_slot())));
    }
    let id = frame.x[0] as u32;
    // `version` (the null hypercall) is answered by `discovery` first; any
    // other call of the ABI this hypervisor serves is not a discovery call.
    if id != tern_abi::call::VERSION
        && tern_abi::call::decode(id).is_some_and(|(major, _)| major == tern_abi::Call::MAJOR)
    {
        return 1;
    }
    let slot = aarch64_cpu::registers::TPIDR_EL2.get() as usize;
    let dom0 = PER_CPU[slot % DOM0_SLOTS].is_dom0.load(Ordering::Relaxed);
    // Neither discovery nor of any ABI this hypervisor serves: no state to
    // look at either.
    let out = discovery(id, frame.x[1], dom0).unwrap_or([
        tern_abi::Error::NotImplemented.to_reg(),
        0,
        0,
        0,
    ]);
    frame.x[..4].copy_from_slice(&out);
    0
}

/// A synchronous exception from a guest that is not a discovery call.
/// `frame` is the vCPU's general registers in its context, every one saved
/// (the vector saved x19..x28 too, so that a switch needs no second pass),
/// PC and PSTATE not yet; returns 0 to resume the guest (`ELR_EL2` and
/// `SPSR_EL2` as the frame has them, the frame's registers as they are),
/// else the address of the general registers of the vCPU to enter
/// ([`take_loaded`]), after this one was taken off the CPU.
pub fn guest_sync(frame: &mut GuestRegs) -> u64 {
    let esr = ESR_EL2.get();
    let ec = LocalRegisterCopy::<u64, ESR_EL2::Register>::new(esr).read(ESR_EL2::EC);
    let hvc = ec == EC_HVC64;
    if hvc {
        if upcall_done_unlocked(frame) {
            return 0;
        }
    } else if ec == EC_FP && super::fp::trap(this_slot()) {
        // The lazy FP/SIMD trap, which the first look handles, can come
        // here too: the vector skips the first look when x0 holds an id of
        // the ABI served here, whatever the exception (it tests x0 before
        // the syndrome, to keep hypercalls short), and code may well
        // touch FP/SIMD with such a value left in x0. Before this, such a
        // trap was taken for the guest's fault and crashed it.
        return 0;
    }
    // A CPU without an index yet (`TPIDR_EL2` 0) runs no vCPU: its index
    // wraps to one no CPU has, which `guest_sync_inner` reports.
    let cpu = (aarch64_cpu::registers::TPIDR_EL2.get() as usize).wrapping_sub(1);
    guest_sync_locked(frame, esr, cpu, hvc)
}

/// `evtchn_op upcall_done` (exactly that id and sub-op) when this CPU knows
/// its vCPU's `upcall_pending` word: lowers or keeps the upcall line, as the
/// locked path would, without `STATE`. Nothing else is due: every locked
/// trap leaves no deferred work behind, and a change another CPU makes to
/// this vCPU's events or domain comes with a kick (an IPI taken right after
/// the return). Like the discovery calls, it is not counted in the domain's
/// `hypercalls`. Returns false, changing nothing, for anything else.
fn upcall_done_unlocked(frame: &mut GuestRegs) -> bool {
    if frame.x[0] as u32 != tern_abi::call::EVTCHN_OP
        || frame.x[1] != u64::from(tern_abi::evtchn::Op::UpcallDone.raw())
    {
        return false;
    }
    let word = PER_CPU[this_slot()].upcall_word.load(Ordering::Relaxed);
    if word == 0 {
        return false;
    }
    guest::set_upcall(MEM.load_u64(crate::addr::PhysAddr(word)) != 0);
    // No results: x0 = 0 (success), x1..x3 = 0 (specs/hypercalls.md).
    frame.x[..4].fill(0);
    true
}

/// Everything but discovery calls: under the hypervisor lock.
/// PC and PSTATE go into the frame here, not in the vector: a switch needs
/// them in the context, and `upcall_done_unlocked` does not.
fn guest_sync_locked(frame: &mut GuestRegs, esr: u64, cpu: usize, hvc: bool) -> u64 {
    frame.pc = ELR_EL2.get();
    frame.pstate = SPSR_EL2.get();
    let regs = guest_sync_inner(frame, esr, cpu, hvc);
    if regs.is_null() {
        // Resuming from the frame (see vectors.rs).
        ELR_EL2.set(frame.pc);
        SPSR_EL2.set(frame.pstate);
    }
    regs as u64
}

fn guest_sync_inner(frame: &mut GuestRegs, esr: u64, cpu: usize, hvc: bool) -> *const GuestRegs {
    let mut lock = STATE.lock();
    // `&mut State` once, not the `Box` in the lock: the compiler would
    // reload the box's address from the lock after every call.
    let Some(st) = lock.as_deref_mut() else {
        drop(lock);
        unexpected_guest(frame, esr)
    };
    let Some(&Some((dom, v))) = st.current.get(cpu) else {
        drop(lock);
        unexpected_guest(frame, esr)
    };
    let next = if hvc {
        st.hv.guest_hypercall(dom, v, &mut frame.x)
    } else {
        let syndrome = LocalRegisterCopy::<u64, ESR_EL2::Register>::new(esr);
        match syndrome.read_as_enum(ESR_EL2::EC) {
            Some(ESR_EL2::EC::Value::SMC64) => {
                // specs/hypercalls.md: a trapped SMC returns NOT_SUPPORTED and
                // execution continues after it (the preferred return address of
                // a trapped SMC is the SMC itself, Arm ARM D1.10.4).
                frame.x[..4].copy_from_slice(&[smccc::NOT_SUPPORTED as u64, 0, 0, 0]);
                frame.pc += INSN_BYTES;
                Next::Resume
            }
            Some(ESR_EL2::EC::Value::TrappedWFIorWFE) => {
                frame.pc += INSN_BYTES;
                Next::Yield
            }
            // A write to a virtual-memory control (`HCR_EL2.TVM`), done on
            // the guest's behalf; anything else trapped this way is its
            // fault.
            Some(ESR_EL2::EC::Value::TrappedMsrMrs)
                if vm_control_write(st, (dom, v), syndrome.read(ESR_EL2::ISS), &frame.x) =>
            {
                frame.pc += INSN_BYTES;
                Next::Resume
            }
            ec => {
                crash(st, dom, frame.pc, esr, ec);
                Next::Stop
            }
        }
    };
    if st.hv.domains.has_retired_vmids() {
        st.hv.domains.recycle_vmids(|v| guest::flush_vmid(v.0));
    }
    // Grant maps and unmaps changed live stage-2 tables: publish new entries,
    // drop stale ones, and only then free frames whose last mapping went.
    if st.hv.grants.work_pending() {
        if st.hv.grants.barrier_needed() {
            guest::stage2_barrier();
        }
        st.hv.complete_grant_flushes(|f| {
            guest::flush_stage2(f.vmid.0, f.range.map(|(ipa, n)| (ipa.0, n)));
        });
    }
    if !st.hv.pirq_requests.is_empty() {
        super::pirq::apply_requests(&mut st.hv.pirq_requests);
    }
    // Mostly nothing queued (a `block`): no call.
    if st.hv.events.has_notifies() {
        st.hv.apply_notifies();
    }
    kick_pending(st, cpu);
    if next == Next::Resume {
        update_upcall(st, (dom, v));
        rearm_for_guest_timers(st, cpu);
        return core::ptr::null();
    }
    // The vCPU cannot go on: switched under the same lock.
    let regs = switch(st, cpu, (dom, v), next);
    if !regs.is_null() {
        return regs;
    }
    drop(lock);
    wait_for_work(cpu, true);
    take_loaded()
}

/// Takes the current vCPU, `cur`, off this CPU and loads the next one;
/// returns that one's general registers, to enter it from (see
/// [`take_loaded`] for why they stay valid).
/// Returns null when nothing can run here: the CPU is then idle
/// ([`go_idle`]), and the caller waits for work with the lock released.
fn switch(st: &mut State, cpu: usize, cur: VcpuRef, next: Next) -> *const GuestRegs {
    // A `send_block` that handed this CPU to the vCPU it woke decided
    // already, and its vCPU blocked (it is not dom0 stopping).
    if st.hv.handed.is_some()
        && let Some((c, d)) = st.hv.handed.take()
        && c.0 == cpu
        && let Some(to) = d.next
    {
        let regs = hand_over(st, cpu, to, d.run_until);
        kick(st, cpu, d.kick.0);
        return regs;
    }
    let runnable = unload_vcpu(st, cpu);
    if next == Next::Stop && cur.0 == DomainId::DOM0 {
        dom0_stopped(st);
    }
    let d = st
        .hv
        .sched
        .schedule(CpuIndex(cpu), timer::now(), Some((cur, runnable)));
    kick(st, cpu, d.kick.0);
    match d.next {
        Some(r) => load_vcpu(st, cpu, r, d.run_until),
        None => {
            go_idle(st, cpu, d.run_until);
            core::ptr::null()
        }
    }
}

/// [`unload_vcpu`] of this CPU's vCPU (which blocked: nobody asks whether
/// it could run on) then [`load_vcpu`] of `to`, without the per-CPU
/// bookkeeping the second overwrites at once, and without looking the
/// first one's domain up ([`PerCpu::vcpu`]).
fn hand_over(st: &mut State, cpu: usize, to: VcpuRef, run_until: u64) -> *const GuestRegs {
    let from = PER_CPU[cpu + 1].vcpu.load(Ordering::Relaxed);
    if !from.is_null() {
        // The only other live reference into the domain table is the
        // trap's frame, this vCPU's general registers, which this neither
        // reads nor writes (it saves the rest of the context beside them).
        // SAFETY: this CPU's vCPU (`load_vcpu`), valid while it is here
        // (`take_loaded`); `STATE` is held.
        let vc = unsafe { &mut *from };
        guest::save(&mut vc.ctx.el1, &mut vc.ctx.fp, &mut vc.fp_hold, cpu + 1);
        vc.on_cpu = None;
    }
    load_vcpu_inline(st, cpu, to, run_until)
}
