//! The IRQ half of running domains: what an interrupt taken while a guest
//! ran does (the EL2 timer, a reschedule SGI from another CPU, dom0's device
//! interrupts), and kicking other CPUs. Split from `run.rs`, whose state and
//! vCPU switching it uses.

use core::sync::atomic::Ordering;

use super::super::{pirq, timer};
use super::{
    CONSOLE_IRQ, RESCHED_SGI, STATE, State, TIMER_IRQ, arm_timer, go_idle, load_vcpu_deferred,
    this_cpu, unload_vcpu, update_upcall, wait_for_work,
};
use crate::drivers::gic::{self, SgiTarget};
use crate::percpu::CpuIndex;
use crate::platform::IntId;
use tern_abi::evtchn::Virq;

/// What [`drain_irqs`] found.
#[derive(Clone, Copy, Default)]
pub(super) struct Irqs {
    /// The EL2 timer fired (a time slice or a guest timer ended).
    timer: bool,
    /// Another CPU asked this one to reschedule.
    resched: bool,
    /// A device interrupt of dom0 fired (its event is raised by
    /// `pirq::raise_fired`).
    pirq: bool,
    /// The console UART received input (masked now, see `crate::console_in`).
    console: bool,
}

impl Irqs {
    pub(super) fn any(self) -> bool {
        self.timer || self.resched || self.pirq || self.console
    }
}

/// Fires due guest timers and applies event notifications: blocked vCPUs
/// wake, and the CPUs that must reschedule are kicked. Returns whether this
/// CPU must reschedule (a vCPU woke that should preempt what it runs).
pub(super) fn after_events(st: &mut State, cpu: usize, now: u64, irqs: Irqs) -> bool {
    if irqs.pirq {
        pirq::raise_fired(&mut st.hv);
    }
    if irqs.console {
        let owner = st.hv.console_in.owner();
        let mem: &dyn crate::physmem::PhysMem = st.hv.mem;
        st.hv.events.raise_virq(mem, owner, Virq::Console);
    }
    if irqs.timer {
        st.hv.expire_timers(now);
    }
    st.hv.apply_notifies();
    kick_pending(st, cpu)
}

/// Interrupts the other CPUs that the last operations asked to reschedule or
/// to re-evaluate their upcall line; returns whether this CPU was asked to
/// reschedule.
pub(super) fn kick_pending(st: &mut State, cpu: usize) -> bool {
    let resched = st.hv.kick_mask;
    let upcall = st.hv.upcall_mask;
    // Mostly neither (a hypercall that woke nobody elsewhere): no stores.
    if resched | upcall == 0 {
        return false;
    }
    st.hv.kick_mask = 0;
    st.hv.upcall_mask = 0;
    kick(st, cpu, resched | upcall);
    resched & (1 << cpu) != 0
}

/// Acknowledges and ends the highest-priority pending interrupt of this CPU
/// (if any); says which kind it was. One per call: the usual entry has one,
/// and a second read of the acknowledge register would only find nothing.
/// Any other pending interrupt keeps the CPU's IRQ line up, so it is taken
/// again right after the return to the guest (or ends the next WFI).
pub(super) fn drain_irqs() -> Irqs {
    match gic::acknowledge() {
        // The usual one, inline: the EL2 timer.
        Some(irq) if irq.intid() == timer_irq() => {
            timer::cancel();
            gic::end_of_interrupt(irq);
            Irqs {
                timer: true,
                ..Irqs::default()
            }
        }
        Some(irq) => other_irq(irq),
        None => Irqs::default(),
    }
}

/// [`drain_irqs`] for an interrupt other than the EL2 timer.
#[inline(never)]
fn other_irq(irq: gic::Acked) -> Irqs {
    let id = irq.intid();
    let mut irqs = Irqs::default();
    if id == RESCHED_SGI {
        irqs.resched = true;
    } else if id.get() == CONSOLE_IRQ.load(Ordering::Relaxed) {
        crate::console_in::input_arrived();
        irqs.console = true;
    } else if pirq::take(irq) {
        // dom0's device interrupt: stays active until its `pirq_eoi`.
        irqs.pirq = true;
        return irqs;
    } else {
        log::warn!("unexpected IRQ {id:?}");
    }
    gic::end_of_interrupt(irq);
    irqs
}

