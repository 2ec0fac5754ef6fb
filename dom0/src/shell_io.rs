//! Where the shell's bytes come from and go: the terminals dom0 runs a
//! shell on (the hypervisor console through `console_io`, and the PL011 dom0
//! drives, [`crate::uart`]), the one a command's output goes to while it
//! runs, and a [`Session`]: one terminal's line editor, independent of how
//! bytes move (host-tested with a fake terminal).
//!
//! The shell's verbs print with [`crate::shell_print!`] / [`crate::shell_println!`],
//! which write to the [`current`] terminal: the one the command was typed
//! on. dom0's log (reports, other domains' output) stays on the hypervisor
//! console.

use alloc::string::String;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

use crate::editor::LineEditor;
use crate::keys::KeyDecoder;

/// How a shell reads and writes its terminal.
pub trait Terminal {
    /// Takes up to `buf.len()` typed bytes; 0 if none wait.
    fn read(&mut self, buf: &mut [u8]) -> usize;
    /// Shows `bytes` (text with bare `\n` line ends).
    fn write(&mut self, bytes: &[u8]);
    /// Pushes out what `write` may have buffered.
    fn flush(&mut self) {}
}

/// A terminal dom0 runs a shell on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// The hypervisor console (`console_io`), which also carries the log.
    Console,
    /// The PL011 dom0 drives ([`crate::uart`]).
    Uart,
}

impl Port {
    /// Every port, in the order the shell serves them.
    pub const ALL: [Port; 2] = [Port::Console, Port::Uart];

    /// Its index in per-port tables.
    pub const fn index(self) -> usize {
        self as usize
    }

    const fn from_index(i: u8) -> Self {
        match i {
            1 => Port::Uart,
            _ => Port::Console,
        }
    }
}

/// The hypervisor console as a terminal.
#[derive(Clone, Copy, Debug, Default)]
pub struct Console;

impl Terminal for Console {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        pv_guest_sdk::console::read(buf)
    }
    fn write(&mut self, bytes: &[u8]) {
        for piece in bytes.utf8_chunks() {
            pv_guest_sdk::print!("{}", piece.valid());
        }
    }
    fn flush(&mut self) {
        pv_guest_sdk::console::flush();
    }
}

/// dom0's PL011 as a terminal.
#[derive(Clone, Copy, Debug, Default)]
pub struct Uart;

impl Terminal for Uart {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        crate::uart::read(buf)
    }
    fn write(&mut self, bytes: &[u8]) {
        crate::uart::write(bytes);
    }
    fn flush(&mut self) {
        crate::uart::poll();
    }
}

/// The port of the command running now (where its output goes).
static CURRENT: AtomicU8 = AtomicU8::new(Port::Console as u8);

/// Makes `port` the one the shell's output goes to.
pub fn set_current(port: Port) {
    CURRENT.store(port as u8, Ordering::Release);
}

/// The port the shell's output goes to.
pub fn current() -> Port {
    Port::from_index(CURRENT.load(Ordering::Acquire))
}

/// Runs `f` on `port`'s terminal.
pub fn with_terminal<R>(port: Port, f: impl FnOnce(&mut dyn Terminal) -> R) -> R {
    match port {
        Port::Console => f(&mut Console),
        Port::Uart => f(&mut Uart),
    }
}

/// Typed bytes from the current port.
pub fn read(buf: &mut [u8]) -> usize {
    with_terminal(current(), |t| t.read(buf))
}

/// Writes `bytes` to the current port.
pub fn write(bytes: &[u8]) {
    with_terminal(current(), |t| t.write(bytes));
}

/// Pushes out the current port's output.
pub fn flush() {
    with_terminal(current(), |t| t.flush());
}

/// [`shell_print!`]'s body.
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    match current() {
        // Straight through: no copy for the common case.
        Port::Console => pv_guest_sdk::console::_print(args),
        Port::Uart => {
            let mut s = String::new();
            let _ = s.write_fmt(args);
            Uart.write(s.as_bytes());
        }
    }
}

/// Prints to the terminal the running command was typed on.
#[macro_export]
macro_rules! shell_print {
    ($($arg:tt)*) => { $crate::shell_io::_print(format_args!($($arg)*)) };
}

