//! The hypervisor console: output over `console_io write` (a line buffer and
//! the `print!`/`println!` macros) and input over `console_io read`
//! ([`read`], [`read_blocking`], [`read_line`]).
//!
//! Output is buffered per line so that each hypercall carries a whole line
//! and lines from different domains interleave at line granularity in the
//! hypervisor's log. An interactive program calls [`flush`] after a prompt.
//!
//! Input over the hypercall reaches only the domain that owns the console
//! input (dom0). A domain with a store has its console device connected by
//! the runtime before its entry runs ([`connect`]): it then writes and reads
//! that device's rings, which dom0 serves (`specs/console.md`), and dom0
//! prints its lines with its name as the hypervisor would. Before that, and
//! in dom0 or a domain without a store, output goes through the hypervisor.
//! Nothing echoes: [`read_line`] echoes for its caller.

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

/// Writes bytes to the console: through the console device's ring once it
/// is connected ([`connect`]), else with one hypercall per chunk. Errors are
/// ignored: there is nowhere else to report a failing console.
fn emit(bytes: &[u8]) {
    if !ring::write(bytes) {
        let _ = crate::hypercall::console_write(bytes);
    }
}

/// The front end of the console device (`specs/console.md`).
#[cfg(target_os = "none")]
mod ring {
    use crate::events::{self, Port};
    use crate::grant::{Grant, Page};
    use crate::store::{Device, Error, FrontDetails, Store};
    use crate::time::Deadline;
    use tern_abi::conif::{CONS_OUT_SIZE, ConsEndpoint, ConsSide, DEVICE_TYPE, SharedConsPage};
    use tern_abi::domctl::DomainId;

    struct Front {
        grant: Grant,
        ep: ConsEndpoint,
        port: Port,
    }

    fn page_of(grant: &Grant) -> &SharedConsPage {
        // SAFETY: the grant owns the page for as long as the borrow of
        // `grant`; it is page aligned (VA == IPA) and `SharedConsPage` is one
        // page of atomics, so dom0's concurrent writes break no assumption.
        unsafe { &*(grant.page().ipa() as usize as *const SharedConsPage) }
    }

    static FRONT: spin::Mutex<Option<Front>> = spin::Mutex::new(None);

    /// Yields while the output ring is full at most this often per write
    /// (dom0 not reading), then drops the rest.
    const FULL_TRIES: u32 = 1000;

    pub(super) fn connect(deadline_ms: u64) -> Result<(), Error> {
        if FRONT.lock().is_some() {
            // Connected already: a second handshake would break the first.
            return Ok(());
        }
        let mut st = Store::connect()?;
        let me = crate::start_info().map_or(DomainId(0), |si| si.domain_id());
        let dev = Device {
            kind: DEVICE_TYPE.into(),
            index: 0,
            front: me,
            back: DomainId::DOM0,
        };
        // No back end published (a domain dom0 made without one): say so now
        // instead of waiting out the deadline for a handshake nobody runs.
        st.read(&alloc::format!("{}/state", dev.back_dir()))?;
        let port = events::alloc_unbound(DomainId::DOM0)?;
        let grant = Grant::new(DomainId::DOM0, Page::new()?, false)?;
        let details = FrontDetails {
            ring_ref: grant.gref().0,
            event_channel: port.0,
        };
        st.front_connect(&dev, details, Deadline::after_ms(deadline_ms))?;
        super::flush();
        let ep = ConsEndpoint::new(ConsSide::Front, page_of(&grant));
        *FRONT.lock() = Some(Front { grant, ep, port });
        Ok(())
    }