/// Interrupts the CPUs in `mask` (but this one) so they reschedule. `u64::MAX`
/// means "whoever is idle": new work appeared.
#[inline]
pub(super) fn kick(st: &State, cpu: usize, mask: u64) {
    // Mostly there is nothing to kick (one CPU, or only this one): no call.
    if mask & !(1 << cpu) != 0 {
        send_kicks(st, cpu, mask);
    }
}

#[inline(never)]
fn send_kicks(st: &State, cpu: usize, mask: u64) {
    let online = (1u64 << st.hv.cpus_online) - 1;
    let mut targets = if mask == u64::MAX { st.idle_mask } else { mask } & !(1 << cpu) & online;
    while targets != 0 {
        let c = targets.trailing_zeros() as usize;
        targets &= targets - 1;
        if let Err(e) = gic::send_sgi(SgiTarget::Cpu(CpuIndex(c)), RESCHED_SGI) {
            log::error!("cpu{cpu}: cannot kick cpu{c}: {e:?}");
        }
    }
}

/// The EL2 timer's interrupt (set once, before any CPU runs vCPUs).
pub(super) fn timer_irq() -> IntId {
    IntId(TIMER_IRQ.load(Ordering::Relaxed))
}

/// An IRQ taken while a guest ran, first half (the vector saved the
/// caller-saved registers only, into the vCPU's context): the time slice or a guest timer ended, a
/// device interrupt of dom0 fired, or another CPU asks this one to
/// reschedule (new work, a paused or dying domain, an event for the running
/// vCPU). Events are delivered here; when that leaves the scheduler's
/// decision for this CPU as it was (a guest timer of the running vCPU, an
/// event for it, a wakeup not worth preempting it for, before its slice
/// ends), the vCPU simply goes on: returns 0. Otherwise returns non-zero and
/// [`guest_irq_switch`] decides again with every register saved.
///
/// The usual interrupt, the running vCPU's own guest timer before its slice
/// ends with nothing else due, takes [`own_timer`]; anything else, or
/// whatever that refuses, the generic [`guest_irq_events`].
pub fn guest_irq() -> u64 {
    // GICv3's system registers are asked for once, and the INTID compared
    // with the timer's (never special) before it is checked for "none".
    let sysreg = gic::sysreg_cpuif();
    let irq = if sysreg {
        gic::acknowledge_sysreg()
    } else {
        match gic::acknowledge() {
            Some(irq) => irq,
            None => return 0,
        }
    };
    if irq.intid() != timer_irq() {
        return other_irq_events(irq);
    }
    // The EL2 timer's line stays up until `own_timer` re-arms it (or it is
    // stopped below): the interrupt is ended only then, or the GIC would
    // make it pending again. Until then it is active: not taken again.
    if timer_fast() {
        // Returning 0: the vector ERETs to the guest at once.
        if sysreg {
            gic::end_of_interrupt_sysreg_before_eret(irq);
        } else {
            gic::end_of_interrupt(irq);
        }
        return 0;
    }
    timer::cancel();
    gic::end_of_interrupt(irq);
    guest_irq_events(Irqs {
        timer: true,
        ..Irqs::default()
    })
}

/// [`guest_irq`] for an interrupt other than the EL2 timer (or none: a
/// special INTID), out of line so that `guest_irq` reaches it by a tail call.
#[inline(never)]
fn other_irq_events(irq: gic::Acked) -> u64 {
    if irq.is_none() {
        return 0;
    }
    guest_irq_events(other_irq(irq))
}

/// [`own_timer`] under `STATE`: the whole usual timer interrupt, inline in
/// [`guest_irq`], which makes no call on that path (every other path leaves
/// by a tail call), so it saves no register. Contended, the lock is left to
/// the generic path (which waits for it).
#[inline(always)]
fn timer_fast() -> bool {
    if let Some(mut lock) = STATE.try_lock()
        && let Some(st) = lock.as_mut()
    {
        return own_timer(st, cpu_slot());
    }
    false
}

/// This CPU's index for `get` on per-CPU arrays: as `this_cpu`, but a CPU
/// without an index yet (TPIDR_EL2 still 0) wraps to `usize::MAX`, which no
/// array has, instead of taking CPU 0's entries: one instruction less on
/// the timer interrupt's path, and such a CPU runs no vCPU anyway.
#[inline(always)]
fn cpu_slot() -> usize {
    use aarch64_cpu::registers::{Readable, TPIDR_EL2};
    (TPIDR_EL2.get() as usize).wrapping_sub(1)
}

