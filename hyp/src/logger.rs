//! The hypervisor log: a `log::Log` that writes
//! `[    t.tttttt] cpuN LEVEL message` lines to the console UART and keeps the
//! last [`RING_SIZE`] bytes of them in a ring buffer (for dom0's `dmesg`).
//!
//! One spin lock serialises whole lines, so lines from several CPUs do not
//! interleave. Exception reports ([`report`]) bypass the level filter and,
//! if the lock is stuck (a CPU faulted while holding it), write anyway.
//!
//! The time and CPU-number sources are functions given at [`init`], so this
//! module builds and is tested on the host.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

use log::{LevelFilter, Log, Metadata, Record};
use spin::{Mutex, Once};

/// Bytes of log text kept for `dmesg`.
pub const RING_SIZE: usize = 16 * 1024;

/// Where log text goes.
pub trait Console: Sync {
    /// Writes raw bytes (the console may translate `\n`).
    fn write_bytes(&self, bytes: &[u8]);
}

/// Sources of the line prefix.
#[derive(Clone, Copy)]
pub struct Sources {
    /// Time since boot as (seconds, microseconds).
    pub uptime: fn() -> (u64, u32),
    /// The calling CPU's logical index, if it has one yet.
    pub cpu: fn() -> Option<usize>,
}

/// A byte ring holding the most recent log text.
pub struct Ring {
    buf: [u8; RING_SIZE],
    /// Total bytes ever written; `written % RING_SIZE` is the next write index.
    written: usize,
}

impl Ring {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            buf: [0; RING_SIZE],
            written: 0,
        }
    }

    /// Appends `bytes`, overwriting the oldest text when full.
    pub fn push(&mut self, bytes: &[u8]) {
        // Only the last RING_SIZE bytes survive; they are copied in at most two
        // pieces (up to the end of the buffer, then from its start).
        let skip = bytes.len().saturating_sub(RING_SIZE);
        let (_, kept) = bytes.split_at(skip);
        let at = self.written.wrapping_add(skip) % RING_SIZE;
        let (head, tail) = kept.split_at(kept.len().min(RING_SIZE - at));
        self.buf[at..at + head.len()].copy_from_slice(head);
        self.buf[..tail.len()].copy_from_slice(tail);
        self.written = self.written.wrapping_add(bytes.len());
    }

    /// The retained text, oldest first, as (older part, newer part).
    pub fn contents(&self) -> (&[u8], &[u8]) {
        if self.written <= RING_SIZE {
            (&self.buf[..self.written], &[])
        } else {
            let split = self.written % RING_SIZE;
            (&self.buf[split..], &self.buf[..split])
        }
    }
}

/// What [`Ring::read_from`] copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRead {
    /// Bytes copied.
    pub copied: usize,
    /// Position after them.
    pub next: u64,
    /// Oldest position still retained.
    pub oldest: u64,
}

impl Ring {
    /// Copies retained text from position `pos` (bytes logged since boot)
    /// into `out`; a `pos` older than the ring reads from its oldest byte.
    pub fn read_from(&self, pos: u64, out: &mut [u8]) -> LogRead {
        let written = self.written as u64;
        let oldest = written.saturating_sub(RING_SIZE as u64);
        let start = pos.clamp(oldest, written);
        let n = out.len().min((written - start) as usize);
        let at = (start % RING_SIZE as u64) as usize;
        let first = n.min(RING_SIZE - at);
        out[..first].copy_from_slice(&self.buf[at..at + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        LogRead {
            copied: n,
            next: start + n as u64,
            oldest,
        }
    }
}

impl Default for Ring {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes to the console (if any) and the ring.
struct Sink<'a> {
    console: Option<&'a dyn Console>,
    ring: &'a mut Ring,
}

impl Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(c) = self.console {
            c.write_bytes(s.as_bytes());
        }
        self.ring.push(s.as_bytes());
        Ok(())
    }
}

/// Formats one line's prefix: `[    s.uuuuuu] cpuN LEVEL `.
pub fn write_prefix(
    w: &mut dyn Write,
    (secs, micros): (u64, u32),
    cpu: Option<usize>,
    level: log::Level,
) -> fmt::Result {
    write!(w, "[{secs:5}.{micros:06}] ")?;
    match cpu {
        Some(n) => write!(w, "cpu{n} ")?,
        None => write!(w, "cpu? ")?,
    }
    write!(w, "{level:<5} ")
}

/// The logger.
pub struct Logger {
    ring: Mutex<Ring>,
    console: Once<&'static dyn Console>,
    sources: Once<Sources>,
    /// `LevelFilter as usize + 1`, or 0 for the default level ([`DEFAULT_LEVEL`]).
    /// Zero for the default keeps a `static Logger` all zeroes, so it (with its
    /// 16 KiB ring) lives in .bss instead of taking 16 KiB of the image's .data.
    level: AtomicUsize,
}

/// The level filter until [`init`] or [`set_level`] sets one.
const DEFAULT_LEVEL: LevelFilter = LevelFilter::Info;

impl Logger {
    /// A logger with no console yet.
    pub const fn new() -> Self {
        Self {
            ring: Mutex::new(Ring::new()),
            console: Once::new(),
            sources: Once::new(),
            level: AtomicUsize::new(0),
        }
    }

