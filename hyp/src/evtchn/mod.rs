//! Event channels, virtual IRQs, per-vCPU timers and time pages: everything
//! about events and time that is not Arm-specific.
//!
//! [`Events`] is one field of the `Hypervisor`. The hypercall handlers
//! (`hypercall::evtchn`, `hypercall::vcpu`) validate guest arguments and call
//! it; the arch layer uses what it produces:
//!
//! - Every operation that makes a vCPU need attention queues a [`Notify`].
//!   After each trap the arch layer drains them with
//!   [`Events::take_notifies`]: for each, wake the vCPU if it is blocked and,
//!   if it is running on another physical CPU, kick that CPU.
//! - On every entry to a vCPU it asserts the upcall virtual IRQ exactly when
//!   the vCPU's `upcall_pending` word is set (the level follows the guest's
//!   `upcall_pending` word, so `evtchn_op upcall_done` needs no more than a
//!   trap and re-entry).
//! - It programs the physical timer for [`Events::next_deadline`] and calls
//!   [`Events::expire`] when it fires.
//! - It tells [`Events::set_counter_offset`] each domain's `CNTVOFF_EL2`.
//!
//! Delivery follows `specs/hypercalls.md` (`evtchn_op`), Xen's two-level
//! scheme; `page` holds the atomic operations on the guest's event page.

pub mod clock;
mod deliver;
pub mod page;
pub mod ports;
pub mod sched_ctl;
mod slots;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fast;
pub mod timers;
mod waits;

use alloc::vec::Vec;

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{EVENT_VCPUS, NR_PORTS, Port, PortState, Virq};

use crate::addr::PhysAddr;
use crate::physmem::PhysMem;
use crate::slot_map::DomainMap;
use page::PageRef;
use ports::{Binding, PortTable};
pub use slots::Fired;
use timers::Timers;

/// A vCPU that needs attention: it may have a new upcall pending, its timer
/// fired, or its poll ended. The arch layer wakes it if blocked and kicks its
/// physical CPU if it is running elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Notify {
    /// Its domain.
    pub dom: DomainId,
    /// Its index.
    pub vcpu: usize,
    /// A port handed to it in `x1` (`sched_op send_wait`) instead of made
    /// pending in its event page; 0 for none (port 0 is never allocated).
    /// Whoever applies the notification must either write it there or,
    /// if the vCPU is no longer waiting for it, deliver it through the
    /// page after all (`Hypervisor::deliver_late`).
    pub direct: u32,
}

impl Notify {
    /// A notification of `vcpu` of `dom`, with no port handed over.
    pub const fn new(dom: DomainId, vcpu: usize) -> Self {
        Self {
            dom,
            vcpu,
            direct: 0,
        }
    }
}

/// `evtchn_op status` of one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// What it is.
    pub state: PortState,
    /// The vCPU it notifies (0 for a free port).
    pub vcpu: usize,
    /// `x3` of `status`.
    pub detail: u64,
}

/// Event state of one domain.
#[derive(Debug, Default)]
struct DomainEvents {
    /// The registered event page.
    page: Option<PhysAddr>,
    /// The registered time page.
    time_page: Option<PhysAddr>,
    /// The last `TimeInfo::version` written (even).
    time_version: u64,
    ports: PortTable,
    /// `CNTVOFF_EL2`: physical counter = virtual counter + this.
    counter_offset: u64,
    /// The ports each vCPU polls (`sched_op poll`), if it is polling.
    polls: [Option<Vec<Port>>; EVENT_VCPUS],
    /// Bit `v` set while `polls[v]` is `Some`: delivery skips the poll check
    /// when nobody polls (the usual case) without looking at each vCPU.
    polling: u64,
    /// Bit `v` set while vCPU `v` is blocked in `sched_op send_wait` and
    /// may take the next event on a port bound to it in `x1` instead of
    /// through the page (set by the call's send, before it blocks; cleared
    /// when a port is handed over, when the call does not block, when the
    /// vCPU wakes for anything else and when it goes down).
    direct: u64,
    /// Successful `send` calls (`DomainInfo::events_sent`).
    sent: u64,
    /// Bit `v` set while vCPU `v`'s guest timer fired since it last
    /// blocked. A guest that sleeps sets its timer and then blocks in a
    /// second call; if the timer fires in between, the wakeup must not be
    /// lost: `block` consumes this latch and returns at once (spuriously
    /// early is allowed, late is not). A bit per vCPU of the domain, so the
    /// timer interrupt's fast path sets it with no search.
    timer_fired: u64,
}