/// Prints a line to the terminal the running command was typed on.
#[macro_export]
macro_rules! shell_println {
    () => { $crate::shell_print!("\n") };
    ($($arg:tt)*) => {
        $crate::shell_io::_print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// One terminal's shell: its line editor, its key decoder, and the echo and
/// prompt not yet written.
#[derive(Debug)]
pub struct Session {
    editor: LineEditor,
    keys: KeyDecoder,
    out: String,
}

impl Session {
    /// A session that shows `prompt`.
    pub fn new(prompt: &'static str) -> Self {
        Self {
            editor: LineEditor::new(prompt),
            keys: KeyDecoder::new(),
            out: String::new(),
        }
    }

    /// Shows the prompt.
    pub fn prompt(&mut self, term: &mut dyn Terminal) {
        self.editor.prompt(&mut self.out);
        self.show(term);
    }

    /// Edits with the typed `bytes`, echoing to `term`; each entered line
    /// goes to `run` (with the echo written first) and a new prompt
    /// follows it. Bytes after an Enter belong to the next line.
    pub fn feed(&mut self, bytes: &[u8], term: &mut dyn Terminal, mut run: impl FnMut(&str)) {
        for &b in bytes {
            let Some(key) = self.keys.feed(b) else {
                continue;
            };
            if let Some(line) = self.editor.key(key, &mut self.out) {
                self.show(term);
                run(&line);
                self.editor.prompt(&mut self.out);
            }
        }
        self.show(term);
    }

    /// Clears the prompt and the line being typed, for reports that need
    /// lines of their own; [`Session::redraw`] brings them back.
    pub fn hide(&mut self, term: &mut dyn Terminal) {
        self.editor.hide(&mut self.out);
        self.show(term);
    }

    /// Shows the prompt and the line being typed again.
    pub fn redraw(&mut self, term: &mut dyn Terminal) {
        self.editor.redraw(&mut self.out);
        self.show(term);
    }

    /// Writes and empties the pending echo, now.
    fn show(&mut self, term: &mut dyn Terminal) {
        if !self.out.is_empty() {
            term.write(self.out.as_bytes());
            self.out.clear();
        }
        term.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    /// A terminal that records what is written.
    #[derive(Default)]
    struct Fake {
        shown: Vec<u8>,
        flushes: usize,
    }

    impl Terminal for Fake {
        fn read(&mut self, _: &mut [u8]) -> usize {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.shown.extend_from_slice(bytes);
        }
        fn flush(&mut self) {
            self.flushes += 1;
        }
    }

    fn shown(t: &Fake) -> String {
        String::from_utf8(t.shown.clone()).unwrap()
    }

    #[test]
    fn lines_run_between_echo_and_the_next_prompt() {
        let mut t = Fake::default();
        let mut s = Session::new("p# ");
        s.prompt(&mut t);
        let mut ran = Vec::new();
        // Two lines and the start of a third in one read; `\r\n` is one Enter.
        s.feed(b"list\r\ninfo\rli", &mut t, |line| {
            ran.push(line.to_string())
        });
        assert_eq!(ran, ["list", "info"]);
        // Each line's echo, then (after its command ran) the next prompt.
        assert_eq!(shown(&t), "p# list\np# info\np# li");
        assert!(t.flushes > 0);
    }

    #[test]
    fn output_order_on_the_terminal() {
        // The shell's commands print through the terminal too: the echo of
        // the line comes before, the next prompt after.
        let mut t = Fake::default();
        let mut s = Session::new("> ");
        s.prompt(&mut t);
        let mut out = Vec::new();
        s.feed(b"help\n", &mut t, |line| {
            out.push(alloc::format!("[{line}]\n"))
        });
        for o in &out {
            t.write(o.as_bytes());
        }
        assert_eq!(shown(&t), "> help\n> [help]\n");
    }

    #[test]
    fn editing_keys_and_redraw() {
        let mut t = Fake::default();
        let mut s = Session::new("> ");
        let mut ran = Vec::new();
        // Backspace (0x7f) removes the 'x'; the line is "ls".
        s.feed(b"lx\x7fs", &mut t, |l| ran.push(l.to_string()));
        t.shown.clear();
        s.hide(&mut t);
        assert_eq!(shown(&t), "\r\x1b[K");
        t.shown.clear();
        s.redraw(&mut t);
        assert_eq!(shown(&t), "\r> ls\x1b[K");
        s.feed(b"\r", &mut t, |l| ran.push(l.to_string()));
        assert_eq!(ran, ["ls"]);
    }

    #[test]
    fn ports_round_trip_through_current() {
        for p in Port::ALL {
            assert_eq!(Port::from_index(p as u8), p);
            assert_eq!(Port::ALL[p.index()], p);
        }
    }
}