    fn sources(&self) -> Sources {
        self.sources.get().copied().unwrap_or(Sources {
            uptime: || (0, 0),
            cpu: || None,
        })
    }

    fn level(&self) -> LevelFilter {
        match self.level.load(Ordering::Relaxed) {
            0 => DEFAULT_LEVEL,
            1 => LevelFilter::Off,
            2 => LevelFilter::Error,
            3 => LevelFilter::Warn,
            4 => LevelFilter::Info,
            5 => LevelFilter::Debug,
            _ => LevelFilter::Trace,
        }
    }

    /// Writes `args` verbatim (no prefix, no filter). Waits a bounded time for
    /// the lock, then writes without it: a report must get out even if the
    /// faulting CPU held the lock.
    pub fn write_raw(&self, args: fmt::Arguments<'_>) {
        const TRIES: usize = 1 << 20;
        let console = self.console.get().copied();
        for _ in 0..TRIES {
            if let Some(mut ring) = self.ring.try_lock() {
                let _ = Sink {
                    console,
                    ring: &mut ring,
                }
                .write_fmt(args);
                return;
            }
            core::hint::spin_loop();
        }
        let mut scratch = Ring::new();
        let _ = Sink {
            console,
            ring: &mut scratch,
        }
        .write_fmt(args);
    }

    /// Runs `f` on the retained log text (oldest part, newest part).
    pub fn with_ring<R>(&self, f: impl FnOnce(&[u8], &[u8]) -> R) -> R {
        let ring = self.ring.lock();
        let (a, b) = ring.contents();
        f(a, b)
    }
}

impl Default for Logger {
    fn default() -> Self {
        Self::new()
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let sources = self.sources();
        let time = (sources.uptime)();
        let cpu = (sources.cpu)();
        let console = self.console.get().copied();
        let mut ring = self.ring.lock();
        let mut sink = Sink {
            console,
            ring: &mut ring,
        };
        let _ = write_prefix(&mut sink, time, cpu, record.level());
        let _ = writeln!(sink, "{}", record.args());
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger::new();

/// Installs the logger with `console` and `level`. Later calls only change the
/// level.
pub fn init(console: &'static dyn Console, sources: Sources, level: LevelFilter) {
    LOGGER.console.call_once(|| console);
    LOGGER.sources.call_once(|| sources);
    set_level(level);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Trace);
}

/// Changes the level filter (e.g. from the `loglevel=` boot argument).
pub fn set_level(level: LevelFilter) {
    LOGGER.level.store(level as usize + 1, Ordering::Relaxed);
}

/// Writes an unprefixed, unfiltered report (exception reports, panics).
pub fn report(args: fmt::Arguments<'_>) {
    LOGGER.write_raw(args);
}

/// Copies the global log ring from position `pos` into `out`
/// ([`Ring::read_from`]).
pub fn read_log(pos: u64, out: &mut [u8]) -> LogRead {
    LOGGER.ring.lock().read_from(pos, out)
}

/// Runs `f` on the retained log text (oldest part, newest part).
pub fn with_ring<R>(f: impl FnOnce(&[u8], &[u8]) -> R) -> R {
    LOGGER.with_ring(f)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    #[test]
    fn read_from_positions_wraps_and_reports_loss() {
        let mut r = Ring::new();
        r.push(b"hello ");
        r.push(b"world");
        let mut out = [0u8; 8];
        let got = r.read_from(0, &mut out);
        assert_eq!(
            (&out[..got.copied], got.next, got.oldest),
            (&b"hello wo"[..], 8, 0)
        );
        let got = r.read_from(got.next, &mut out);
        assert_eq!((&out[..got.copied], got.next), (&b"rld"[..], 11));
        assert_eq!(r.read_from(11, &mut out).copied, 0, "nothing new");
        assert_eq!(r.read_from(99, &mut out).copied, 0, "from the future");
        // Overwrite: 3 * RING_SIZE / 2 bytes of a counting pattern.
        let data: Vec<u8> = (0..RING_SIZE * 3 / 2).map(|i| (i % 251) as u8).collect();
        r.push(&data);
        let total = 11 + data.len() as u64;
        let mut big = std::vec![0u8; RING_SIZE + 10];
        let got = r.read_from(0, &mut big);
        assert_eq!(
            (got.copied, got.oldest, got.next),
            (RING_SIZE, total - RING_SIZE as u64, total)
        );
        assert_eq!(
            &big[..RING_SIZE],
            &data[data.len() - RING_SIZE..],
            "oldest first, across the wrap"
        );
    }

    #[test]
    fn prefix_format() {
        let mut s = String::new();
        write_prefix(&mut s, (3, 42), Some(1), log::Level::Info).unwrap();
        assert_eq!(s, "[    3.000042] cpu1 INFO  ");
    }

    #[test]
    fn ring_keeps_newest_bytes() {
        let mut r = Ring::new();
        r.push(b"abc");
        assert_eq!(r.contents(), (&b"abc"[..], &b""[..]));
        let big: Vec<u8> = (0..RING_SIZE + 10).map(|i| (i % 251) as u8).collect();
        r.push(&big);
        let (a, b) = r.contents();
        let mut all = a.to_vec();
        all.extend_from_slice(b);
        assert_eq!(all.len(), RING_SIZE);
        assert_eq!(&all[..], &big[big.len() - RING_SIZE..]);
    }
}
