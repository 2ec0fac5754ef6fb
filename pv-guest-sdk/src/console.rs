//! Console output over the console-write hypercall: a line buffer and the
//! `print!`/`println!` macros.
//!
//! Output is buffered per line so that each hypercall carries a whole line
//! and lines from different domains interleave at line granularity in the
//! hypervisor's log.

use core::fmt;

/// Bytes buffered before a flush when no newline arrives.
pub const LINE_CAPACITY: usize = 256;

/// A line buffer that hands complete lines (or a full buffer) to a sink.
///
/// Arch-independent so the buffering rules are tested on the host.
pub struct LineBuffer {
    buf: [u8; LINE_CAPACITY],
    len: usize,
}

impl LineBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; LINE_CAPACITY],
            len: 0,
        }
    }

    /// Appends `bytes`, calling `sink` with each completed line (newline
    /// included) and whenever the buffer fills up.
    pub fn write(&mut self, bytes: &[u8], sink: &mut impl FnMut(&[u8])) {
        for &b in bytes {
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' || self.len == LINE_CAPACITY {
                self.flush(sink);
            }
        }
    }

    /// Hands any buffered bytes to `sink`.
    pub fn flush(&mut self, sink: &mut impl FnMut(&[u8])) {
        if self.len > 0 {
            sink(&self.buf[..self.len]);
            self.len = 0;
        }
    }

    /// The bytes buffered but not yet flushed.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// A `fmt::Write` adapter over a [`LineBuffer`] and a sink.
pub struct LineWriter<'a, F: FnMut(&[u8])> {
    /// The buffer being filled.
    pub buffer: &'a mut LineBuffer,
    /// Where complete lines go.
    pub sink: F,
}

impl<F: FnMut(&[u8])> fmt::Write for LineWriter<'_, F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buffer.write(s.as_bytes(), &mut self.sink);
        Ok(())
    }
}

/// Writes bytes to the console with one hypercall per chunk, ignoring errors:
/// there is nowhere else to report a failing console.
fn emit(bytes: &[u8]) {
    let _ = crate::hypercall::console_write(bytes);
}

static CONSOLE: spin::Mutex<LineBuffer> = spin::Mutex::new(LineBuffer::new());

/// Formats `args` into the shared console buffer. Used by `print!`.
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let mut buffer = CONSOLE.lock();
    let mut w = LineWriter {
        buffer: &mut buffer,
        sink: emit,
    };
    let _ = fmt::write(&mut w, args);
}

/// Sends any partial line to the hypervisor now.
pub fn flush() {
    CONSOLE.lock().flush(&mut emit);
}

/// Flushes the shared buffer unless someone holds it (shutdown path: the
/// holder may be the code that is shutting down).
pub(crate) fn try_flush() {
    if let Some(mut shared) = CONSOLE.try_lock() {
        shared.flush(&mut emit);
    }
}

/// Formats `args` and writes them straight to the console, bypassing (and
/// flushing first, if it is free) the shared buffer.
///
/// For the panic and exception paths: the shared buffer's lock may be held by
/// the code that faulted, so this never waits for it.
pub fn emergency_print(args: fmt::Arguments<'_>) {
    try_flush();
    let mut buffer = LineBuffer::new();
    let mut w = LineWriter {
        buffer: &mut buffer,
        sink: emit,
    };
    let _ = fmt::write(&mut w, args);
    buffer.flush(&mut emit);
}

/// Prints to the hypervisor console (buffered until a newline).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the hypervisor console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn collect(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut out = Vec::new();
        let mut lb = LineBuffer::new();
        for c in chunks {
            lb.write(c, &mut |l: &[u8]| out.push(l.to_vec()));
        }
        let pending = lb.pending().to_vec();
        (out, pending)
    }

    #[test]
    fn flushes_at_newline_only() {
        let (out, pending) = collect(&[b"hel", b"lo\nwor", b"ld"]);
        assert_eq!(out, [b"hello\n".to_vec()]);
        assert_eq!(pending, b"world");
    }

    #[test]
    fn flushes_when_full() {
        let long = [b'x'; LINE_CAPACITY + 10];
        let (out, pending) = collect(&[&long]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), LINE_CAPACITY);
        assert_eq!(pending.len(), 10);
    }

    #[test]
    fn explicit_flush_empties() {
        let mut lb = LineBuffer::new();
        let mut out = Vec::new();
        lb.write(b"abc", &mut |l: &[u8]| out.push(l.to_vec()));
        lb.flush(&mut |l: &[u8]| out.push(l.to_vec()));
        lb.flush(&mut |l: &[u8]| out.push(l.to_vec()));
        assert_eq!(out, [b"abc".to_vec()]);
        assert!(lb.pending().is_empty());
    }

    #[test]
    fn line_writer_formats() {
        use core::fmt::Write;
        let mut lb = LineBuffer::new();
        let mut out = Vec::new();
        let mut w = LineWriter {
            buffer: &mut lb,
            sink: |l: &[u8]| out.push(l.to_vec()),
        };
        writeln!(w, "tick {}", 42).unwrap();
        assert_eq!(out, [b"tick 42\n".to_vec()]);
    }
}
