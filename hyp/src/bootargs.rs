//! The hypervisor's command line (`/chosen` `bootargs`).
//!
//! Public API:
//! - [`BootArgs::parse`]`(&str) -> BootArgs<'_>`; fields `log_level`, `test`,
//!   `dom0_mem_mib`, `slice_us`, `guest_pmu`, `dom0_cmdline` (what follows
//!   `--`);
//!   [`BootArgs::unknown`] for the words to warn about.
//! - [`TestHook`]: `hyp.test=` values used by the integration tests.
//!
//! Parsing runs before the heap exists, so unknown words are kept in a fixed-size
//! list; words beyond its capacity are only counted.
#![forbid(unsafe_code)]

use log::LevelFilter;

use crate::memmap::FixedList;

/// How many unrecognised words are remembered for the warning.
pub const MAX_UNKNOWN: usize = 8;

/// Test behaviour requested with `hyp.test=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestHook {
    /// `hyp.test=fault`: read an unmapped address after boot to exercise the EL2
    /// exception report.
    Fault,
}

/// The parsed command line. Borrows the words it did not understand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootArgs<'a> {
    /// `loglevel=off|error|warn|info|debug|trace`; `Info` when absent.
    pub log_level: LevelFilter,
    /// `hyp.test=...`, if given.
    pub test: Option<TestHook>,
    /// `dom0_mem=<MiB>`: dom0's RAM.
    pub dom0_mem_mib: Option<u64>,
    /// `sched.slice_us=<us>`: the scheduler's time slice.
    pub slice_us: Option<u64>,
    /// `hyp.guest_pmu=1`: guests may read the cycle counter (benchmarks).
    pub guest_pmu: bool,
    /// Everything after a `--` word: dom0's command line (not parsed here).
    pub dom0_cmdline: &'a str,
    unknown: FixedList<&'a str, MAX_UNKNOWN>,
    unknown_dropped: usize,
}

impl<'a> BootArgs<'a> {
    /// Parses whitespace-separated words. Never fails: a word that is not understood
    /// (unknown key, or known key with a bad value) is recorded for a warning and the
    /// default stays in force. A later word overrides an earlier one.
    pub fn parse(cmdline: &'a str) -> Self {
        let mut args = Self {
            log_level: LevelFilter::Info,
            test: None,
            dom0_mem_mib: None,
            slice_us: None,
            guest_pmu: false,
            dom0_cmdline: "",
            unknown: FixedList::new(),
            unknown_dropped: 0,
        };
        // Words after `--` belong to dom0 (like Linux's `--` for init).
        let (ours, dom0) = match cmdline.strip_prefix("--") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => ("", rest),
            _ => split_at_dashes(cmdline).unwrap_or(match cmdline.strip_suffix(" --") {
                Some(head) => (head, ""),
                None => (cmdline, ""),
            }),
        };
        args.dom0_cmdline = dom0.trim();
        let positive = |v: &str| v.parse::<u64>().ok().filter(|&n| n > 0);
        for word in ours.split_ascii_whitespace() {
            let understood = match word.split_once('=') {
                Some(("loglevel", v)) => parse_level(v).map(|l| args.log_level = l).is_some(),
                Some(("dom0_mem", v)) => positive(v).map(|n| args.dom0_mem_mib = Some(n)).is_some(),
                Some(("sched.slice_us", v)) => {
                    positive(v).map(|n| args.slice_us = Some(n)).is_some()
                }
                Some(("hyp.guest_pmu", v @ ("0" | "1"))) => {
                    args.guest_pmu = v == "1";
                    true
                }
                Some(("hyp.test", "fault")) => {
                    args.test = Some(TestHook::Fault);
                    true
                }
                _ => false,
            };
            if !understood && args.unknown.push(word).is_err() {
                args.unknown_dropped += 1;
            }
        }
        args
    }

    /// The words that were not understood, in order (at most [`MAX_UNKNOWN`]).
    pub fn unknown(&self) -> &[&'a str] {
        &self.unknown
    }

    /// How many further unknown words did not fit in [`BootArgs::unknown`].
    pub fn unknown_dropped(&self) -> usize {
        self.unknown_dropped
    }
}

