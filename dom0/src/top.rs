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
//!
//! The shell's `top` verb shows the same figures and more as a screen in
//! `xl top`'s shape ([`Screen`]): per domain its state, CPU time and share,
//! memory, vCPUs, and the hypervisor's counters of its hypercalls and sent
//! events with the requests dom0's back ends served for it, as totals and
//! per second over the last refresh.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use tern_abi::domctl::{DomainId, DomainInfo};

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
            let per_mille = per_mille(used, interval);
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

/// `used` out of `interval`, in tenths of a percent (0 for an empty interval).
fn per_mille(used: u64, interval: u64) -> u128 {
    if interval == 0 {
        0
    } else {
        u128::from(used) * 1000 / u128::from(interval)
    }
}

/// `count` events over `interval_ns` as a whole number per second.
fn per_second(count: u64, interval_ns: u64) -> u128 {
    if interval_ns == 0 {
        0
    } else {
        u128::from(count) * 1_000_000_000 / u128::from(interval_ns)
    }
}

/// One domain on the `top` screen, as sampled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Its id.
    pub id: u32,
    /// Its name as the shell shows it.
    pub name: String,
    /// `list`'s state letters.
    pub state: [u8; 6],
    /// CPU time used since it was created, in nanoseconds.
    pub cpu_ns: u64,
    /// RAM it holds, in KiB.
    pub mem_kib: u64,
    /// Its vCPUs.
    pub vcpus: u32,
    /// Hypercalls it made (`DomainInfo::hypercalls`).
    pub hypercalls: u64,
    /// Events it sent (`DomainInfo::events_sent`).
    pub events: u64,
    /// Block requests and network frames dom0's back ends served for it.
    pub io: u64,
}

impl Row {
    /// The row of the domain `info` describes; `io` is what dom0's back
    /// ends served for it.
    pub fn of(info: &DomainInfo, io: u64) -> Self {
        Self {
            id: info.domain_id,
            name: crate::format::name(info).into(),
            state: crate::format::state_letters(info),
            cpu_ns: info.cpu_time_ns,
            mem_kib: info.memory_pages * (tern_abi::PAGE_SIZE / 1024),
            vcpus: info.vcpus,
            hypercalls: info.hypercalls,
            events: info.events_sent,
            io,
        }
    }
}

/// The `top` verb's screen: the last sample and when it was taken.
#[derive(Debug)]
pub struct Screen {
    refresh: u64,
    at_ns: u64,
    last: Vec<Row>,
}

/// The column layout of the domain lines (and of their header).
macro_rules! screen_line {
    ($($arg:expr),* $(,)?) => {
        format!(
            "{:<16} {:>4} {:<6} {:>9} {:>6} {:>9} {:>5} {:>10} {:>8} {:>9} {:>7} {:>8} {:>6}",
            $($arg),*
        )
    };
}

impl Screen {
    /// Starts with `rows` sampled at `now_ns`: the first frame's rates are
    /// over the time from then.
    pub fn new(now_ns: u64, rows: Vec<Row>) -> Self {
        Self {
            refresh: 0,
            at_ns: now_ns,
            last: rows,
        }
    }

    /// The header line of the domain table.
    pub fn header() -> String {
        screen_line!(
            "NAME",
            "ID",
            "STATE",
            "CPU(sec)",
            "CPU(%)",
            "MEM(k)",
            "VCPUS",
            "HYPERCALLS",
            "HCALL/s",
            "EVENTS",
            "EVT/s",
            "IO_REQS",
            "IO/s"
        )
    }