    pub(super) fn write(mut bytes: &[u8]) -> bool {
        let Some(mut guard) = FRONT.try_lock() else {
            return false;
        };
        let Some(f) = guard.as_mut() else {
            return false;
        };
        let mut tries = 0;
        while !bytes.is_empty() && tries < FULL_TRIES {
            match f.ep.write(page_of(&f.grant), bytes) {
                Ok(0) => {
                    tries += 1;
                    let _ = events::send(f.port);
                    crate::yield_now();
                }
                Ok(n) => bytes = &bytes[n..],
                // dom0 broke the page: back to the hypervisor.
                Err(_) => {
                    *guard = None;
                    return false;
                }
            }
        }
        let _ = events::send(f.port);
        true
    }

    /// Whether dom0 has consumed all output written to the ring (it
    /// publishes `out_cons` only after printing, `specs/console.md`); also
    /// when there is no ring, or it is busy (the caller may hold it) or
    /// broken, as then there is nothing to wait for.
    fn drained() -> bool {
        let Some(mut guard) = FRONT.try_lock() else {
            return true;
        };
        let Some(f) = guard.as_mut() else {
            return true;
        };
        !matches!(f.ep.writable(page_of(&f.grant)), Ok(free) if free < CONS_OUT_SIZE)
    }

    pub(super) fn settle(ms: u64, handle_events: bool) {
        if drained() {
            return;
        }
        let deadline = Deadline::after_ms(ms);
        if handle_events {
            // dom0 sends an event after it printed what it read.
            events::wait_until(drained, Some(deadline.0));
        } else {
            while !drained() && !deadline.passed() {
                crate::yield_now();
            }
        }
    }

    pub(super) fn read(buf: &mut [u8]) -> Option<usize> {
        let mut guard = FRONT.lock();
        let f = guard.as_mut()?;
        match f.ep.read(page_of(&f.grant), buf) {
            Ok(n) => {
                if n > 0 {
                    let _ = events::send(f.port);
                }
                Some(n)
            }
            Err(_) => Some(0),
        }
    }
}

/// Off target there is no console device: everything goes the other way.
#[cfg(not(target_os = "none"))]
mod ring {
    pub(super) fn connect(_: u64) -> Result<(), crate::store::Error> {
        Err(crate::store::Error::NoStore)
    }
    pub(super) fn write(_: &[u8]) -> bool {
        false
    }
    pub(super) fn settle(_: u64, _: bool) {}
    pub(super) fn read(_: &mut [u8]) -> Option<usize> {
        None
    }
}

/// How long [`connect`] waits for dom0's console back end.
pub const CONNECT_MS: u64 = 5000;

/// How long [`settle`] waits for dom0 to print what is in the ring.
pub const SETTLE_MS: u64 = 100;

/// Connects this domain's console device (`console/0`, `specs/console.md`),
/// unless it is connected already:
/// from then on output goes through its ring to dom0, which prints it and
/// keeps it for `console <Domain>`, and [`read`] reads what is typed there.
/// Output buffered so far goes out first, through the hypervisor. On an
/// error nothing changes.
pub fn connect() -> Result<(), crate::store::Error> {
    ring::connect(CONNECT_MS)
}

/// The command-line setting (`console=hypercall`) that keeps a domain's
/// console on the hypervisor call: no ring, no store traffic and no port or
/// grant taken before its entry runs (for guests that test those ABIs from
/// a pristine state).
pub const CMDLINE_HYPERCALL: (&str, &str) = ("console", "hypercall");

/// The runtime's start-up: connects the console device of a domain that
/// has a store, so every guest's output goes through its ring without
/// asking. dom0 (it serves the rings), a domain without a store or console
/// back end, and one whose command line has [`CMDLINE_HYPERCALL`] keep
/// writing through the hypervisor.
#[cfg(target_os = "none")]
pub(crate) fn auto_connect(si: &crate::StartInfo) {
    let (key, value) = CMDLINE_HYPERCALL;
    if si.domain_id() != tern_abi::domctl::DomainId::DOM0
        && si.store().is_some()
        && si.cmdline().get(key) != Some(value)
    {
        let _ = connect();
    }
}

