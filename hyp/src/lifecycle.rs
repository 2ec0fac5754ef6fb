//! Domain and vCPU state changes, kept in step with the scheduler.
//!
//! Every change of what may run goes through here: the hypercall handlers
//! and the arch layer never call the scheduler's `wake`/`block`/`pause`
//! directly, so the domain table and the run queues cannot disagree. Each
//! change collects the CPUs that must reschedule in `kick_mask` (and those
//! whose running vCPU must only re-evaluate its upcall line in
//! `upcall_mask`); the arch layer sends them an IPI after the trap.

use tern_abi::domctl::DomainId;

use crate::domain::{Lifecycle, VcpuState};
use crate::evtchn::Notify;
use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};
use crate::sched::{CpuMask, DomainParams, SchedConfig, SchedError, Scheduler, VcpuRef};

impl<M: PhysMem, F: FrameSource> Hypervisor<'_, M, F> {
    /// Replaces the scheduler with one for `cpus` CPUs and a `slice_us` time
    /// slice. Only before the first domain exists.
    pub fn configure_scheduler(&mut self, cpus: usize, slice_us: u32) -> Result<(), SchedError> {
        let mut config = SchedConfig::new(self.ticks_per_s);
        config.slice_us = slice_us;
        self.sched = Scheduler::new(cpus, config)?;
        self.cpus_online = cpus as u32;
        Ok(())
    }

    fn kick(&mut self, cpus: CpuMask) {
        self.kick_mask |= cpus.0;
    }

    /// A new domain: known to the scheduler (paused, every vCPU blocked), its
    /// virtual time starting now.
    pub fn domain_created(&mut self, id: DomainId) {
        let vcpus = self.domains.get(id).map_or(0, |d| d.vcpus.len());
        let all = CpuMask::first(self.sched.cpu_count());
        if let Err(e) = self
            .sched
            .add_domain(id, DomainParams::default(), vcpus, all)
        {
            log::error!("scheduler refused domain {}: {e:?}", id.0);
        }
        let now = (self.clock)();
        self.events.set_counter_offset(id, now);
        if let Ok(d) = self.domains.get_mut(id) {
            d.counter_offset = now;
        }
    }

    /// Lets a paused domain run: its vCPUs that have an entry state wake.
    pub fn unpause_domain(&mut self, id: DomainId) {
        let Ok(d) = self.domains.get_mut(id) else {
            return;
        };
        d.life = Lifecycle::Active;
        d.has_run = true;
        let runnable: alloc::vec::Vec<usize> = (0..d.vcpus.len())
            .filter(|&v| d.vcpus[v].state == VcpuState::Runnable)
            .collect();
        if let Ok(k) = self.sched.unpause_domain(id) {
            self.kick(k);
        }
        for v in runnable {
            if let Some(c) = self.sched.wake((id, v)) {
                self.kick(CpuMask::only(c));
            }
        }
    }

    /// Stops a domain's vCPUs from being picked (pause, shutdown, crash,
    /// destruction) and kicks the CPUs they run on.
    pub fn stop_scheduling(&mut self, id: DomainId) {
        if let Ok(k) = self.sched.pause_domain(id) {
            self.kick(k);
        }
        if let Ok(d) = self.domains.get(id) {
            self.kick_mask |= d.running_cpus();
        }
    }

    /// vCPU `r` blocks (it asked to, or was brought down).
    pub fn block_vcpu(&mut self, r: VcpuRef) {
        self.sched.block(r);
    }

    /// vCPU `r` gives way to others at its CPU's next decision.
    pub fn yield_vcpu(&mut self, r: VcpuRef) {
        self.sched.yield_now(r);
    }

    /// Applies the notifications event channels and timers queued: a blocked
    /// vCPU wakes, a running one's CPU is kicked so it re-evaluates the
    /// upcall line, one brought down elsewhere is taken off its CPU.
    pub fn apply_notifies(&mut self) {
        while let Some(n) = self.events.pop_notify() {
            self.apply_notify(n);
        }
    }

    /// Applies one notification (see [`Self::apply_notifies`]).
    pub fn apply_notify(&mut self, n: Notify) {
        self.apply_notify_from(n, (DomainId::DOM0, 0), false);
    }

    /// [`Self::apply_notify`]; `hand`: `from`, the vCPU that sent it, blocks
    /// in this same trap and its CPU switches (`sched_op send_block`), and no
    /// other notification is queued (they could change what the switch's
    /// `schedule` would pick: [`Events::send_direct`] answers a notification
    /// only when none is). If the notified vCPU then wakes and the scheduler
    /// can hand that CPU over to it directly, the decision is left in
    /// [`Self::handed`] for the switch; otherwise the woken vCPU is placed
    /// as for any wake. `from` is not read without `hand` (a vCPU and a flag
    /// rather than an `Option`: passed in registers).
    ///
    /// [`Events::send_direct`]: crate::evtchn::Events::send_direct
    pub fn apply_notify_from(&mut self, n: Notify, from: VcpuRef, hand: bool) {
        let Notify { dom, vcpu, direct } = n;
        let Ok(d) = self.domains.get_mut(dom) else {
            return;
        };
        let Some(vc) = d.vcpus.get_mut(vcpu) else {
            return;
        };
        let on_cpu = vc.on_cpu;
        let state = vc.state;
        // A port handed over goes into `x1` of a vCPU still blocked in
        // `send_wait` and off every CPU (its registers are in its context
        // until it runs). Otherwise it goes through the page after all,
        // which queues the notification that delivery calls for.
        if direct != 0 && (state != VcpuState::Blocked || on_cpu.is_some() || !vc.direct_wait) {
            return self.deliver_late(dom, direct);
        }
        let mut polled = false;
        if state == VcpuState::Blocked {
            vc.state = VcpuState::Runnable;
            polled = core::mem::take(&mut vc.polled);
            if core::mem::take(&mut vc.direct_wait) {
                if direct != 0 {
                    vc.ctx.gp.x[1] = u64::from(direct);
                } else {
                    // Woken by anything else: its wait for a register ends.
                    self.events.end_direct(dom, vcpu);
                }
            }
        }
        let active = d.life == Lifecycle::Active;
        match state {
            VcpuState::Down => self.sched.block((dom, vcpu)),
            // A vCPU that blocked in `block` has no poll to end.
            VcpuState::Blocked if polled => self.events.end_poll(dom, vcpu),
            VcpuState::Blocked | VcpuState::Runnable => {}
        }
        if state != VcpuState::Down && active {
            // Not for a vCPU still on a CPU.
            let handed = if hand && on_cpu.is_none() {
                debug_assert!(!self.events.has_notifies());
                self.sched.hand_off(from, (dom, vcpu), (self.clock)())
            } else {
                None
            };
            if handed.is_some() {
                self.handed = handed;
            } else if let Some(c) = self.sched.wake((dom, vcpu)) {
                self.kick(CpuMask::only(c));
            }
        }
        if let Some(c) = on_cpu {
            self.upcall_mask |= 1 << c;
        }
    }

    /// A port handed over ([`Notify::direct`]) to a vCPU that no longer
    /// waits for it in a register: made pending as any send would.
    #[cold]
    #[inline(never)]
    fn deliver_late(&mut self, dom: DomainId, port: u32) {
        let mem: &dyn PhysMem = self.mem;
        self.events
            .set_pending(mem, dom, tern_abi::evtchn::Port(port));
    }

    /// Fires the guest timers due by `now` (physical counter ticks).
    pub fn expire_timers(&mut self, now: u64) {
        let mem: &dyn PhysMem = self.mem;
        self.events.fire_due(mem, now);
        self.apply_notifies();
    }
}
