//! The credit scheduler behind `domctl sched_get`/`sched_set`/`vcpu_affinity`.

use tern_abi::domctl::DomainId;

use super::{CpuMask, Scheduler};
use crate::evtchn::sched_ctl::{SchedControl, SchedParams};

impl SchedControl for Scheduler {
    fn params(&self, dom: DomainId) -> SchedParams {
        self.params(dom)
            .map(|p| SchedParams {
                weight: p.weight,
                cap: p.cap,
            })
            .unwrap_or_default()
    }

    fn set_params(&mut self, dom: DomainId, params: SchedParams) {
        // The handler validated both values against the ABI's limits, which
        // are the scheduler's; a domain it does not know is being created or
        // destroyed and has nothing to update.
        let _ = self.set_weight(dom, params.weight);
        let _ = self.set_cap(dom, params.cap);
    }

    fn affinity(&self, dom: DomainId, vcpu: usize) -> u64 {
        self.affinity((dom, vcpu)).map_or(0, |m| m.0)
    }

    fn set_affinity(&mut self, dom: DomainId, vcpu: usize, cpus: u64) {
        let _ = self.set_affinity((dom, vcpu), CpuMask(cpus));
    }

    fn forget(&mut self, _dom: DomainId) {
        // `Hypervisor::destroy_domain` removes the domain from the scheduler.
    }
}
