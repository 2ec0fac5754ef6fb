//! The hypervisor's side of a guest's event page (`tern_abi::evtchn::EventPage`):
//! atomic bit operations on the words of a page of the guest's RAM, which the
//! guest changes concurrently from its own vCPUs.

use tern_abi::evtchn::{EventPage, Port};

use crate::addr::PhysAddr;
use crate::physmem::PhysMem;

/// A registered event page: the physical address of its first byte.
#[derive(Clone, Copy)]
pub struct PageRef<'a> {
    /// Access to physical memory.
    pub mem: &'a dyn PhysMem,
    /// The page (4 KiB aligned, inside the owner's RAM).
    pub base: PhysAddr,
}

impl PageRef<'_> {
    fn at(&self, offset: u64) -> PhysAddr {
        PhysAddr(self.base.0 + offset)
    }

    /// Sets `port`'s pending bit; whether it was clear before.
    pub fn set_pending(&self, port: Port) -> bool {
        let old = self
            .mem
            .fetch_or_u64(self.at(EventPage::pending_offset(port.word())), port.bit());
        old & port.bit() == 0
    }

    /// Clears `port`'s pending bit.
    pub fn clear_pending(&self, port: Port) {
        self.mem
            .fetch_and_u64(self.at(EventPage::pending_offset(port.word())), !port.bit());
    }

    /// Whether `port` is pending.
    pub fn is_pending(&self, port: Port) -> bool {
        self.mem
            .load_u64(self.at(EventPage::pending_offset(port.word())))
            & port.bit()
            != 0
    }

    /// Whether `port` is masked.
    pub fn is_masked(&self, port: Port) -> bool {
        self.mem
            .load_u64(self.at(EventPage::mask_offset(port.word())))
            & port.bit()
            != 0
    }

    /// Clears `port`'s mask bit.
    pub fn clear_mask(&self, port: Port) {
        self.mem
            .fetch_and_u64(self.at(EventPage::mask_offset(port.word())), !port.bit());
    }

    /// Sets the selector bit of `port`'s word for `vcpu`; whether it was
    /// clear before.
    pub fn set_selector(&self, vcpu: usize, port: Port) -> bool {
        let bit = 1u64 << port.word();
        let old = self
            .mem
            .fetch_or_u64(self.at(EventPage::pending_sel_offset(vcpu)), bit);
        old & bit == 0
    }

    /// Sets `vcpu`'s `upcall_pending`; whether it was 0 before.
    pub fn set_upcall(&self, vcpu: usize) -> bool {
        self.mem
            .fetch_or_u64(self.at(EventPage::upcall_pending_offset(vcpu)), 1)
            == 0
    }

    /// Whether `vcpu`'s `upcall_pending` is set.
    pub fn upcall_pending(&self, vcpu: usize) -> bool {
        self.mem
            .load_u64(self.at(EventPage::upcall_pending_offset(vcpu)))
            != 0
    }

    /// Steps 3 and 4 of delivery (`specs/hypercalls.md`, `evtchn_op`) for a
    /// pending, unmasked port: the selector bit, then `upcall_pending`.
    /// Whether the upcall must be raised (it was not pending).
    pub fn signal(&self, vcpu: usize, port: Port) -> bool {
        self.set_selector(vcpu, port) && self.set_upcall(vcpu)
    }
}
