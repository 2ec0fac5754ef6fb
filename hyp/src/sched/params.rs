//! The scheduler's configuration, per-domain parameters, errors and decisions.

use core::fmt;

use super::VcpuRef;
use super::cpumask::CpuMask;

/// A `run_until` that never comes: the CPU needs no timer interrupt.
pub const NEVER: u64 = u64::MAX;

/// Default time slice: how long a vCPU runs before the scheduler looks again
/// (Xen's credit scheduler uses the same 10 ms).
pub const DEFAULT_SLICE_US: u32 = 10_000;
/// Default accounting period: how often credit is handed out and caps are
/// renewed (Xen: 30 ms, three slices).
pub const DEFAULT_PERIOD_US: u32 = 30_000;
/// Shortest slice accepted: below this, switching costs would dominate.
pub const MIN_SLICE_US: u32 = 100;
/// Longest period accepted: credit and caps would react too slowly past it.
pub const MAX_PERIOD_US: u32 = 1_000_000;

/// Default weight of a domain.
pub const DEFAULT_WEIGHT: u16 = 256;
/// Cap percentage per vCPU: a domain's cap is at most this times its vCPUs.
pub const CAP_PER_VCPU: u32 = 100;

/// How time is cut up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedConfig {
    /// Counter frequency (`CNTFRQ_EL0`): all times the scheduler sees and
    /// returns are counter ticks.
    pub ticks_per_s: u64,
    /// Time slice in microseconds ([`DEFAULT_SLICE_US`]).
    pub slice_us: u32,
    /// Accounting period in microseconds ([`DEFAULT_PERIOD_US`]); at least one
    /// slice.
    pub period_us: u32,
}

impl SchedConfig {
    /// The default slice and period for a counter running at `ticks_per_s`.
    pub const fn new(ticks_per_s: u64) -> Self {
        Self {
            ticks_per_s,
            slice_us: DEFAULT_SLICE_US,
            period_us: DEFAULT_PERIOD_US,
        }
    }

    /// `us` microseconds in counter ticks.
    pub const fn ticks(&self, us: u32) -> u64 {
        (self.ticks_per_s as u128 * us as u128 / 1_000_000) as u64
    }

    /// (slice, period) in ticks, if the configuration is usable: the slice at
    /// least [`MIN_SLICE_US`] and one tick, the period between one slice and
    /// [`MAX_PERIOD_US`].
    pub(super) fn checked(&self) -> Result<(u64, u64), SchedError> {
        let (slice, period) = (self.ticks(self.slice_us), self.ticks(self.period_us));
        if self.slice_us < MIN_SLICE_US
            || self.period_us > MAX_PERIOD_US
            || slice == 0
            || period < slice
        {
            return Err(SchedError::BadConfig);
        }
        Ok((slice, period))
    }
}

/// A domain's share of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainParams {
    /// Relative share when CPUs are contended, `1..=65535`
    /// ([`DEFAULT_WEIGHT`]). A domain with twice the weight gets twice the CPU
    /// time; it is split evenly among the domain's vCPUs that want to run.
    pub weight: u32,
    /// Ceiling in percent of one CPU per accounting period, enforced even when
    /// CPUs are idle; 0 = none. At most 100 × the domain's vCPUs.
    pub cap: u32,
}

impl Default for DomainParams {
    fn default() -> Self {
        Self {
            weight: u32::from(DEFAULT_WEIGHT),
            cap: 0,
        }
    }
}

/// Why a scheduler operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// The configuration has a slice or period out of range.
    BadConfig,
    /// More CPUs than a [`CpuMask`] can name, or none.
    BadCpuCount,
    /// The domain is unknown to the scheduler.
    NoSuchDomain,
    /// The domain is already known.
    Exists,
    /// The vCPU is unknown to the scheduler.
    NoSuchVcpu,
    /// A domain with no vCPUs.
    BadVcpuCount,
    /// A weight outside `1..=65535`.
    BadWeight,
    /// A cap above 100 × the domain's vCPUs.
    BadCap,
    /// An affinity with no CPU the scheduler drives.
    BadAffinity,
}

impl From<SchedError> for tern_abi::Error {
    fn from(e: SchedError) -> Self {
        match e {
            SchedError::NoSuchDomain => Self::NoSuchDomain,
            SchedError::NoSuchVcpu => Self::NotFound,
            SchedError::Exists => Self::Exists,
            SchedError::BadConfig
            | SchedError::BadCpuCount
            | SchedError::BadVcpuCount
            | SchedError::BadWeight
            | SchedError::BadCap
            | SchedError::BadAffinity => Self::InvalidArgument,
        }
    }
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::BadConfig => "time slice or period out of range",
            Self::BadCpuCount => "bad CPU count",
            Self::NoSuchDomain => "no such domain",
            Self::Exists => "domain already scheduled",
            Self::NoSuchVcpu => "no such vCPU",
            Self::BadVcpuCount => "a domain needs at least one vCPU",
            Self::BadWeight => "weight must be 1..=65535",
            Self::BadCap => "cap above 100% per vCPU",
            Self::BadAffinity => "affinity names no usable CPU",
        };
        f.write_str(s)
    }
}

/// Priority of a queued vCPU: higher runs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prio {
    /// Used more than its credit this period: runs only when nothing better
    /// wants the CPU (this is what keeps the scheduler work-conserving).
    Over,
    /// Has credit left.
    Under,
    /// Just woken from block with credit left: runs ahead of everyone for
    /// low wake-up latency, until it is next descheduled.
    Boost,
}

/// What a physical CPU does next, from [`super::Scheduler::schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The vCPU to run, or `None` to idle (WFI) until `run_until` or an IPI.
    pub next: Option<VcpuRef>,
    /// Counter tick at which to call `schedule` again (arm the EL2 physical
    /// timer for it); [`NEVER`] for no timer.
    pub run_until: u64,
    /// Other CPUs that must call `schedule` soon (send them an IPI): work was
    /// put on their queue while they idle.
    pub kick: CpuMask,
}