/// `s.split_once(" -- ")`, searching for a `char`: a `&str` pattern would pull
/// core's two-way substring searcher and its panic formatting (about 5 KiB)
/// into the image for this one cold call.
fn split_at_dashes(s: &str) -> Option<(&str, &str)> {
    s.match_indices(' ').find_map(|(i, _)| {
        let (head, tail) = s.split_at_checked(i)?;
        Some((head, tail.strip_prefix(" -- ")?))
    })
}

impl Default for BootArgs<'_> {
    fn default() -> Self {
        Self::parse("")
    }
}

/// Parses a level name exactly as the `log` crate spells it, in lower case.
fn parse_level(v: &str) -> Option<LevelFilter> {
    Some(match v {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_gives_defaults() {
        let a = BootArgs::parse("");
        assert_eq!(a.log_level, LevelFilter::Info);
        assert_eq!(a.test, None);
        assert!(a.unknown().is_empty());
        assert_eq!(a, BootArgs::default());
    }

    #[test]
    fn every_level() {
        for (s, l) in [
            ("off", LevelFilter::Off),
            ("error", LevelFilter::Error),
            ("warn", LevelFilter::Warn),
            ("info", LevelFilter::Info),
            ("debug", LevelFilter::Debug),
            ("trace", LevelFilter::Trace),
        ] {
            let line = format!("loglevel={s}");
            assert_eq!(BootArgs::parse(&line).log_level, l, "{s}");
        }
    }

    #[test]
    fn test_hook_and_unknown_words() {
        let a = BootArgs::parse("  console=ttyAMA0 loglevel=debug\thyp.test=fault  foo\n");
        assert_eq!(a.log_level, LevelFilter::Debug);
        assert_eq!(a.test, Some(TestHook::Fault));
        assert_eq!(a.unknown(), &["console=ttyAMA0", "foo"]);
        assert_eq!(a.unknown_dropped(), 0);
    }

    #[test]
    fn bad_values_are_unknown_and_keep_defaults() {
        let a = BootArgs::parse("loglevel=loud hyp.test=explode loglevel hyp.test= LOGLEVEL=debug");
        assert_eq!(a.log_level, LevelFilter::Info);
        assert_eq!(a.test, None);
        assert_eq!(
            a.unknown(),
            &[
                "loglevel=loud",
                "hyp.test=explode",
                "loglevel",
                "hyp.test=",
                "LOGLEVEL=debug"
            ]
        );
    }

    #[test]
    fn guest_pmu_is_an_opt_in() {
        assert!(!BootArgs::parse("").guest_pmu);
        assert!(BootArgs::parse("hyp.guest_pmu=1").guest_pmu);
        assert!(!BootArgs::parse("hyp.guest_pmu=1 hyp.guest_pmu=0").guest_pmu);
        let bad = BootArgs::parse("hyp.guest_pmu=yes");
        assert!(!bad.guest_pmu);
        assert_eq!(bad.unknown(), ["hyp.guest_pmu=yes"]);
    }

    #[test]
    fn last_word_wins() {
        assert_eq!(
            BootArgs::parse("loglevel=trace loglevel=warn").log_level,
            LevelFilter::Warn
        );
    }

    #[test]
    fn unknown_overflow_is_counted() {
        let a = BootArgs::parse("a b c d e f g h i j k");
        assert_eq!(a.unknown().len(), MAX_UNKNOWN);
        assert_eq!(a.unknown()[7], "h");
        assert_eq!(a.unknown_dropped(), 3);
    }

    #[test]
    fn dom0_words_follow_the_double_dash() {
        let a = BootArgs::parse("loglevel=warn dom0_mem=32 -- dom0.shell x=1");
        assert_eq!((a.log_level, a.dom0_mem_mib), (LevelFilter::Warn, Some(32)));
        assert_eq!(a.dom0_cmdline, "dom0.shell x=1");
        assert!(a.unknown().is_empty(), "dom0's words are not ours");
        assert_eq!(
            BootArgs::parse("-- dom0.cycles=2").dom0_cmdline,
            "dom0.cycles=2"
        );
        assert_eq!(BootArgs::parse("sched.slice_us=500 --").slice_us, Some(500));
        let bad = BootArgs::parse("dom0_mem=0 sched.slice_us=x");
        assert_eq!(
            (bad.dom0_mem_mib, bad.slice_us, bad.unknown().len()),
            (None, None, 2)
        );
    }
}