/// Event channels, virqs, timers and time pages of every domain.
pub struct Events {
    domains: DomainMap<DomainEvents>,
    timers: Timers,
    wallclock: Option<clock::Wallclock>,
    /// Queued notifications: `notify[notify_head..]` are not yet taken. The
    /// vector keeps its capacity once drained, so the trap paths that queue
    /// and drain notifications never allocate.
    notify: Vec<Notify>,
    notify_head: usize,
    /// How many `DomainEvents::timer_fired` bits are set, all domains: while
    /// none is, `take_timer_fired` (on every `block`) answers with no lookup.
    timer_latches: u32,
    /// Per CPU, what the timer interrupt's fast path needs (`slots`).
    slots: [slots::Slot; crate::percpu::MAX_CPUS],
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Events {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Events")
            .field("domains", &self.domains.len())
            .field("next_deadline", &self.timers.next())
            .finish_non_exhaustive()
    }
}

impl Events {
    /// No domain has events yet.
    pub fn new() -> Self {
        Self {
            domains: DomainMap::new(),
            timers: Timers::default(),
            wallclock: None,
            notify: Vec::new(),
            notify_head: 0,
            timer_latches: 0,
            slots: Default::default(),
        }
    }

    fn dom(&mut self, dom: DomainId) -> &mut DomainEvents {
        self.domains.get_or_insert_with(dom, DomainEvents::default)
    }

    /// Registers `dom`'s event page at physical address `page` (4 KiB
    /// aligned, inside its RAM: the caller checked). `Exists` if it has one.
    pub fn init_shared(&mut self, dom: DomainId, page: PhysAddr) -> Result<(), Error> {
        let d = self.dom(dom);
        if d.page.is_some() {
            return Err(Error::Exists);
        }
        d.page = Some(page);
        self.forget_slots(dom);
        Ok(())
    }

    /// Whether `dom` registered an event page.
    pub fn has_page(&self, dom: DomainId) -> bool {
        self.domains.get(&dom).is_some_and(|d| d.page.is_some())
    }

    /// Allocates a port of `dom`, which must have an event page, and clears
    /// its pending bit.
    fn alloc(
        &mut self,
        mem: &dyn PhysMem,
        dom: DomainId,
        binding: Binding,
        vcpu: usize,
    ) -> Result<Port, Error> {
        if vcpu >= EVENT_VCPUS {
            return Err(Error::NotFound);
        }
        let d = self.domains.get_mut(&dom).ok_or(Error::InvalidState)?;
        let base = d.page.ok_or(Error::InvalidState)?;
        let port = d.ports.alloc(binding, vcpu)?;
        PageRef { mem, base }.clear_pending(port);
        Ok(port)
    }

    /// `alloc_unbound`: a port of `dom` that `remote` may connect to.
    pub fn alloc_unbound(
        &mut self,
        mem: &dyn PhysMem,
        dom: DomainId,
        remote: DomainId,
    ) -> Result<Port, Error> {
        self.alloc(mem, dom, Binding::Unbound { remote }, 0)
    }

    /// `bind_interdomain`: connects a new port of `dom` to `remote_port` of
    /// `remote` (which the caller checked exists).
    pub fn bind_interdomain(
        &mut self,
        mem: &dyn PhysMem,
        dom: DomainId,
        remote: DomainId,
        remote_port: Port,
    ) -> Result<Port, Error> {
        let slot = self
            .domains
            .get(&remote)
            .ok_or(Error::NotFound)?
            .ports
            .bound(remote_port)?;
        match slot.binding {
            Binding::Unbound { remote: allowed } if allowed == dom => {}
            Binding::Unbound { .. } => return Err(Error::PermissionDenied),
            _ => return Err(Error::InvalidState),
        }
        let local = self.alloc(
            mem,
            dom,
            Binding::Interdomain {
                remote,
                remote_port,
            },
            0,
        )?;
        self.dom(remote).ports.rebind(
            remote_port,
            Binding::Interdomain {
                remote: dom,
                remote_port: local,
            },
        );
        Ok(local)
    }