/// Waits, up to [`SETTLE_MS`] and handling events (blocking, not
/// spinning), until dom0 has printed everything this domain wrote to its
/// console ring, so the output is not overtaken by what the hypervisor
/// prints next (its report that the domain shut down). Returns at once
/// when the console is not connected. Flush the line buffer first.
pub fn settle() {
    ring::settle(SETTLE_MS, true);
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

/// Formats `args` and writes them straight to the hypervisor console,
/// after the shared buffer (flushed first, if it is free) and what is in
/// the console ring (given [`SETTLE_MS`] to be printed, yielding).
///
/// For the panic and exception paths: the shared buffer's lock may be held
/// by the code that faulted, so this never waits for it, runs no event
/// handler, and does not depend on dom0 to get a crash report out.
pub fn emergency_print(args: fmt::Arguments<'_>) {
    try_flush();
    ring::settle(SETTLE_MS, false);
    let mut buffer = LineBuffer::new();
    let mut w = LineWriter {
        buffer: &mut buffer,
        sink: direct,
    };
    let _ = fmt::write(&mut w, args);
    buffer.flush(&mut direct);
}

/// Writes bytes with the hypervisor call, ignoring errors like [`emit`].
fn direct(bytes: &[u8]) {
    let _ = crate::hypercall::console_write(bytes);
}

/// Reads bytes typed on the console into `buf` without waiting; returns how
/// many (0 when none is pending, when this domain does not own the console
/// input, or on a hypervisor without console input).
pub fn read(buf: &mut [u8]) -> usize {
    if let Some(n) = ring::read(buf) {
        return n;
    }
    let len = buf.len().min(tern_abi::console::READ_MAX as usize);
    // `buf` is borrowed mutably across the call: the hypervisor writes it.
    let ipa = crate::hypercall::ipa_of_mut(&mut buf[..len]);
    match crate::hypercall::call(
        tern_abi::Call::ConsoleIo,
        tern_abi::console::Op::Read.raw(),
        [ipa, len as u64, 0, 0, 0],
    ) {
        Ok([n, _, _]) => (n as usize).min(len),
        Err(_) => 0,
    }
}

/// What [`read_log`] copied from the hypervisor's log ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// Bytes copied into the buffer.
    pub copied: usize,
    /// Position to read from next.
    pub next: u64,
    /// Oldest position the ring still holds (text before it was lost).
    pub oldest: u64,
}

/// dom0: copies the hypervisor's log from position `pos` (bytes logged since
/// boot; 0 = the oldest retained) into `buf`. Call again with `next` until
/// `copied` is 0.
pub fn read_log(pos: u64, buf: &mut [u8]) -> Result<LogChunk, tern_abi::Error> {
    let len = buf.len().min(tern_abi::console::READ_MAX as usize);
    let ipa = crate::hypercall::ipa_of_mut(&mut buf[..len]);
    let [copied, next, oldest] = crate::hypercall::call(
        tern_abi::Call::ConsoleIo,
        tern_abi::console::Op::ReadLog.raw(),
        [ipa, len as u64, pos, 0, 0],
    )?;
    Ok(LogChunk {
        copied: (copied as usize).min(len),
        next,
        oldest,
    })
}

/// Asks for this domain's console output to go out unprefixed and
/// unbuffered from now on, if it owns the console input (a `read` of 0
/// bytes, see `console_io read`), so that a prompt shows before the first
/// key is typed. Returns nothing: a domain that does not own the input keeps
/// its prefixed lines.
pub fn go_interactive() {
    // A real (in-RAM) address: the hypervisor checks it even for 0 bytes.
    let mut none = [0u8; 1];
    read(&mut none[..0]);
}

/// Reads at least one byte into `buf` (unless it is empty), yielding the
/// vCPU while nothing is pending. Never returns on a domain that does not
/// own the console input.
pub fn read_blocking(buf: &mut [u8]) -> usize {
    if buf.is_empty() {
        return 0;
    }
    loop {
        let n = read(buf);
        if n > 0 {
            return n;
        }
        // ABI-PENDING: a console-input event to block on instead of polling.
        crate::yield_now();
    }
}

