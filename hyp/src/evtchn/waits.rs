//! What blocked vCPUs wait for, and how that ends: `sched_op poll` on
//! ports, the one-shot guest timer (`time_op set_timer`) and its latch, the
//! mark of a vCPU waiting in `sched_op send_wait` for a port in `x1`, and
//! what a vCPU going down cancels.

use alloc::vec::Vec;

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{EVENT_VCPUS, Port, Virq};

use super::page::PageRef;
use super::timers::TimerKind;
use super::{Events, Notify, latch, vcpu_bit};
use crate::physmem::PhysMem;

impl Events {
    /// `sched_op poll` by `vcpu` of `dom` on `ports` (each checked allocated
    /// by the caller) until virtual-counter value `deadline` (0: none).
    /// Returns `true` if the vCPU must block, `false` if a port is already
    /// pending.
    pub fn poll(
        &mut self,
        mem: &dyn PhysMem,
        dom: DomainId,
        vcpu: usize,
        ports: Vec<Port>,
        deadline: u64,
    ) -> Result<bool, Error> {
        let d = self.domains.get_mut(&dom).ok_or(Error::InvalidState)?;
        let base = d.page.ok_or(Error::InvalidState)?;
        if vcpu >= EVENT_VCPUS {
            return Err(Error::NotFound);
        }
        for &p in &ports {
            d.ports.bound(p)?;
        }
        let page = PageRef { mem, base };
        if ports.iter().any(|&p| page.is_pending(p)) {
            return Ok(false);
        }
        d.polls[vcpu] = Some(ports);
        d.polling |= 1 << vcpu;
        let offset = d.counter_offset;
        self.forget_slots(dom);
        if deadline != 0 {
            self.timers.set(
                (dom, vcpu, TimerKind::Poll),
                deadline.saturating_add(offset),
            );
        }
        Ok(true)
    }

    /// Forgets a poll of `vcpu` of `dom` that ended some other way (the vCPU
    /// was woken by an upcall, paused, brought down).
    pub fn end_poll(&mut self, dom: DomainId, vcpu: usize) {
        if let Some(d) = self.domains.get_mut(&dom)
            && let Some(p) = d.polls.get_mut(vcpu)
        {
            *p = None;
            d.polling &= !(1 << vcpu);
        }
        self.timers.cancel((dom, vcpu, TimerKind::Poll));
    }

    /// Whether `vcpu` of `dom` may take its next event in a register
    /// (`sched_op send_wait`).
    #[cfg(test)]
    pub fn waits_direct(&self, dom: DomainId, vcpu: usize) -> bool {
        self.domains
            .get(&dom)
            .is_some_and(|d| d.direct & (1 << vcpu) != 0)
    }

    /// Whether `vcpu` of `dom` is in `sched_op poll`.
    pub fn is_polling(&self, dom: DomainId, vcpu: usize) -> bool {
        self.domains
            .get(&dom)
            .and_then(|d| d.polls.get(vcpu))
            .is_some_and(Option::is_some)
    }

    /// `time_op set_timer`: `vcpu` of `dom` wants `Virq::Timer` at virtual
    /// counter value `deadline`; 0 cancels.
    pub fn set_timer(&mut self, dom: DomainId, vcpu: usize, deadline: u64) {
        let key = (dom, vcpu, TimerKind::Guest);
        if deadline == 0 {
            self.timers.cancel(key);
        } else {
            let offset = self.counter_offset(dom);
            self.timers.set(key, deadline.saturating_add(offset));
        }
    }

    /// The guest timer of `vcpu` of `dom`, as a virtual-counter value.
    pub fn timer(&self, dom: DomainId, vcpu: usize) -> Option<u64> {
        self.timers
            .get((dom, vcpu, TimerKind::Guest))
            .map(|at| at.saturating_sub(self.counter_offset(dom)))
    }

    /// The earliest deadline of any vCPU, in physical-counter ticks: when
    /// the arch layer must call [`Events::expire`].
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.next()
    }

    /// Fires every deadline at or before physical-counter value `now`, in
    /// deadline order: guest timers raise `Virq::Timer` on their vCPU, polls
    /// end. Returns the vCPUs to wake, in that order (and drains the queue
    /// of [`Events::take_notifies`]).
    pub fn expire(&mut self, mem: &dyn PhysMem, now: u64) -> Vec<Notify> {
        self.fire_due(mem, now);
        self.take_notifies()
    }

    /// [`Events::expire`] that leaves the vCPUs to wake queued for
    /// [`Events::pop_notify`] instead of returning them (no allocation).
    pub fn fire_due(&mut self, mem: &dyn PhysMem, now: u64) {
        while let Some((_, (dom, vcpu, kind))) = self.timers.pop_expired(now) {
            match kind {
                TimerKind::Guest => {
                    if let Some(d) = self.domains.get_mut(&dom) {
                        self.timer_latches += latch(&mut d.timer_fired, vcpu_bit(vcpu));
                    }
                    self.raise_vcpu_virq(mem, dom, vcpu, Virq::Timer)
                }
                TimerKind::Poll => self.end_poll(dom, vcpu),
            }
            // Even with no port bound (or the port masked) the vCPU wakes:
            // `sched_op block` may return spuriously, never late.
            self.push(Notify::new(dom, vcpu));
        }
    }

    /// `vcpu` of `dom` went down: its timer and poll end.
    pub fn vcpu_down(&mut self, dom: DomainId, vcpu: usize) {
        self.timers.cancel((dom, vcpu, TimerKind::Guest));
        self.end_poll(dom, vcpu);
        self.end_direct(dom, vcpu);
    }

    /// `vcpu` of `dom` no longer waits in `sched_op send_wait` (it did not
    /// block, woke for another reason, or went down): its events go through
    /// the page again.
    pub fn end_direct(&mut self, dom: DomainId, vcpu: usize) {
        if let Some(d) = self.domains.get_mut(&dom) {
            d.direct &= !(1u64 << vcpu);
        }
    }

    /// Whether any vCPU's guest timer fired since it last blocked: if not,
    /// [`Self::take_timer_fired`] answers `false` for every vCPU.
    pub fn timer_latched(&self) -> bool {
        self.timer_latches != 0
    }

    /// Whether `vcpu`'s guest timer fired since it last blocked; clears it.
    /// The usual answer (no latch set anywhere) inline, in `block`, which
    /// then needs fewer registers saved.
    #[inline(always)]
    pub fn take_timer_fired(&mut self, dom: DomainId, vcpu: usize) -> bool {
        self.timer_latches != 0 && self.take_latched_timer(dom, vcpu)
    }

    /// [`Self::take_timer_fired`] with a latch set somewhere.
    #[inline(never)]
    fn take_latched_timer(&mut self, dom: DomainId, vcpu: usize) -> bool {
        let slot_fired = self.take_slot_fired(dom, vcpu);
        let Some(d) = self.domains.get_mut(&dom) else {
            return slot_fired;
        };
        let bit = vcpu_bit(vcpu);
        let fired = d.timer_fired & bit != 0;
        d.timer_fired &= !bit;
        self.timer_latches -= u32::from(fired);
        fired || slot_fired
    }
}
