//! Which vCPU runs where, and for how long: a proportional-share scheduler in
//! the spirit of Xen's credit scheduler. This is policy only (host-tested);
//! the arch layer does the switching, the timer and the IPIs.
//!
//! # Policy
//! - Every domain has a **weight** (`1..=65535`, default 256): when CPUs are
//!   contended, domains get CPU time in proportion to their weights, split
//!   evenly among their vCPUs that want to run. Time a domain does not use goes
//!   to the others (work-conserving).
//! - A domain may have a **cap**, in percent of one CPU (0 = none, at most
//!   100 × its vCPUs): a ceiling per accounting period even when CPUs idle.
//!   A vCPU whose domain used its cap is *parked* until the next period.
//! - Every accounting **period** (default 30 ms) hands out credit by weight
//!   (`account`). Running costs credit tick for tick. Each CPU has a **run
//!   queue**; it picks by priority — BOOST (just woken, with credit left) >
//!   UNDER (credit left) > OVER (used more than its share) — then most
//!   credit, then longest waiting. It runs that vCPU for one **time slice**
//!   (default 10 ms; less if a cap leaves less).
//! - **Load balancing**: a CPU with nothing better than an OVER vCPU steals a
//!   better one from another queue (from an idle CPU: anything), highest
//!   priority first, from the longest queue. A woken vCPU goes to the least
//!   loaded CPU of its **affinity**; a vCPU only ever runs on CPUs in its
//!   affinity.
//! - Blocked vCPUs are on no queue and cost nothing. There is no periodic
//!   tick: a CPU gets a one-shot deadline (`Decision::run_until`), and an idle
//!   CPU gets [`NEVER`] (sleep in WFI until an IPI) unless parked vCPUs
//!   come back at the period's end.
//!
//! Known limit (shared with Xen credit1): weights are exact when the
//! contending vCPUs can use every CPU; with affinities that confine several
//! domains to fewer CPUs than the machine has, they tend to equal shares.
//!
//! # How the hypervisor drives it
//! All times are counter ticks (`CNTPCT_EL0`); everything is under the one
//! hypervisor lock.
//! - Boot: `Scheduler::new(cpus, SchedConfig::new(ticks_per_s))`.
//! - Domain created: `add_domain(dom, DomainParams { weight, cap }, vcpus,
//!   affinity)`: it starts paused with every vCPU blocked.
//! - vCPU becomes runnable (entry set, `vcpu_up`, event for a blocked vCPU):
//!   `wake(r)`; IPI the CPU it answers (if it is another CPU).
//! - Domain unpaused / paused (also on shutdown and crash):
//!   `unpause_domain` / `pause_domain`; IPI the CPUs in the answer.
//! - Domain destroyed: `remove_domain`; IPI the CPUs in the answer.
//! - Hypercall block / `vcpu_down`: `block(r)`, then `schedule(cpu, now,
//!   Some((r, false)))` (for the running `r` on its own CPU in the same
//!   trap, that `schedule` alone does what `block` would). Hypercall yield: `yield_now(r)`, then `schedule(cpu,
//!   now, Some((r, true)))`.
//! - EL2 physical timer fired or IPI received: `schedule(cpu, now,
//!   current.map(|r| (r, true)))`. The flag says whether the vCPU can run
//!   *now* (false: it blocked, went down, its domain stopped); the scheduler
//!   keeps running a vCPU only if it also still considers it awake and its
//!   domain unpaused.
//! - After every `schedule`: run `next` (or WFI if `None`), arm the timer for
//!   `run_until` (disarm it for [`NEVER`]), IPI the CPUs in `kick`.
//! - dom0 control: `set_weight`, `set_cap`, `set_affinity` (map
//!   [`SchedError`] with `tern_abi::Error::from`); IPI the CPUs answered.
//! - `list` / `top`: `domain_time`, `vcpu_time`, `cpu_busy_time`.
#![forbid(unsafe_code)]

mod account;
mod control;
pub mod cpumask;
pub mod credit;
mod handoff;
#[cfg(test)]
mod handoff_tests;
pub mod params;
mod pick;

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use tern_abi::domctl::DomainId;

pub use cpumask::CpuMask;
pub use credit::Scheduler;
pub use params::{Decision, DomainParams, NEVER, Prio, SchedConfig, SchedError};

use crate::domain::table::DomainTable;

/// A vCPU, by domain and index.
pub type VcpuRef = (DomainId, usize);

/// The placeholder policy the credit scheduler replaces: the next runnable
/// vCPU after `current` in (domain id, vCPU index) order (which is itself
/// chosen again if it is the only runnable one), or `None` if nothing can run.
/// vCPUs on CPUs other than `cpu` are skipped.
pub fn pick_next(domains: &DomainTable, cpu: usize, current: Option<VcpuRef>) -> Option<VcpuRef> {
    let mut all = domains.iter_from(0).flat_map(|d| {
        (0..d.vcpus.len())
            .filter(|&v| d.vcpu_runnable(v) && d.vcpus[v].on_cpu.is_none_or(|c| c == cpu))
            .map(move |v| (d.id(), v))
    });
    let Some((cd, cv)) = current else {
        return all.next();
    };
    let mut first = None;
    for r in all {
        first.get_or_insert(r);
        if (r.0.0, r.1) > (cd.0, cv) {
            return Some(r);
        }
    }
    first
}
