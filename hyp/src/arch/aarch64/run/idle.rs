//! Idling a CPU that has nothing to run, and arming its EL2 timer for the
//! earlier of the scheduler's deadline and the next guest timer.

use super::{STATE, State, after_events, drain_irqs, forget_vcpu, kick, load_vcpu_deferred};
use crate::arch::aarch64::{guest, timer};
use crate::percpu::CpuIndex;
use crate::sched::NEVER;

/// Idles this CPU (WFI) until a vCPU can run on it, then loads that vCPU
/// (see [`super::take_loaded`]). Called with no vCPU on the CPU and `STATE` not held.
/// `idle`: the caller's `schedule` found nothing to run and [`go_idle`] was
/// done under that same lock, so the first pass goes straight to WFI
/// instead of asking the scheduler again (an IPI or timer meanwhile ends
/// that WFI at once).
pub(super) fn wait_for_work(cpu: usize, mut idle: bool) {
    loop {
        if !core::mem::take(&mut idle) {
            let mut lock = STATE.lock();
            let st = lock.as_mut().expect("READY implies STATE");
            let d = st.hv.sched.schedule(CpuIndex(cpu), timer::now(), None);
            kick(st, cpu, d.kick.0);
            if let Some(r) = d.next {
                st.idle_mask &= !(1 << cpu);
                load_vcpu_deferred(st, cpu, r, d.run_until);
                return;
            }
            go_idle(st, cpu, d.run_until);
        }
        // WFI wakes on a pending interrupt even with interrupts masked at EL2
        // (Arm ARM D1.16.2); the interrupt is then taken from the GIC here.
        aarch64_cpu::asm::wfi();
        let irqs = drain_irqs();
        if irqs.any() {
            let mut lock = STATE.lock();
            let st = lock.as_mut().expect("READY implies STATE");
            after_events(st, cpu, timer::now(), irqs);
        }
    }
}

/// Marks this CPU idle (other CPUs then interrupt it when they give it
/// work), without a vCPU, and arms its timer for `run_until`, the
/// scheduler's deadline. Lowers the virtual IRQ the last vCPU may have left
/// raised: with no vCPU it means nothing, and QEMU counts a raised one as
/// work for WFI even at EL2, so an idle CPU would not sleep but spin
/// through `wait_for_work`, taking `STATE` again and again, which starved
/// CPUs waiting for it (a burner charged for a CPU that spun on the lock
/// for seconds).
pub(super) fn go_idle(st: &mut State, cpu: usize, run_until: u64) {
    st.idle_mask |= 1 << cpu;
    forget_vcpu(st, cpu);
    guest::set_upcall(false);
    arm_timer(st, cpu, run_until);
}

/// After a hypercall: if a guest timer now falls before this CPU's armed
/// deadline (`time_op set_timer`, `sched_op poll`), bring the timer forward.
pub(super) fn rearm_for_guest_timers(st: &mut State, cpu: usize) {
    if let Some(at) = st.hv.events.next_deadline()
        && at < st.armed[cpu]
    {
        st.armed[cpu] = at;
        timer::set_deadline(at);
    }
}

/// Arms this CPU's timer for the earlier of `run_until` (the scheduler's
/// deadline) and the next guest timer; stops it if there is neither.
pub(super) fn arm_timer(st: &mut State, cpu: usize, run_until: u64) {
    st.run_until[cpu] = run_until;
    let at = st
        .hv
        .events
        .next_deadline()
        .map_or(run_until, |g| g.min(run_until));
    st.armed[cpu] = at;
    if at == NEVER {
        timer::cancel();
    } else {
        timer::set_deadline(at);
    }
}
