//! Per-CPU timer slots: for the vCPU last loaded on each physical CPU, what
//! the timer interrupt's fast path ([`Events::fire_loaded_timer`]) needs to
//! deliver its `Virq::Timer` with no lookup: the packed key of its guest
//! timer and the event-page addresses and bits of its timer port.
//!
//! A slot is *ready* only while its vCPU is loaded on the CPU (the arch
//! layer calls [`Events::load_slot`] and [`Events::unload_slot`]) and what it
//! caches is exactly what the generic
//! delivery would find: the domain has an event page, the vCPU's timer virq
//! is bound, and no vCPU of the domain polls (a poll may have to end). Every
//! operation that could change one of those (a port bound or closed, a page
//! registered, a poll started, the domain destroyed) makes the domain's
//! slots not ready ([`Events::forget_slots`]); the generic timer path makes
//! them ready again ([`Events::refresh_slot`]). All of it runs under the
//! arch layer's state lock, as the fast path does.
//!
//! A slot also holds its vCPU's timer latch while the fast path set it (see
//! `DomainEvents::timer_fired`): counted in `Events::timer_latches` like a
//! domain's bit, taken by [`Events::take_timer_fired`], merged into the
//! domain's bits when the slot takes another vCPU.

use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{EVENT_VCPUS, EventPage, Virq};

use super::timers::{self, TimerKind};
use super::{Events, vcpu_bit};
use crate::addr::PhysAddr;
use crate::physmem::PhysMem;

/// What one CPU's timer fast path needs (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    /// The vCPU last loaded on the CPU, as its guest timer's key in
    /// `Timers`, packed ([`NONE`] if none): one compare on every load.
    pub(super) key: u64,
    /// The fields below are valid for `key`'s vCPU.
    cached: bool,
    /// `cached`, and the vCPU is on the CPU now: the fast path may run.
    ready: bool,
    /// The vCPU's guest timer fired on the fast path since its latch was
    /// last taken.
    fired: bool,
    /// Physical address of the pending word holding its timer port.
    pending: u64,
    /// The port's bit in the pending and mask words.
    bit: u64,
    /// Physical address of the port's mask word.
    mask: u64,
    /// Physical address of the vCPU's `pending_sel`.
    sel: u64,
    /// The pending word's bit in `pending_sel`.
    sel_bit: u64,
    /// Physical address of the vCPU's `upcall_pending`.
    upcall: u64,
}

/// [`Slot::key`] of no vCPU: `pack` never makes it (a guest timer's key has
/// its kind bit clear).
const NONE: u64 = u64::MAX;

impl Default for Slot {
    fn default() -> Self {
        Self {
            key: NONE,
            cached: false,
            ready: false,
            fired: false,
            pending: 0,
            bit: 0,
            mask: 0,
            sel: 0,
            sel_bit: 0,
            upcall: 0,
        }
    }
}

impl Slot {
    /// Whether its vCPU belongs to `dom`.
    fn of(&self, dom: DomainId) -> bool {
        self.key != NONE && timers::unpack(self.key).0 == dom
    }
}

/// The packed key of `vcpu` of `dom`'s guest timer.
fn guest_key(dom: DomainId, vcpu: usize) -> u64 {
    timers::pack((dom, vcpu, TimerKind::Guest))
}

/// What [`Events::fire_loaded_timer`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    /// The vCPU's `upcall_pending` is set.
    pub upcall: bool,
    /// The earliest deadline still armed (of any vCPU), `u64::MAX` when
    /// none is (`sched::NEVER`).
    pub next: u64,
}

impl Events {
    /// `vcpu` of `dom` was loaded on CPU `cpu`. The slot keeps what it
    /// cached when the same vCPU comes back (a yield with nothing else to
    /// run unloads and reloads it); for another vCPU it is made ready by the
    /// first timer interrupt that takes the generic path (which calls
    /// [`Events::refresh_slot`]), not here: a vCPU switch, far more frequent
    /// than a timer, pays no lookup.
    #[inline]
    pub fn load_slot(&mut self, cpu: usize, dom: DomainId, vcpu: usize) {
        let Some(s) = self.slots.get_mut(cpu) else {
            return;
        };
        let key = guest_key(dom, vcpu);
        if s.key == key {
            s.ready = s.cached;
            return;
        }
        s.ready = false;
        s.cached = false;
        let old = core::mem::replace(&mut s.key, key);
        if s.fired {
            s.fired = false;
            self.merge_latch(old);
        }
    }

    /// CPU `cpu`'s vCPU was unloaded: the fast path must not run for it
    /// until it is loaded again. (Its latch stays in the slot until taken or
    /// another vCPU is loaded.)
    #[inline]
    pub fn unload_slot(&mut self, cpu: usize) {
        if let Some(s) = self.slots.get_mut(cpu) {
            s.ready = false;
        }
    }