/// What [`LineReader::feed`] made of one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cooked {
    /// Nothing to show (ignored byte, or a full line).
    Nothing,
    /// Show this byte (echo of a stored character).
    Echo(u8),
    /// Erase the last character on the terminal.
    Erase,
    /// The line is complete.
    Done,
}

/// A minimal "cooked" line discipline: printable ASCII is stored and
/// echoed, backspace (`0x08` or `0x7f`) erases, `\r` or `\n` ends the line
/// (a `\n` right after a `\r` is ignored, so `\r\n` is one Enter). Other
/// bytes, escape sequences included, are dropped.
#[derive(Debug, Default)]
pub struct LineReader {
    after_cr: bool,
}

impl LineReader {
    /// A reader at the start of a line.
    pub const fn new() -> Self {
        Self { after_cr: false }
    }

    /// Applies byte `b` to the line `buf[..*len]`.
    pub fn feed(&mut self, b: u8, buf: &mut [u8], len: &mut usize) -> Cooked {
        let after_cr = core::mem::replace(&mut self.after_cr, b == b'\r');
        match b {
            b'\n' if after_cr => Cooked::Nothing,
            b'\r' | b'\n' => Cooked::Done,
            0x08 | 0x7f if *len > 0 => {
                *len -= 1;
                Cooked::Erase
            }
            0x20..=0x7e if *len < buf.len() => {
                buf[*len] = b;
                *len += 1;
                Cooked::Echo(b)
            }
            _ => Cooked::Nothing,
        }
    }
}

/// Reads one line typed on the console into `buf` (without the line end),
/// echoing it, with backspace; waits, yielding, until Enter. Characters
/// beyond `buf.len()` are dropped. Returns the line's length.
pub fn read_line(buf: &mut [u8]) -> usize {
    let mut reader = LineReader::new();
    let mut len = 0;
    let mut input = [0u8; 16];
    loop {
        let n = read_blocking(&mut input);
        for &b in &input[..n] {
            match reader.feed(b, buf, &mut len) {
                Cooked::Nothing => {}
                Cooked::Echo(c) => _print(format_args!("{}", c as char)),
                Cooked::Erase => _print(format_args!("\x08 \x08")),
                Cooked::Done => {
                    _print(format_args!("\n"));
                    return len;
                }
            }
        }
        flush();
    }
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
    fn line_reader_cooks() {
        let mut r = LineReader::new();
        let mut buf = [0u8; 4];
        let mut len = 0;
        let mut feed = |bytes: &[u8], len: &mut usize| -> Vec<Cooked> {
            bytes.iter().map(|&b| r.feed(b, &mut buf, len)).collect()
        };
        assert_eq!(
            feed(b"ab\x7fc", &mut len),
            [
                Cooked::Echo(b'a'),
                Cooked::Echo(b'b'),
                Cooked::Erase,
                Cooked::Echo(b'c')
            ]
        );
        assert_eq!(len, 2);
        // Escape sequences and overflow are dropped.
        assert_eq!(feed(b"\x1b", &mut len), [Cooked::Nothing]);
        assert_eq!(feed(b"xyz", &mut len)[2], Cooked::Nothing);
        assert_eq!(len, 4);
        assert_eq!(feed(b"\r\n", &mut len), [Cooked::Done, Cooked::Nothing]);
        assert_eq!(feed(b"\n", &mut len), [Cooked::Done]);
        let mut empty = 0;
        assert_eq!(feed(b"\x08", &mut empty), [Cooked::Nothing]);
        assert_eq!(&buf, b"acxy");
    }

    #[test]
    fn read_off_target_is_empty() {
        assert_eq!(read(&mut [0u8; 8]), 0);
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
