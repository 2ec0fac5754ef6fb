//! What `expect` looks for in a console line.

use regex_lite::Regex;

/// The result of a successful `expect`: the whole console line and, for a
/// regex, its capture groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The matched console line, without its line ending.
    pub line: String,
    /// Capture groups; index 0 is the whole match. Empty for plain strings.
    pub groups: Vec<Option<String>>,
}

impl Match {
    /// Capture group `i`, or `""` if it did not participate.
    ///
    /// # Panics
    /// If the pattern has fewer groups: that is a bug in the test.
    pub fn group(&self, i: usize) -> &str {
        self.groups[i].as_deref().unwrap_or("")
    }
}

/// Something a console line can be matched against.
pub trait Pattern {
    /// Returns the match if `line` matches.
    fn match_line(&self, line: &str) -> Option<Match>;
    /// How the pattern is shown in errors.
    fn describe(&self) -> String;
    /// Whether a line still being printed may match. True for plain strings
    /// (a prompt has no newline); false for regexes, whose captures could
    /// stop short (`0x8` of `0x80000000`).
    fn partial_ok(&self) -> bool {
        false
    }
}

/// A plain string matches every line that contains it.
impl Pattern for str {
    fn match_line(&self, line: &str) -> Option<Match> {
        line.contains(self).then(|| Match {
            line: line.to_owned(),
            groups: Vec::new(),
        })
    }
    fn describe(&self) -> String {
        format!("{self:?}")
    }
    fn partial_ok(&self) -> bool {
        true
    }
}

impl Pattern for String {
    fn match_line(&self, line: &str) -> Option<Match> {
        self.as_str().match_line(line)
    }
    fn describe(&self) -> String {
        self.as_str().describe()
    }
    fn partial_ok(&self) -> bool {
        true
    }
}

impl Pattern for Regex {
    fn match_line(&self, line: &str) -> Option<Match> {
        self.captures(line).map(|c| Match {
            line: line.to_owned(),
            groups: c.iter().map(|g| g.map(|g| g.as_str().to_owned())).collect(),
        })
    }
    fn describe(&self) -> String {
        format!("/{}/", self.as_str())
    }
}

impl<T: Pattern + ?Sized> Pattern for &T {
    fn match_line(&self, line: &str) -> Option<Match> {
        (**self).match_line(line)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn partial_ok(&self) -> bool {
        (**self).partial_ok()
    }
}

/// Compiles a regex for [`Pattern`] use.
///
/// # Panics
/// If `pattern` is not a valid regex: that is a bug in the test.
pub fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad regex {pattern:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_and_regex() {
        assert!(
            "cpu 1"
                .match_line("[ 0.1] cpu0 INFO cpu 1 online")
                .is_some()
        );
        assert!("cpu 2".match_line("cpu 1 online").is_none());
        let m = re(r"gic: v(\d)").match_line("x gic: v3 dist").unwrap();
        assert_eq!(m.group(1), "3");
        assert_eq!(m.group(0), "gic: v3");
        assert_eq!(m.line, "x gic: v3 dist");
    }
}