    /// A slot's latch of `vcpu` of `dom` goes back to the domain: two
    /// latches of one vCPU become one (or none, the domain gone).
    #[inline(never)]
    fn merge_latch(&mut self, key: u64) {
        let (dom, vcpu, _) = timers::unpack(key);
        match self.domains.get_mut(&dom) {
            Some(d) if d.timer_fired & vcpu_bit(vcpu) == 0 => d.timer_fired |= vcpu_bit(vcpu),
            _ => self.timer_latches -= 1,
        }
    }

    /// Makes CPU `cpu`'s slot ready if its vCPU qualifies (see the module
    /// docs); the generic timer path calls it after its deliveries, while
    /// that vCPU is loaded.
    #[inline(never)]
    pub fn refresh_slot(&mut self, cpu: usize) {
        let Some(s) = self.slots.get_mut(cpu) else {
            return;
        };
        if s.key == NONE {
            return;
        }
        let (dom, vcpu, _) = timers::unpack(s.key);
        if s.cached || vcpu >= EVENT_VCPUS {
            s.ready = s.cached;
            return;
        }
        let Some(d) = self.domains.get(&dom) else {
            return;
        };
        let (Some(base), Some(port), 0) = (d.page, d.ports.virq_port(Virq::Timer, vcpu), d.polling)
        else {
            return;
        };
        // A per-vCPU virq's port notifies the vCPU it was bound for and
        // cannot be moved (`bind_vcpu` refuses): the fast path signals
        // `vcpu` itself.
        debug_assert_eq!(d.ports.get(port).vcpu, vcpu);
        let word = port.word();
        *s = Slot {
            key: s.key,
            cached: true,
            ready: true,
            fired: s.fired,
            pending: base.0 + EventPage::pending_offset(word),
            bit: port.bit(),
            mask: base.0 + EventPage::mask_offset(word),
            sel: base.0 + EventPage::pending_sel_offset(vcpu),
            sel_bit: 1 << word,
            upcall: base.0 + EventPage::upcall_pending_offset(vcpu),
        };
    }

    /// Something a slot of `dom` caches may change: its slots are not ready
    /// until refreshed.
    #[inline(never)]
    pub(super) fn forget_slots(&mut self, dom: DomainId) {
        for s in &mut self.slots {
            if s.of(dom) {
                s.cached = false;
                s.ready = false;
            }
        }
    }

    /// `dom` is being destroyed: its slots forget it, latches included.
    #[inline(never)]
    pub(super) fn drop_slots(&mut self, dom: DomainId) {
        for s in &mut self.slots {
            if s.of(dom) {
                self.timer_latches -= u32::from(s.fired);
                *s = Slot::default();
            }
        }
    }

    /// Takes the fast path's latches of `vcpu` of `dom`: whether one was
    /// set.
    #[inline(never)]
    pub(super) fn take_slot_fired(&mut self, dom: DomainId, vcpu: usize) -> bool {
        let key = guest_key(dom, vcpu);
        let mut fired = false;
        for s in &mut self.slots {
            if s.fired && s.key == key {
                s.fired = false;
                self.timer_latches -= 1;
                fired = true;
            }
        }
        fired
    }

    /// The usual timer interrupt, fast: the guest timer of the vCPU loaded
    /// on CPU `cpu` is the only deadline due at `now`. Fires it as
    /// [`Events::fire_due`] would, except that no notification is queued
    /// for the vCPU itself: running, it has nothing to wake from, and the
    /// caller sets its upcall line from the answer. Answers whether the
    /// vCPU's `upcall_pending` is set after the delivery and the earliest
    /// deadline left, or `None`, changing nothing, when the case does not
    /// apply: the slot is not ready or another deadline is due too (use
    /// `fire_due`).
    ///
    /// Generic over the memory so that the board's identity map inlines its
    /// atomics: this is the whole timer-interrupt-to-guest path, and it
    /// makes no call.
    #[inline(always)]
    pub fn fire_loaded_timer<M: PhysMem + ?Sized>(
        &mut self,
        mem: &M,
        now: u64,
        cpu: usize,
    ) -> Option<Fired> {
        let s = self.slots.get_mut(cpu)?;
        if !s.ready {
            return None;
        }
        let next = self.timers.pop_only_due(now, s.key)?;
        if !s.fired {
            s.fired = true;
            self.timer_latches += 1;
        }
        let fired = |upcall| Some(Fired { upcall, next });
        // `deliver`, steps 1 to 4, with the poll and other-vCPU cases
        // excluded by the slot being ready.
        let bit = s.bit;
        if mem.fetch_or_u64(PhysAddr(s.pending), bit) & bit == 0
            && mem.load_u64(PhysAddr(s.mask)) & bit == 0
        {
            let sel = s.sel_bit;
            if mem.fetch_or_u64(PhysAddr(s.sel), sel) & sel == 0 {
                // Step 4 sets the word to 1: a store, as the answer (set)
                // does not depend on what it held.
                mem.store_u64(PhysAddr(s.upcall), 1);
                return fired(true);
            }
        }
        fired(mem.load_u64(PhysAddr(s.upcall)) != 0)
    }
}