    /// `bind_virq`: binds `virq` for `vcpu` of `dom` (permission to bind it
    /// was checked by the caller). `Exists` if already bound.
    pub fn bind_virq(
        &mut self,
        mem: &dyn PhysMem,
        dom: DomainId,
        virq: Virq,
        vcpu: usize,
    ) -> Result<Port, Error> {
        if vcpu >= EVENT_VCPUS {
            return Err(Error::NotFound);
        }
        if let Some(d) = self.domains.get(&dom)
            && d.ports.virq_port(virq, vcpu).is_some()
        {
            return Err(Error::Exists);
        }
        self.forget_slots(dom);
        self.alloc(mem, dom, Binding::Virq(virq), vcpu)
    }

    /// `bind_ipi`: an IPI port of `dom` notifying `vcpu`.
    pub fn bind_ipi(
        &mut self,
        mem: &dyn PhysMem,
        dom: DomainId,
        vcpu: usize,
    ) -> Result<Port, Error> {
        self.alloc(mem, dom, Binding::Ipi, vcpu)
    }

    /// How many events `dom` has sent (successful [`Self::send`] calls).
    pub fn sent(&self, dom: DomainId) -> u64 {
        self.domains.get(&dom).map_or(0, |d| d.sent)
    }

    /// Binds physical interrupt `intid` to a new port of dom0 (the caller
    /// checked it is one of dom0's devices' interrupts).
    pub fn bind_pirq(&mut self, mem: &dyn PhysMem, intid: u32) -> Result<Port, Error> {
        if self.pirq_port(intid).is_some() {
            return Err(Error::Exists);
        }
        self.alloc(mem, DomainId::DOM0, Binding::Pirq(intid), 0)
    }

    /// The dom0 port bound to physical interrupt `intid`.
    pub fn pirq_port(&self, intid: u32) -> Option<Port> {
        let d = self.domains.get(&DomainId::DOM0)?;
        (1..NR_PORTS)
            .map(Port)
            .find(|&p| d.ports.get(p).binding == Binding::Pirq(intid))
    }

    /// The physical interrupt port `port` of dom0 is bound to, if any.
    pub fn pirq_of(&self, port: Port) -> Option<u32> {
        match self.domains.get(&DomainId::DOM0)?.ports.get(port).binding {
            Binding::Pirq(intid) => Some(intid),
            _ => None,
        }
    }

    /// `close`: frees `port` of `dom`. The remote end of an interdomain
    /// channel becomes unbound, reserved for `dom`.
    pub fn close(&mut self, mem: &dyn PhysMem, dom: DomainId, port: Port) -> Result<(), Error> {
        self.forget_slots(dom);
        let d = self.domains.get_mut(&dom).ok_or(Error::NotFound)?;
        d.ports.bound(port)?;
        let old = d.ports.free(port);
        if let Some(base) = d.page {
            PageRef { mem, base }.clear_pending(port);
        }
        if let Binding::Interdomain {
            remote,
            remote_port,
        } = old.binding
        {
            self.dom(remote)
                .ports
                .rebind(remote_port, Binding::Unbound { remote: dom });
        }
        Ok(())
    }

    /// `unmask`: clears the mask bit of `port` of `dom` and re-delivers it if
    /// it is pending.
    pub fn unmask(&mut self, mem: &dyn PhysMem, dom: DomainId, port: Port) -> Result<(), Error> {
        let d = self.domains.get(&dom).ok_or(Error::NotFound)?;
        let slot = d.ports.bound(port)?;
        let Some(base) = d.page else {
            return Ok(());
        };
        let page = PageRef { mem, base };
        page.clear_mask(port);
        if page.is_pending(port) && page.signal(slot.vcpu, port) {
            self.push(Notify::new(dom, slot.vcpu));
        }
        Ok(())
    }

    /// `status` of `port` of `dom`.
    pub fn status(&self, dom: DomainId, port: Port) -> PortStatus {
        let slot = self
            .domains
            .get(&dom)
            .map(|d| d.ports.get(port))
            .unwrap_or(ports::Slot {
                binding: Binding::Free,
                vcpu: 0,
            });
        PortStatus {
            state: slot.binding.state(),
            vcpu: slot.vcpu,
            detail: slot.binding.detail(),
        }
    }

