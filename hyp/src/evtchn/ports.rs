//! One domain's port table: which port is bound to what, and which vCPU it
//! notifies. Pure bookkeeping; the event page is `page`'s business.

use alloc::vec::Vec;

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{EVENT_VCPUS, NR_PORTS, Port, PortState, Virq, status_detail};

/// Number of [`Virq`] values.
const NR_VIRQS: usize = Virq::ALL.len();

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Not allocated.
    Free,
    /// Reserved for `remote` to connect with `bind_interdomain`.
    Unbound {
        /// The domain that may connect.
        remote: DomainId,
    },
    /// Connected to `remote_port` of `remote`.
    Interdomain {
        /// The other domain (may be this one).
        remote: DomainId,
        /// Its port.
        remote_port: Port,
    },
    /// Bound to a virtual IRQ.
    Virq(Virq),
    /// An IPI port.
    Ipi,
    /// Bound to a physical interrupt (INTID) of a device dom0 owns.
    Pirq(u32),
}

impl Binding {
    /// The ABI state of a port with this binding.
    pub const fn state(self) -> PortState {
        match self {
            Self::Free => PortState::Free,
            Self::Unbound { .. } => PortState::Unbound,
            Self::Interdomain { .. } => PortState::Interdomain,
            Self::Virq(_) => PortState::Virq,
            Self::Ipi => PortState::Ipi,
            Self::Pirq(_) => PortState::Pirq,
        }
    }

    /// `x3` of `evtchn_op status`.
    pub const fn detail(self) -> u64 {
        match self {
            Self::Unbound { remote } => remote.0 as u64,
            Self::Interdomain {
                remote,
                remote_port,
            } => status_detail(remote.0, remote_port.0),
            Self::Virq(v) => v.raw() as u64,
            Self::Pirq(intid) => intid as u64,
            Self::Free | Self::Ipi => 0,
        }
    }
}

/// One port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// What it is bound to.
    pub binding: Binding,
    /// The vCPU it notifies.
    pub vcpu: usize,
}

const FREE: Slot = Slot {
    binding: Binding::Free,
    vcpu: 0,
};

/// The ports of one domain. The table grows on demand up to [`NR_PORTS`]
/// slots, so a domain that uses three ports costs three slots' worth of
/// memory, not 4,096.
#[derive(Debug, Default)]
pub struct PortTable {
    slots: Vec<Slot>,
    /// Port of each per-domain virq (index: `Virq::raw`).
    global_virqs: [Option<Port>; NR_VIRQS],
    /// Port of each per-vCPU virq, per vCPU.
    vcpu_virqs: [[Option<Port>; NR_VIRQS]; EVENT_VCPUS],
}

impl PortTable {
    /// The slot of `port` (a free slot for ports never allocated).
    pub fn get(&self, port: Port) -> Slot {
        self.slots.get(port.0 as usize).copied().unwrap_or(FREE)
    }

    /// The slot of an allocated port, else `NotFound`.
    pub fn bound(&self, port: Port) -> Result<Slot, Error> {
        match self.get(port) {
            Slot {
                binding: Binding::Free,
                ..
            } => Err(Error::NotFound),
            s => Ok(s),
        }
    }

    /// Allocates the lowest free port with `binding`, notifying `vcpu`.
    /// `NoMemory` when all are in use (or the table cannot grow).
    pub fn alloc(&mut self, binding: Binding, vcpu: usize) -> Result<Port, Error> {
        debug_assert!(binding != Binding::Free);
        let free = (1..self.slots.len()).find(|&i| self.slots[i].binding == Binding::Free);
        let i = match free {
            Some(i) => i,
            None => {
                let i = self.slots.len().max(1);
                if i >= NR_PORTS as usize {
                    return Err(Error::NoMemory);
                }
                self.slots
                    .try_reserve(i + 1 - self.slots.len())
                    .map_err(|_| Error::NoMemory)?;
                self.slots.resize(i + 1, FREE);
                i
            }
        };
        self.slots[i] = Slot { binding, vcpu };
        let port = Port(i as u32);
        if let Binding::Virq(v) = binding {
            *self.virq_entry(v, vcpu) = Some(port);
        }
        Ok(port)
    }

    /// Changes an allocated port's binding (keeps its vCPU).
    pub fn rebind(&mut self, port: Port, binding: Binding) {
        if let Some(s) = self.slots.get_mut(port.0 as usize) {
            s.binding = binding;
        }
    }

    /// Changes the vCPU an allocated port notifies.
    pub fn set_vcpu(&mut self, port: Port, vcpu: usize) {
        if let Some(s) = self.slots.get_mut(port.0 as usize) {
            s.vcpu = vcpu;
        }
    }

    /// Frees a port; returns what it was.
    pub fn free(&mut self, port: Port) -> Slot {
        let Some(s) = self.slots.get_mut(port.0 as usize) else {
            return FREE;
        };
        let old = core::mem::replace(s, FREE);
        if let Binding::Virq(v) = old.binding {
            *self.virq_entry(v, old.vcpu) = None;
        }
        // Shrink past trailing free slots so a long-lived domain that once
        // used many ports gives the memory back.
        while self.slots.len() > 1 && self.slots.last() == Some(&FREE) {
            self.slots.pop();
        }
        old
    }

    /// The port bound to `virq` for `vcpu` (per-vCPU virqs) or for the
    /// domain (others).
    pub fn virq_port(&self, virq: Virq, vcpu: usize) -> Option<Port> {
        if virq.is_per_vcpu() {
            self.vcpu_virqs.get(vcpu)?[virq.raw() as usize]
        } else {
            self.global_virqs[virq.raw() as usize]
        }
    }

    fn virq_entry(&mut self, virq: Virq, vcpu: usize) -> &mut Option<Port> {
        if virq.is_per_vcpu() {
            &mut self.vcpu_virqs[vcpu][virq.raw() as usize]
        } else {
            &mut self.global_virqs[virq.raw() as usize]
        }
    }

    /// Every allocated port with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (Port, Slot)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.binding != Binding::Free)
            .map(|(i, s)| (Port(i as u32), *s))
    }

    /// Allocated ports.
    pub fn count(&self) -> usize {
        self.iter().count()
    }
}
