//! The wall clock and the time pages that publish it (`time_op
//! init_time_page`, `domctl set_wallclock`, `tern_abi::time::TimeInfo`).
//!
//! The hypervisor keeps one wall clock, as "`sec`.`nsec` at physical counter
//! value `at`". Each domain's page states it against the domain's own
//! virtual counter (physical minus the domain's offset), moved forward to
//! the domain's creation if the clock was set before the domain existed, so
//! `wall_counter` is never negative.

use core::mem::offset_of;

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::time::{NS_PER_S, TimeInfo, ticks_to_ns};

use super::Events;
use crate::addr::PhysAddr;
use crate::physmem::PhysMem;

/// The wall clock: `sec`.`nsec` since the Unix epoch at physical counter
/// value `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wallclock {
    /// Whole seconds.
    pub sec: u64,
    /// Nanoseconds, below one second.
    pub nsec: u64,
    /// Physical counter value.
    pub at: u64,
}

impl Wallclock {
    /// The same instant expressed at physical counter value `at >= self.at`,
    /// with `freq` counter ticks per second.
    pub fn at(self, at: u64, freq: u64) -> Self {
        let ns = self.nsec as u128 + ticks_to_ns(at.saturating_sub(self.at), freq) as u128;
        Self {
            sec: self.sec.saturating_add((ns / u128::from(NS_PER_S)) as u64),
            nsec: (ns % u128::from(NS_PER_S)) as u64,
            at,
        }
    }
}

impl Events {
    /// `domctl set_wallclock`: `sec`.`nsec` at `dom0`'s virtual counter value
    /// `counter`. Rewrites every registered time page.
    pub fn set_wallclock(
        &mut self,
        mem: &dyn PhysMem,
        setter: DomainId,
        sec: u64,
        nsec: u64,
        counter: u64,
        freq: u64,
    ) -> Result<(), Error> {
        if nsec >= NS_PER_S {
            return Err(Error::InvalidArgument);
        }
        let at = counter.saturating_add(self.counter_offset(setter));
        self.wallclock = Some(Wallclock { sec, nsec, at });
        let doms: alloc::vec::Vec<DomainId> = self
            .domains
            .iter()
            .filter(|(_, d)| d.time_page.is_some())
            .map(|(&id, _)| id)
            .collect();
        for dom in doms {
            self.publish_time(mem, dom, freq);
        }
        Ok(())
    }

    /// The wall clock, if dom0 set it.
    pub fn wallclock(&self) -> Option<Wallclock> {
        self.wallclock
    }

    /// `time_op init_time_page`: `dom`'s time page is at `page` (64-byte
    /// aligned, so inside one page of its RAM: the caller checked). Fills it at once.
    pub fn init_time_page(&mut self, mem: &dyn PhysMem, dom: DomainId, page: PhysAddr, freq: u64) {
        self.dom(dom).time_page = Some(page);
        self.publish_time(mem, dom, freq);
    }

    /// Writes `dom`'s time page under its sequence lock. Each store is a
    /// release store, so the guest sees them in program order: odd version,
    /// fields, even version.
    fn publish_time(&mut self, mem: &dyn PhysMem, dom: DomainId, freq: u64) {
        let clock = self.wallclock;
        let d = self.dom(dom);
        let Some(base) = d.time_page else {
            return;
        };
        let offset = d.counter_offset;
        let (sec, nsec, counter) = match clock {
            Some(w) => {
                let w = w.at(w.at.max(offset), freq);
                (w.sec, w.nsec, w.at - offset)
            }
            None => (0, 0, 0),
        };
        let field = |o: usize| PhysAddr(base.0 + o as u64);
        let v = d.time_version;
        mem.store_u64(field(offset_of!(TimeInfo, version)), v + 1);
        mem.store_u64(field(offset_of!(TimeInfo, counter_freq)), freq);
        mem.store_u64(field(offset_of!(TimeInfo, wall_sec)), sec);
        mem.store_u64(field(offset_of!(TimeInfo, wall_nsec)), nsec);
        mem.store_u64(field(offset_of!(TimeInfo, wall_counter)), counter);
        for r in 0..3 {
            mem.store_u64(field(offset_of!(TimeInfo, reserved) + 8 * r), 0);
        }
        mem.store_u64(field(offset_of!(TimeInfo, version)), v + 2);
        d.time_version = v + 2;
    }
}