/// The timer interrupt of [`guest_irq`] when it ended the running vCPU's own
/// guest timer and nothing else: delivers `Virq::Timer` (see
/// `Events::fire_loaded_timer`, which refuses unchanged every case the
/// generic delivery handles differently), raises the upcall line to match,
/// and re-arms the EL2 timer for the next deadline (or stops it). Runs under
/// `STATE`, like every delivery: the ports, the page, the timer list and
/// this CPU's timer slot it reads cannot change under it, whichever CPU
/// changes them. Returns false, having changed nothing, when the case does
/// not apply; the EL2 timer is then still as the interrupt found it.
#[inline(always)]
fn own_timer(st: &mut State, cpu: usize) -> bool {
    // `get`, not indexing: no panic branch, so this stays a leaf. A CPU with
    // no vCPU loaded has no ready slot.
    let Some(&run_until) = st.run_until.get(cpu) else {
        return false;
    };
    // The acknowledge's DSB already holds the counter read after the
    // interrupt was taken.
    let now = timer::now_after_dsb();
    // Notifications queued by an earlier operation go the generic way.
    if now >= run_until || st.hv.events.has_notifies() {
        return false;
    }
    let Some(fired) = st.hv.events.fire_loaded_timer(&super::MEM, now, cpu) else {
        return false;
    };
    // Each branch a constant write of HCR_EL2, with no select.
    if fired.upcall {
        super::super::guest::set_upcall(true);
    } else {
        super::super::guest::set_upcall(false);
    }
    // As `arm_timer`, with the scheduler's deadline unchanged.
    let at = fired.next.min(run_until);
    if let Some(armed) = st.armed.get_mut(cpu) {
        *armed = at;
    }
    // A new compare value later than now drops the timer's line before the
    // caller ends the interrupt.
    if at != crate::sched::NEVER {
        timer::set_deadline(at);
    } else {
        core::hint::cold_path();
        timer::cancel();
    }
    true
}

/// The generic half of [`guest_irq`]: every event the interrupt raised is
/// delivered and its wake-ups applied; returns non-zero when the scheduler
/// must decide again.
/// Takes `STATE` itself: the interrupt is already acknowledged and ended
/// (for a timer, whatever `own_timer` refused it left unchanged).
#[inline(never)]
fn guest_irq_events(irqs: Irqs) -> u64 {
    let mut lock = STATE.lock();
    let Some(st) = lock.as_mut() else {
        return 0;
    };
    if !irqs.any() {
        return 0;
    }
    let cpu = this_cpu();
    let now = timer::now();
    let kicked = after_events(st, cpu, now, irqs);
    let Some(cur) = st.current[cpu] else {
        return 0;
    };
    // Whatever made the fast path refuse may have passed (a poll ended, a
    // port was bound, the vCPU is new on this CPU): the next timer
    // interrupt may take it again. Only after a timer interrupt: the
    // others (dom0's devices) would pay a lookup for a vCPU without a
    // timer port each time.
    if irqs.timer {
        st.hv.events.refresh_slot(cpu);
    }
    if irqs.resched || kicked || now >= st.run_until[cpu] {
        return 1;
    }
    update_upcall(st, cur);
    let run_until = st.run_until[cpu];
    arm_timer(st, cpu, run_until);
    0
}

/// Second half of [`guest_irq`]: the scheduler decides what this CPU runs;
/// the vector saved the rest of the vCPU's registers (x19..x28, PC,
/// PSTATE) into its context, so it can be switched.
pub fn guest_irq_switch() {
    let cpu = this_cpu();
    let mut lock = STATE.lock();
    let Some(st) = lock.as_mut() else {
        return;
    };
    let Some(cur) = st.current[cpu] else {
        return;
    };
    let runnable = st
        .hv
        .domains
        .get(cur.0)
        .is_ok_and(|d| d.vcpu_runnable(cur.1));
    let d = st
        .hv
        .sched
        .schedule(CpuIndex(cpu), timer::now(), Some((cur, runnable)));
    kick(st, cpu, d.kick.0);
    if d.next == Some(cur) {
        // Keeps the CPU: only its deadline and upcall line change.
        update_upcall(st, cur);
        arm_timer(st, cpu, d.run_until);
        return;
    }
    // `runnable` was answered before the decision.
    let _ = unload_vcpu(st, cpu);
    match d.next {
        Some(r) => load_vcpu_deferred(st, cpu, r, d.run_until),
        None => {
            go_idle(st, cpu, d.run_until);
            drop(lock);
            wait_for_work(cpu, true);
        }
    }
}
