//! `dom0.top=<ms>`: what each domain dom0 started got of the CPUs, every
//! period, like `xl top`. dom0 samples the hypervisor's per-domain CPU time
//! (`DomainInfo::cpu_time_ns`) at the start and at the end of each period
//! and prints, per domain, the difference against the period's length on
//! dom0's own clock. 100% is one whole physical CPU.
//!
//! The lines have a fixed form for tools and tests to parse:
//!
//! ```text
//! top: period 2 of 1000000000 ns
//! top: burn-a (1) 142857142 ns = 14.2%
//! ```
//!
//! A domain is reported only for periods it lived through from start to end.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use tern_abi::domctl::DomainId;

/// One domain's CPU time at an instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The domain.
    pub id: DomainId,
    /// Its name, for the report.
    pub name: String,
    /// CPU time its vCPUs consumed since it was created, in nanoseconds.
    pub cpu_ns: u64,
}

/// The CPU-time reporter: the last samples and when they were taken.
#[derive(Debug)]
pub struct Top {
    period: u64,
    at_ns: u64,
    last: Vec<Sample>,
}

impl Top {
    /// Starts measuring at `now_ns` (dom0's clock) from `samples`.
    pub fn new(now_ns: u64, samples: Vec<Sample>) -> Self {
        Self {
            period: 0,
            at_ns: now_ns,
            last: samples,
        }
    }

    /// Ends a period at `now_ns` with `samples` (taken then) and returns its
    /// report lines; the next period starts now.
    pub fn report(&mut self, now_ns: u64, samples: Vec<Sample>) -> Vec<String> {
        self.period += 1;
        let interval = now_ns.saturating_sub(self.at_ns);
        let mut lines = Vec::with_capacity(samples.len() + 1);
        lines.push(format!("top: period {} of {interval} ns", self.period));
        for s in &samples {
            let Some(before) = self.last.iter().find(|l| l.id == s.id) else {
                continue;
            };
            let used = s.cpu_ns.saturating_sub(before.cpu_ns);
            let per_mille = if interval == 0 {
                0
            } else {
                u128::from(used) * 1000 / u128::from(interval)
            };
            lines.push(format!(
                "top: {} ({}) {used} ns = {}.{}%",
                s.name,
                s.id.0,
                per_mille / 10,
                per_mille % 10
            ));
        }
        self.at_ns = now_ns;
        self.last = samples;
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn s(id: u32, name: &str, cpu_ns: u64) -> Sample {
        Sample {
            id: DomainId(id),
            name: name.to_string(),
            cpu_ns,
        }
    }

    #[test]
    fn reports_differences_per_period() {
        let mut top = Top::new(1_000, vec![s(1, "a", 100), s(2, "b", 0)]);
        let lines = top.report(1_001_000, vec![s(1, "a", 250_100), s(2, "b", 1_000_000)]);
        assert_eq!(
            lines,
            [
                "top: period 1 of 1000000 ns",
                "top: a (1) 250000 ns = 25.0%",
                "top: b (2) 1000000 ns = 100.0%",
            ]
        );
        // b is gone, c is new: neither lived through period 2.
        let lines = top.report(2_001_000, vec![s(1, "a", 250_100), s(3, "c", 7)]);
        assert_eq!(
            lines,
            ["top: period 2 of 1000000 ns", "top: a (1) 0 ns = 0.0%"]
        );
        let lines = top.report(3_001_000, vec![s(3, "c", 1_999_007)]);
        assert_eq!(lines[1], "top: c (3) 1999000 ns = 199.9%");
    }

    #[test]
    fn empty_period_divides_by_nothing() {
        let mut top = Top::new(5, vec![s(1, "a", 0)]);
        assert_eq!(
            top.report(5, vec![s(1, "a", 9)])[1],
            "top: a (1) 9 ns = 0.0%"
        );
    }
}
