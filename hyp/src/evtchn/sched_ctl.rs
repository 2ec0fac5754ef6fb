//! What `domctl sched_get`, `sched_set` and `vcpu_affinity` ask of the
//! scheduler, as a trait: the hypercall handlers validate the arguments and
//! call it; the scheduler implements it.

use tern_abi::domctl::{DomainId, SCHED_WEIGHT_DEFAULT};

/// A domain's scheduling parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedParams {
    /// Share of contended CPU time, `1..=SCHED_WEIGHT_MAX`.
    pub weight: u32,
    /// Most CPU time, in percent of one CPU; 0 = no cap.
    pub cap: u32,
}

impl Default for SchedParams {
    fn default() -> Self {
        Self {
            weight: SCHED_WEIGHT_DEFAULT as u32,
            cap: 0,
        }
    }
}

/// Every physical CPU: the affinity of a vCPU nobody restricted.
pub const ALL_CPUS: u64 = u64::MAX;

/// The scheduler, as domain control sees it. Arguments are already
/// validated: the domain exists, the vCPU index is in range, the weight and
/// cap are in their ABI ranges, the mask holds an online CPU.
pub trait SchedControl: Send {
    /// `dom`'s parameters ([`SchedParams::default`] if never set).
    fn params(&self, dom: DomainId) -> SchedParams;
    /// Sets `dom`'s parameters; they apply from the next scheduling decision.
    fn set_params(&mut self, dom: DomainId, params: SchedParams);
    /// The physical CPUs vCPU `vcpu` of `dom` may run on ([`ALL_CPUS`] by
    /// default).
    fn affinity(&self, dom: DomainId, vcpu: usize) -> u64;
    /// Restricts vCPU `vcpu` of `dom` to the CPUs in `cpus`.
    fn set_affinity(&mut self, dom: DomainId, vcpu: usize, cpus: u64);
    /// `dom` was destroyed: forget it.
    fn forget(&mut self, dom: DomainId);
}
