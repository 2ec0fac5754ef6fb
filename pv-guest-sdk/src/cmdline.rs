//! The domain command line: whitespace-separated words, each either a flag
//! (`verbose`) or `key=value` (`count=5`, `addr=0x4800_0000`).

/// A parsed view of a command line; borrows the text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cmdline<'a> {
    text: &'a str,
}

impl<'a> Cmdline<'a> {
    /// Wraps `text` (no copying; parsing happens on lookup).
    pub const fn new(text: &'a str) -> Self {
        Self { text }
    }

    /// The whole command line as given.
    pub const fn as_str(&self) -> &'a str {
        self.text
    }

    /// Every word as `(key, value)`; flags have no value.
    pub fn args(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.text
            .split_ascii_whitespace()
            .map(|word| match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word, None),
            })
    }

    /// The value of the last `key=value` for `key` (later words override).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.args()
            .filter(|(k, _)| *k == key)
            .filter_map(|(_, v)| v)
            .last()
    }

    /// Whether `key` appears, as a flag or with a value.
    pub fn has(&self, key: &str) -> bool {
        self.args().any(|(k, _)| k == key)
    }

    /// The value of `key` as a number (see [`parse_u64`]).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(parse_u64)
    }
}

/// Parses a decimal or `0x` hexadecimal number; `_` separators are allowed,
/// as in Rust literals (`0x4000_0000`).
pub fn parse_u64(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(d))?;
        any = true;
    }
    any.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_values() {
        let c = Cmdline::new("  count=5 verbose addr=0x4800_0000 ");
        assert_eq!(c.get("count"), Some("5"));
        assert_eq!(c.get_u64("count"), Some(5));
        assert_eq!(c.get_u64("addr"), Some(0x4800_0000));
        assert!(c.has("verbose"));
        assert_eq!(c.get("verbose"), None);
        assert!(!c.has("missing"));
        assert_eq!(c.args().count(), 3);
    }

    #[test]
    fn last_value_wins() {
        let c = Cmdline::new("n=1 n=2");
        assert_eq!(c.get("n"), Some("2"));
    }

    #[test]
    fn empty_line() {
        let c = Cmdline::new("");
        assert_eq!(c.args().count(), 0);
        assert_eq!(c.get("x"), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("1_000"), Some(1000));
        assert_eq!(parse_u64("0XfF"), Some(255));
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("12a"), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("0x1_0000_0000_0000_0000"), None);
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
    }
}
