//! What dom0 keeps of one domain's console output: the most recent
//! [`HISTORY`] bytes (for `console <Domain>` to show first) and the line
//! being assembled (printed prefixed when complete).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Bytes of a domain's most recent output dom0 keeps.
pub const HISTORY: usize = 4096;
/// A line longer than this is printed in pieces (a domain that never ends
/// its lines cannot make dom0 hold more).
pub const LINE_MAX: usize = 256;

/// One domain's output state.
#[derive(Debug, Default)]
pub struct Output {
    history: VecDeque<u8>,
    line: Vec<u8>,
}

impl Output {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `bytes` from the domain: keeps them in the history and calls
    /// `line` with every line completed (without its `\n`; a `\r` before it
    /// is dropped) or grown to [`LINE_MAX`].
    pub fn feed(&mut self, bytes: &[u8], line: &mut impl FnMut(&[u8])) {
        self.remember(bytes);
        for &b in bytes {
            if b == b'\n' {
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                line(&self.line);
                self.line.clear();
                continue;
            }
            self.line.push(b);
            if self.line.len() == LINE_MAX {
                line(&self.line);
                self.line.clear();
            }
        }
    }

    /// Takes `bytes` printed elsewhere (the hypervisor assembles the
    /// lines): kept in the history only.
    pub fn keep(&mut self, bytes: &[u8]) {
        self.remember(bytes);
    }

    /// Takes `bytes` shown live on an attached terminal: kept in the
    /// history only. The line being assembled is dropped (it was shown).
    pub fn feed_attached(&mut self, bytes: &[u8]) {
        self.remember(bytes);
        self.line.clear();
    }

    /// Hands out the unfinished line, if any (the domain is going away).
    pub fn flush(&mut self, line: &mut impl FnMut(&[u8])) {
        if !self.line.is_empty() {
            line(&self.line);
            self.line.clear();
        }
    }

    /// The most recent output, oldest byte first.
    pub fn history(&self) -> Vec<u8> {
        self.history.iter().copied().collect()
    }

    fn remember(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(HISTORY)..];
        let over = (self.history.len() + tail.len()).saturating_sub(HISTORY);
        self.history.drain(..over);
        self.history.extend(tail);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    fn lines(out: &mut Output, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for c in chunks {
            out.feed(c, &mut |l: &[u8]| got.push(l.to_vec()));
        }
        got
    }

    #[test]
    fn lines_are_assembled_across_chunks() {
        let mut o = Output::new();
        let got = lines(&mut o, &[b"hel", b"lo\r\nwor", b"ld\n", b"tail"]);
        assert_eq!(got, [b"hello".to_vec(), b"world".to_vec()]);
        let mut rest = Vec::new();
        o.flush(&mut |l: &[u8]| rest.push(l.to_vec()));
        assert_eq!(rest, [b"tail".to_vec()]);
        o.flush(&mut |_: &[u8]| panic!("flushed twice"));
        assert_eq!(o.history(), b"hello\r\nworld\ntail");
    }

    #[test]
    fn long_lines_are_cut() {
        let mut o = Output::new();
        let got = lines(&mut o, &[&vec![b'x'; LINE_MAX * 2 + 3], b"\n"]);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].len(), LINE_MAX);
        assert_eq!(got[2], b"xxx");
    }

    #[test]
    fn history_keeps_the_most_recent() {
        let mut o = Output::new();
        for i in 0..(HISTORY as u32 * 3 / 100) {
            let chunk: Vec<u8> = (0..100).map(|j| ((i + j) % 251) as u8).collect();
            o.feed(&chunk, &mut |_: &[u8]| {});
        }
        let h = o.history();
        assert_eq!(h.len(), HISTORY);
        // The last byte fed is last.
        let last_i = HISTORY as u32 * 3 / 100 - 1;
        assert_eq!(*h.last().unwrap(), ((last_i + 99) % 251) as u8);
        // One chunk larger than the history keeps its tail.
        o.feed(&vec![7u8; HISTORY + 10], &mut |_: &[u8]| {});
        assert_eq!(o.history(), vec![7u8; HISTORY]);
    }

    #[test]
    fn kept_output_is_history_only() {
        let mut o = Output::new();
        o.keep(b"printed by the hypervisor\npart");
        o.flush(&mut |_: &[u8]| panic!("kept bytes are not lines"));
        assert_eq!(o.history(), b"printed by the hypervisor\npart");
    }

    #[test]
    fn attached_output_is_not_printed_again() {
        let mut o = Output::new();
        let mut got = lines(&mut o, &[b"par"]);
        o.feed_attached(b"tial\n> ");
        o.feed(b"next\n", &mut |l: &[u8]| got.push(l.to_vec()));
        assert_eq!(got, [b"next".to_vec()]);
        assert_eq!(o.history(), b"partial\n> next\n");
    }
}
