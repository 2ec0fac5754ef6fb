//! Delivery: `send`, setting a port pending on a domain's event page,
//! raising the upcall, waking blocked or polling vCPUs, and the queue of
//! notifications that tells the scheduler and the arch layer who to wake and
//! which upcall lines to re-evaluate. Split from `mod.rs` (the port
//! operations).

use alloc::vec::Vec;

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{Port, Virq};

use super::page::PageRef;
use super::timers::TimerKind;
use super::{Binding, DomainEvents, Events, Notify};
use crate::physmem::PhysMem;

impl Events {
    /// Queues a notification for the arch layer (see the module docs).
    pub fn notify(&mut self, n: Notify) {
        self.push(n);
    }

    /// Queues a notification (once per vCPU until drained).
    pub(super) fn push(&mut self, n: Notify) {
        if !self.notify[self.notify_head..].contains(&n) {
            self.notify.push(n);
        }
    }

    /// Takes the vCPUs that need attention since the last call, in the order
    /// they were notified.
    pub fn take_notifies(&mut self) -> Vec<Notify> {
        let taken = self.notify[self.notify_head..].to_vec();
        self.notify.clear();
        self.notify_head = 0;
        taken
    }

    /// Takes the oldest queued notification, if any: what the arch layer
    /// drains after every trap, without allocating.
    pub fn pop_notify(&mut self) -> Option<Notify> {
        match self.notify.get(self.notify_head) {
            Some(&n) => {
                self.notify_head += 1;
                Some(n)
            }
            None => {
                self.notify.clear();
                self.notify_head = 0;
                None
            }
        }
    }

    /// `send` from `from`'s `port`: makes the other end pending. Queues the
    /// notifications it causes.
    pub fn send(&mut self, mem: &dyn PhysMem, from: DomainId, port: Port) -> Result<(), Error> {
        if let Some(n) = self.send_direct(mem, from, port, 0)? {
            self.push(n);
        }
        Ok(())
    }

    /// [`Self::send`], but the one notification of the common case (nothing
    /// queued before, no poll ended: the vCPU to upcall) is answered instead
    /// of queued, for the caller to apply at once: what draining the queue
    /// at the end of the trap would do, in the same order.
    /// `wait`: the bit of the sending vCPU if it goes on to wait in
    /// `sched_op send_wait` (0 otherwise): once the send succeeds, its next
    /// event may be handed to it in a register. Set before the delivery,
    /// so a vCPU that sends to itself finds its own bit: the notification
    /// that answers then falls back to the page when applied, since the
    /// vCPU is still on its CPU (`Hypervisor::deliver_late`).
    pub fn send_direct(
        &mut self,
        mem: &dyn PhysMem,
        from: DomainId,
        port: Port,
        wait: u64,
    ) -> Result<Option<Notify>, Error> {
        let Some(d) = self.domains.get_mut_hot(&from) else {
            return Err(Error::NotFound);
        };
        // `PortTable::bound`'s test folded into the one match: the common
        // binding is tested first.
        let (to, to_port) = match d.ports.get(port).binding {
            Binding::Interdomain {
                remote,
                remote_port,
            } => (remote, remote_port),
            Binding::Ipi => (from, port),
            Binding::Free => return Err(Error::NotFound),
            _ => return Err(Error::InvalidState),
        };
        d.sent += 1;
        d.direct |= wait;
        Ok(self.set_pending_direct(mem, to, to_port))
    }

    /// Makes `port` of `dom` pending and delivers it (`specs/hypercalls.md`,
    /// `evtchn_op`, steps 1 to 4), waking vCPUs that poll it (what it
    /// changes is queued).
    pub(crate) fn set_pending(&mut self, mem: &dyn PhysMem, dom: DomainId, port: Port) {
        let Some(d) = self.domains.get_mut_hot(&dom) else {
            return;
        };
        let (woken, upcall) = deliver(d, mem, port);
        self.after_delivery(dom, woken, upcall);
    }

    /// [`Self::set_pending`], answering the vCPU to upcall instead of
    /// queueing it when the queue is empty and no poll ended (see
    /// [`Events::send_direct`]).
    pub(super) fn set_pending_direct(
        &mut self,
        mem: &dyn PhysMem,
        dom: DomainId,
        port: Port,
    ) -> Option<Notify> {
        let d = self.domains.get_mut_hot(&dom)?;
        if d.direct != 0
            && let Some(vcpu) = take_direct(d, mem, port)
        {
            let n = Notify {
                dom,
                vcpu,
                direct: port.0,
            };
            if !self.has_notifies() {
                return Some(n);
            }
            self.push(n);
            return None;
        }
        let (woken, upcall) = deliver_inline(d, mem, port);
        if woken == 0 && !self.has_notifies() {
            return upcall.map(|vcpu| Notify::new(dom, vcpu));
        }
        self.after_delivery(dom, woken, upcall);
        None
    }

