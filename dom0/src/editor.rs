//! Line editing for the dom0 shell over a serial terminal: editing one line
//! and history, driven by the [`Key`]s of [`crate::keys`].
//!
//! The editor writes what the terminal must show into a `String` (echo,
//! cursor moves, redraws) and leaves the writing to its caller, so all of it
//! runs in host tests. It handles printable ASCII only and assumes the line
//! fits on one terminal row.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

pub use crate::keys::{Key, KeyDecoder};

/// Lines entered earlier, oldest first, and the position while browsing.
#[derive(Debug, Default)]
pub struct History {
    entries: Vec<String>,
    /// Index of the entry shown, while browsing with Up/Down.
    pos: Option<usize>,
    /// The line being typed when browsing began.
    draft: String,
}

/// Most lines [`History`] keeps.
pub const HISTORY_MAX: usize = 64;

impl History {
    /// An empty history.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
            pos: None,
            draft: String::new(),
        }
    }

    /// Records an entered line (not blank ones, nor a repeat of the last) and
    /// stops browsing.
    pub fn add(&mut self, line: &str) {
        self.pos = None;
        self.draft.clear();
        if line.trim().is_empty() || self.entries.last().is_some_and(|l| l == line) {
            return;
        }
        if self.entries.len() == HISTORY_MAX {
            self.entries.remove(0);
        }
        self.entries.push(line.into());
    }

    /// The entry before the one shown (`current` is kept as the draft when
    /// browsing starts); `None` at the oldest.
    pub fn older(&mut self, current: &str) -> Option<&str> {
        let pos = match self.pos {
            None if self.entries.is_empty() => return None,
            None => {
                self.draft = current.into();
                self.entries.len() - 1
            }
            Some(0) => return None,
            Some(p) => p - 1,
        };
        self.pos = Some(pos);
        Some(&self.entries[pos])
    }

    /// The entry after the one shown, then the draft; `None` when not browsing.
    pub fn newer(&mut self) -> Option<&str> {
        let pos = self.pos?;
        if pos + 1 < self.entries.len() {
            self.pos = Some(pos + 1);
            Some(&self.entries[pos + 1])
        } else {
            self.pos = None;
            Some(&self.draft)
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was entered yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One line being edited after a prompt.
#[derive(Debug)]
pub struct LineEditor {
    prompt: &'static str,
    line: Vec<u8>,
    cursor: usize,
    history: History,
}

/// Erases from the cursor to the end of the terminal line (ECMA-48 EL 0).
const ERASE_TO_END: &str = "\x1b[K";

/// Moves the terminal cursor `n` columns left (CUB) or right (CUF).
fn cursor_move(out: &mut String, n: usize, right: bool) {
    if n > 0 {
        let _ = write!(out, "\x1b[{n}{}", if right { 'C' } else { 'D' });
    }
}

fn text(bytes: &[u8]) -> &str {
    // Only printable ASCII is ever stored.
    core::str::from_utf8(bytes).unwrap_or("")
}

impl LineEditor {
    /// An empty line after `prompt`.
    pub fn new(prompt: &'static str) -> Self {
        Self {
            prompt,
            line: Vec::new(),
            cursor: 0,
            history: History::new(),
        }
    }

    /// The text typed so far.
    pub fn line(&self) -> &str {
        text(&self.line)
    }

    /// The cursor's position in the line, in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The history of entered lines.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Shows the prompt (at the start of a new line of the terminal).
    pub fn prompt(&self, out: &mut String) {
        out.push_str(self.prompt);
    }

    /// Shows the prompt and the line again from the start of the terminal
    /// line, the cursor where it was (after other output overwrote them).
    pub fn redraw(&self, out: &mut String) {
        out.push('\r');
        out.push_str(self.prompt);
        out.push_str(self.line());
        out.push_str(ERASE_TO_END);
        cursor_move(out, self.line.len() - self.cursor, false);
    }

    /// Clears the terminal line (prompt included), for output that must not
    /// follow the prompt; [`LineEditor::redraw`] brings it back.
    pub fn hide(&self, out: &mut String) {
        out.push('\r');
        out.push_str(ERASE_TO_END);
    }

    /// Applies `key`, writing what the terminal must show to `out`. Returns
    /// the line when `key` is Enter (the editor is then empty again and the
    /// caller shows the prompt when it is ready).
    pub fn key(&mut self, key: Key, out: &mut String) -> Option<String> {
        match key {
            Key::Char(c) => self.insert(c, out),
            Key::Enter => {
                out.push('\n');
                let line = String::from(self.line());
                self.history.add(&line);
                self.line.clear();
                self.cursor = 0;
                return Some(line);
            }
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.line.remove(self.cursor);
                out.push('\x08');
                self.show_tail(out);
            }
            Key::Delete if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
                self.show_tail(out);
            }
            Key::Left if self.cursor > 0 => {
                self.cursor -= 1;
                cursor_move(out, 1, false);
            }
            Key::Right if self.cursor < self.line.len() => {
                self.cursor += 1;
                cursor_move(out, 1, true);
            }
            Key::Home => {
                cursor_move(out, self.cursor, false);
                self.cursor = 0;
            }
            Key::End => {
                cursor_move(out, self.line.len() - self.cursor, true);
                self.cursor = self.line.len();
            }
            Key::KillToStart if self.cursor > 0 => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
                self.redraw(out);
            }
            Key::KillToEnd => {
                self.line.truncate(self.cursor);
                out.push_str(ERASE_TO_END);
            }
            Key::Up => {
                if let Some(older) = self.history.older(text(&self.line)) {
                    let older = older.as_bytes().to_vec();
                    self.replace(older, out);
                }
            }
            Key::Down => {
                if let Some(newer) = self.history.newer() {
                    let newer = newer.as_bytes().to_vec();
                    self.replace(newer, out);
                }
            }
            Key::Cancel => {
                out.push_str("^C\n");
                self.line.clear();
                self.cursor = 0;
                self.history.add("");
                self.prompt(out);
            }
            // Moves and deletions at the edge of the line do nothing.
            Key::Backspace | Key::Delete | Key::Left | Key::Right | Key::KillToStart => {}
        }
        None
    }

    fn insert(&mut self, c: u8, out: &mut String) {
        self.line.insert(self.cursor, c);
        self.cursor += 1;
        if self.cursor == self.line.len() {
            out.push(char::from(c));
        } else {
            out.push(char::from(c));
            let tail = text(&self.line[self.cursor..]);
            out.push_str(tail);
            cursor_move(out, tail.len(), false);
        }
    }

    /// After a deletion at the cursor: shows the rest of the line, blanks the
    /// character left over at its end, and goes back to the cursor.
    fn show_tail(&self, out: &mut String) {
        let tail = text(&self.line[self.cursor..]);
        out.push_str(tail);
        out.push(' ');
        cursor_move(out, tail.len() + 1, false);
    }

    fn replace(&mut self, line: Vec<u8>, out: &mut String) {
        self.line = line;
        self.cursor = self.line.len();
        self.redraw(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Types `bytes` into `ed`; returns the lines entered and the output.
    fn type_in(ed: &mut LineEditor, bytes: &[u8]) -> (Vec<String>, String) {
        let mut d = KeyDecoder::new();
        let mut out = String::new();
        let mut lines = vec![];
        for &b in bytes {
            if let Some(k) = d.feed(b)
                && let Some(l) = ed.key(k, &mut out)
            {
                lines.push(l);
            }
        }
        (lines, out)
    }

    #[test]
    fn typing_echoes_and_enter_returns_the_line() {
        let mut ed = LineEditor::new("tern# ");
        let (lines, out) = type_in(&mut ed, b"list\r");
        assert_eq!(lines, ["list"]);
        assert_eq!(out, "list\n");
        assert_eq!(ed.line(), "");
    }

    #[test]
    fn backspace_and_kill() {
        let mut ed = LineEditor::new("> ");
        let (_, out) = type_in(&mut ed, b"abc\x7f");
        assert_eq!(ed.line(), "ab");
        assert_eq!(out, "abc\x08 \x1b[1D");
        // Backspace at the start does nothing.
        let (_, out) = type_in(&mut ed, b"\x01\x7f");
        assert_eq!(out, "\x1b[2D");
        assert_eq!(ed.line(), "ab");
        // Ctrl-U kills what is left of the cursor.
        let (_, out) = type_in(&mut ed, b"\x1b[C\x15");
        assert_eq!(ed.line(), "b");
        assert_eq!(ed.cursor(), 0);
        assert_eq!(out, "\x1b[1C\r> b\x1b[K\x1b[1D");
        let (lines, _) = type_in(&mut ed, b"\x0b\r");
        assert_eq!(lines, [""]);
    }

    #[test]
    fn arrows_move_and_insert_in_the_middle() {
        let mut ed = LineEditor::new("> ");
        let (_, out) = type_in(&mut ed, b"dstroy\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D");
        assert_eq!(ed.cursor(), 1);
        assert!(out.ends_with("\x1b[1D"));
        let (_, out) = type_in(&mut ed, b"e");
        assert_eq!(out, "estroy\x1b[5D");
        // Right at the end and Left at the start do nothing.
        let (_, out) = type_in(&mut ed, b"\x05\x1b[C");
        assert_eq!(out, "\x1b[5C");
        let (_, out) = type_in(&mut ed, b"\x1b[3~");
        assert_eq!(out, "", "delete at the end does nothing");
        let (_, out) = type_in(&mut ed, b"\x1b[H\x1b[3~");
        assert_eq!(ed.line(), "estroy");
        assert_eq!(out, "\x1b[7Destroy \x1b[7D");
        let (lines, _) = type_in(&mut ed, b"d\n");
        assert_eq!(lines, ["destroy"]);
    }

    #[test]
    fn history_browses_and_keeps_the_draft() {
        let mut ed = LineEditor::new("> ");
        type_in(&mut ed, b"one\rtwo\rtwo\r\r   \r");
        assert_eq!(ed.history().len(), 2, "no repeats, no blank lines");
        let (_, out) = type_in(&mut ed, b"dr\x1b[A");
        assert_eq!(ed.line(), "two");
        assert_eq!(out, "dr\r> two\x1b[K");
        type_in(&mut ed, b"\x1b[A");
        assert_eq!(ed.line(), "one");
        let (_, out) = type_in(&mut ed, b"\x1b[A");
        assert_eq!((ed.line(), out.as_str()), ("one", ""), "oldest reached");
        type_in(&mut ed, b"\x1b[B");
        assert_eq!(ed.line(), "two");
        type_in(&mut ed, b"\x1b[B");
        assert_eq!(ed.line(), "dr", "back to the draft");
        let (_, out) = type_in(&mut ed, b"\x1b[B");
        assert_eq!(out, "", "not browsing");
        // A recalled line is entered as it is.
        let (lines, _) = type_in(&mut ed, b"\x15\x1b[A\x1b[A\r");
        assert_eq!(lines, ["one"]);
        assert_eq!(ed.history().len(), 3);
    }

    #[test]
    fn history_is_bounded() {
        let mut h = History::new();
        for i in 0..HISTORY_MAX + 5 {
            h.add(&alloc::format!("cmd {i}"));
        }
        assert_eq!(h.len(), HISTORY_MAX);
        let mut oldest = String::new();
        while let Some(e) = h.older("") {
            oldest = e.into();
        }
        assert_eq!(oldest, "cmd 5");
    }

    #[test]
    fn cancel_and_redraw() {
        let mut ed = LineEditor::new("tern# ");
        let (lines, out) = type_in(&mut ed, b"abc\x03");
        assert!(lines.is_empty());
        assert_eq!(out, "abc^C\ntern# ");
        assert_eq!(ed.line(), "");
        type_in(&mut ed, b"xy\x1b[D");
        let mut out = String::new();
        ed.hide(&mut out);
        ed.redraw(&mut out);
        assert_eq!(out, "\r\x1b[K\rtern# xy\x1b[K\x1b[1D");
    }
}