    /// `bind_vcpu`: `port` of `dom` notifies `vcpu` from now on.
    pub fn bind_vcpu(&mut self, dom: DomainId, port: Port, vcpu: usize) -> Result<(), Error> {
        if vcpu >= EVENT_VCPUS {
            return Err(Error::NotFound);
        }
        let d = self.domains.get_mut(&dom).ok_or(Error::NotFound)?;
        match d.ports.bound(port)?.binding {
            Binding::Ipi => return Err(Error::InvalidState),
            Binding::Virq(v) if v.is_per_vcpu() => return Err(Error::InvalidState),
            _ => {}
        }
        d.ports.set_vcpu(port, vcpu);
        Ok(())
    }

    /// Whether `vcpu` of `dom` has `upcall_pending` set in its event page:
    /// the level of its upcall virtual IRQ. (The hypervisor reads the word
    /// through the copy in its vCPU, `Vcpu::upcall_word`.)
    #[cfg(test)]
    pub fn upcall_pending(&self, mem: &dyn PhysMem, dom: DomainId, vcpu: usize) -> bool {
        self.upcall_word(dom, vcpu)
            .is_some_and(|pa| mem.load_u64(pa) != 0)
    }

    /// Where `vcpu` of `dom` has its `upcall_pending` word, if its domain
    /// registered an event page: the arch layer caches it per CPU for the
    /// running vCPU, so that `upcall_done` needs no lookup (nor the lock).
    pub fn upcall_word(&self, dom: DomainId, vcpu: usize) -> Option<PhysAddr> {
        self.domains.get(&dom).and_then(|d| upcall_word(d, vcpu))
    }

    /// Records `dom`'s counter offset (`CNTVOFF_EL2`): its virtual counter is
    /// the physical counter minus `offset`. Set it when the domain is
    /// created, before it runs.
    pub fn set_counter_offset(&mut self, dom: DomainId, offset: u64) {
        self.dom(dom).counter_offset = offset;
    }

    /// `dom`'s counter offset (0 if never set).
    pub fn counter_offset(&self, dom: DomainId) -> u64 {
        self.domains.get(&dom).map_or(0, |d| d.counter_offset)
    }

    /// `dom` is gone (its RAM already freed): forgets its ports, pages and
    /// deadlines without touching its memory. Remote ends of its
    /// interdomain channels become unbound (reserved for the dead domain, so
    /// they can only be closed).
    pub fn destroy_domain(&mut self, dom: DomainId) {
        self.drop_slots(dom);
        if let Some(d) = self.domains.remove(&dom) {
            self.timer_latches -= d.timer_fired.count_ones();
            for (_, slot) in d.ports.iter() {
                if let Binding::Interdomain {
                    remote,
                    remote_port,
                } = slot.binding
                    && let Some(r) = self.domains.get_mut(&remote)
                {
                    r.ports
                        .rebind(remote_port, Binding::Unbound { remote: dom });
                }
            }
        }
        self.timers.cancel_domain(dom);
        self.notify.drain(..self.notify_head);
        self.notify_head = 0;
        self.notify.retain(|n| n.dom != dom);
    }

    /// Allocated ports of `dom`.
    pub fn port_count(&self, dom: DomainId) -> usize {
        self.domains.get(&dom).map_or(0, |d| d.ports.count())
    }
}

/// Sets `bit` in `mask`; 1 if it was clear (a new latch), else 0.
fn latch(mask: &mut u64, bit: u64) -> u32 {
    let new = *mask & bit == 0 && bit != 0;
    *mask |= bit;
    u32::from(new)
}

/// `vcpu`'s bit in a per-vCPU mask of a domain (`DomainEvents::timer_fired`);
/// none past 64 vCPUs (no such vCPU has events: `EVENT_VCPUS`).
fn vcpu_bit(vcpu: usize) -> u64 {
    1u64.checked_shl(vcpu as u32).unwrap_or(0)
}

/// Where `vcpu` of `d` has its `upcall_pending` word, if `d` registered an
/// event page.
fn upcall_word(d: &DomainEvents, vcpu: usize) -> Option<PhysAddr> {
    match d.page {
        Some(base) if vcpu < EVENT_VCPUS => Some(PhysAddr(
            base.0 + tern_abi::evtchn::EventPage::upcall_pending_offset(vcpu),
        )),
        _ => None,
    }
}