    /// Queues what [`deliver`] found: pollers woken (their poll timeouts
    /// end), then the vCPU to upcall.
    pub(super) fn after_delivery(&mut self, dom: DomainId, mut woken: u64, upcall: Option<usize>) {
        while woken != 0 {
            let v = woken.trailing_zeros() as usize;
            woken &= woken - 1;
            self.timers.cancel((dom, v, TimerKind::Poll));
            self.push(Notify::new(dom, v));
        }
        if let Some(vcpu) = upcall {
            self.push(Notify::new(dom, vcpu));
        }
    }

    /// Physical interrupt `intid` fired: makes its dom0 port pending.
    /// Returns whether a port was bound to it.
    pub fn raise_pirq(&mut self, mem: &dyn PhysMem, intid: u32) -> bool {
        match self.pirq_port(intid) {
            Some(port) => {
                self.set_pending(mem, DomainId::DOM0, port);
                true
            }
            None => false,
        }
    }

    /// Raises per-domain virtual IRQ `virq` in `dom`, if it bound it.
    pub fn raise_virq(&mut self, mem: &dyn PhysMem, dom: DomainId, virq: Virq) {
        self.raise_vcpu_virq(mem, dom, 0, virq);
    }

    /// Raises virtual IRQ `virq` for `vcpu` of `dom` (the vCPU matters only
    /// for per-vCPU virqs), if it is bound.
    pub fn raise_vcpu_virq(&mut self, mem: &dyn PhysMem, dom: DomainId, vcpu: usize, virq: Virq) {
        // One lookup of the domain for both the port and the delivery.
        let Some(d) = self.domains.get_mut(&dom) else {
            return;
        };
        let Some(port) = d.ports.virq_port(virq, vcpu) else {
            return;
        };
        let (woken, upcall) = deliver(d, mem, port);
        self.after_delivery(dom, woken, upcall);
    }
}

impl Events {
    /// Whether notifications are queued (see [`Events::pop_notify`]).
    pub fn has_notifies(&self) -> bool {
        self.notify_head < self.notify.len()
    }
}

/// Makes `port` of `d` pending and signals it (`specs/hypercalls.md`,
/// `evtchn_op`, steps 1 to 4). Answers the vCPUs whose poll it ends (a bit
/// mask) and the vCPU to upcall, if it must be. Out of line: inlined, each
/// of its callers grows by its size.
#[inline(never)]
fn deliver(d: &mut DomainEvents, mem: &dyn PhysMem, port: Port) -> (u64, Option<usize>) {
    deliver_inline(d, mem, port)
}

/// Whether `port` of `d` can be handed in a register to the vCPU it is
/// bound to (`sched_op send_wait`), and if so that vCPU, whose wait it
/// ends. Only when the page would show nothing else: the port is unmasked
/// and not pending (a pending port is the guest's to find; delivering it
/// again changes nothing), and nobody polls (a poller of the port on
/// another vCPU must see it pending).
#[inline(always)]
fn take_direct(d: &mut DomainEvents, mem: &dyn PhysMem, port: Port) -> Option<usize> {
    let base = d.page?;
    let vcpu = d.ports.get(port).vcpu;
    let bit = 1u64 << vcpu;
    let page = PageRef { mem, base };
    if d.direct & bit == 0 || d.polling != 0 || page.is_masked(port) || page.is_pending(port) {
        return None;
    }
    d.direct &= !bit;
    Some(vcpu)
}

/// [`deliver`], inline: in the event round trip's `send` only.
#[inline(always)]
fn deliver_inline(d: &mut DomainEvents, mem: &dyn PhysMem, port: Port) -> (u64, Option<usize>) {
    let Some(base) = d.page else {
        return (0, None);
    };
    let vcpu = d.ports.get(port).vcpu;
    let page = PageRef { mem, base };
    if !page.set_pending(port) {
        return (0, None);
    }
    let woken = if d.polling != 0 {
        end_polls(d, port)
    } else {
        0
    };
    let upcall = !page.is_masked(port) && page.signal(vcpu, port);
    (woken, upcall.then_some(vcpu))
}

/// The polls of `d` that `port` ends: forgotten, answered as a bit mask.
/// Out of line: with nobody polling (the usual case) [`deliver`] then needs
/// fewer registers saved.
#[cold]
#[inline(never)]
fn end_polls(d: &mut DomainEvents, port: Port) -> u64 {
    let mut woken = 0;
    let mut polling = d.polling;
    while polling != 0 {
        let v = polling.trailing_zeros() as usize;
        polling &= polling - 1;
        if d.polls[v].as_ref().is_some_and(|p| p.contains(&port)) {
            d.polls[v] = None;
            woken |= 1 << v;
        }
    }
    d.polling &= !woken;
    woken
}