    /// The next frame from `rows` sampled at `now_ns`: a title line with
    /// the refresh count, a summary of states, the header, one line per
    /// domain. Shares and rates are over the time since the last frame; a
    /// domain that was not in it shows `-` for them.
    pub fn frame(&mut self, now_ns: u64, rows: Vec<Row>) -> Vec<String> {
        self.refresh += 1;
        let interval = now_ns.saturating_sub(self.at_ns);
        let mut lines = Vec::with_capacity(rows.len() + 3);
        lines.push(format!(
            "tern top - refresh {}, every 1 s; press any key to return",
            self.refresh
        ));
        let count = |letter: u8| rows.iter().filter(|r| r.state.contains(&letter)).count();
        lines.push(format!(
            "{} domains: {} running, {} blocked, {} paused, {} shutdown, {} crashed, {} dying",
            rows.len(),
            count(b'r'),
            count(b'b'),
            count(b'p'),
            count(b's'),
            count(b'c'),
            count(b'd'),
        ));
        lines.push(Self::header());
        for r in &rows {
            let before = self.last.iter().find(|l| l.id == r.id);
            let rate = |now: u64, then: fn(&Row) -> u64| {
                before.map_or_else(
                    || String::from("-"),
                    |b| format!("{}", per_second(now.saturating_sub(then(b)), interval)),
                )
            };
            let share = before.map_or_else(
                || String::from("-"),
                |b| {
                    let pm = per_mille(r.cpu_ns.saturating_sub(b.cpu_ns), interval);
                    format!("{}.{}", pm / 10, pm % 10)
                },
            );
            lines.push(screen_line!(
                r.name,
                r.id,
                core::str::from_utf8(&r.state).unwrap_or("------"),
                crate::format::seconds(r.cpu_ns),
                share,
                r.mem_kib,
                r.vcpus,
                r.hypercalls,
                rate(r.hypercalls, |b| b.hypercalls),
                r.events,
                rate(r.events, |b| b.events),
                r.io,
                rate(r.io, |b| b.io),
            ));
        }
        self.at_ns = now_ns;
        self.last = rows;
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

    fn row(id: u32, name: &str, cpu_ns: u64, counters: [u64; 3]) -> Row {
        Row {
            id,
            name: name.to_string(),
            state: *b"r-----",
            cpu_ns,
            mem_kib: 65536,
            vcpus: 1,
            hypercalls: counters[0],
            events: counters[1],
            io: counters[2],
        }
    }

    fn columns(line: &str) -> Vec<&str> {
        line.split_whitespace().collect()
    }

    #[test]
    fn screen_shows_totals_shares_and_rates() {
        let mut s = Screen::new(0, vec![row(1, "a", 0, [100, 10, 0])]);
        let f = s.frame(
            2_000_000_000,
            vec![
                row(1, "a", 500_000_000, [300, 30, 8]),
                Row {
                    state: *b"-b----",
                    ..row(2, "b", 7, [1, 0, 0])
                },
            ],
        );
        assert_eq!(f.len(), 5);
        assert!(f[0].starts_with("tern top - refresh 1,"), "{}", f[0]);
        assert_eq!(
            f[1],
            "2 domains: 1 running, 1 blocked, 0 paused, 0 shutdown, 0 crashed, 0 dying"
        );
        assert_eq!(
            columns(&f[2]),
            [
                "NAME",
                "ID",
                "STATE",
                "CPU(sec)",
                "CPU(%)",
                "MEM(k)",
                "VCPUS",
                "HYPERCALLS",
                "HCALL/s",
                "EVENTS",
                "EVT/s",
                "IO_REQS",
                "IO/s"
            ]
        );
        // 0.5 s of 2 s = 25%; 200 hypercalls in 2 s = 100/s; 20 events =
        // 10/s; 8 requests = 4/s.
        assert_eq!(
            columns(&f[3]),
            [
                "a", "1", "r-----", "0.5", "25.0", "65536", "1", "300", "100", "30", "10", "8", "4"
            ]
        );
        // New since the last frame: totals, no rates.
        assert_eq!(
            columns(&f[4]),
            [
                "b", "2", "-b----", "0.0", "-", "65536", "1", "1", "-", "0", "-", "0", "-"
            ]
        );
        // The next frame measures from this one; b has its rates now.
        let f = s.frame(3_000_000_000, vec![row(2, "b", 1_000_000_007, [11, 2, 3])]);
        assert!(f[0].starts_with("tern top - refresh 2,"));
        assert_eq!(
            columns(&f[3])[3..],
            ["1.0", "100.0", "65536", "1", "11", "10", "2", "2", "3", "3"]
        );
        // The header and the lines share the column ends.
        let h = Screen::header();
        let end = h.find("HYPERCALLS").unwrap() + "HYPERCALLS".len();
        assert_eq!(f[3].as_bytes()[end - 1], b'1');
    }

    #[test]
    fn row_of_a_domain_info() {
        use zerocopy::FromZeros;
        let mut info = DomainInfo::new_zeroed();
        info.domain_id = 3;
        info.state = tern_abi::domctl::DomainState::Blocked.raw();
        info.vcpus = 2;
        info.memory_pages = 256;
        info.cpu_time_ns = 42;
        info.hypercalls = 7;
        info.events_sent = 5;
        tern_abi::strings::set_field(&mut info.name, b"web").unwrap();
        let r = Row::of(&info, 9);
        assert_eq!(
            r,
            Row {
                id: 3,
                name: "web".to_string(),
                state: *b"-b----",
                cpu_ns: 42,
                mem_kib: 1024,
                vcpus: 2,
                hypercalls: 7,
                events: 5,
                io: 9,
            }
        );
    }

    #[test]
    fn screen_survives_a_frame_without_time() {
        let mut s = Screen::new(5, vec![row(1, "a", 0, [0; 3])]);
        let f = s.frame(5, vec![row(1, "a", 9, [4, 4, 4])]);
        assert_eq!(columns(&f[3])[4], "0.0");
        assert_eq!(columns(&f[3])[8], "0");
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
