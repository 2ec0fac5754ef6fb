//! A running QEMU and its serial console.

use crate::{Error, Match, Pattern, QemuBuilder};
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Console output collected by the reader threads.
#[derive(Default)]
struct Log {
    /// Complete serial lines, without line endings.
    lines: Vec<String>,
    /// Bytes after the last newline (a prompt, or a line being printed).
    partial: Vec<u8>,
    /// QEMU's own stderr (command-line errors, warnings).
    stderr: Vec<String>,
    /// The serial stream (QEMU's stdout) reached end of file.
    closed: bool,
}

impl Log {
    fn partial_line(&self) -> String {
        let s = String::from_utf8_lossy(&self.partial);
        s.trim_end_matches('\r').to_owned()
    }
}

#[derive(Default)]
struct Shared {
    log: Mutex<Log>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A reader thread cannot panic while holding the lock with the log
        // half-updated in a way that matters; take the data anyway.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running QEMU. Dropping it kills QEMU; if the test is failing, the whole
/// console log is printed to stderr first.
pub struct Qemu {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    readers: Vec<JoinHandle<()>>,
    /// Console position (line, byte column) up to which earlier expects have
    /// consumed the output. The column is non-zero only after a prompt match.
    cursor: (usize, usize),
    deadline: Instant,
    started: Instant,
    fail_on: Vec<String>,
    command: Vec<String>,
    description: String,
    failed: bool,
}

impl std::fmt::Debug for Qemu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qemu")
            .field("description", &self.description)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

fn reader(mut from: impl Read, shared: Arc<Shared>, is_stderr: bool) {
    let echo = std::env::var_os("TERN_ECHO").is_some();
    let mut buf = [0u8; 4096];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut log = shared.lock();
        for &b in &buf[..n] {
            if b != b'\n' {
                log.partial.push(b);
                continue;
            }
            let line = log.partial_line();
            log.partial.clear();
            if echo {
                eprintln!("{}{line}", if is_stderr { "qemu: " } else { "| " });
            }
            if is_stderr {
                log.stderr.push(line);
            } else {
                log.lines.push(line);
            }
        }
        drop(log);
        shared.changed.notify_all();
    }
    let mut log = shared.lock();
    if !is_stderr {
        log.closed = true;
    }
    drop(log);
    shared.changed.notify_all();
}

impl Qemu {
    /// A builder with the defaults of `scripts/run.sh`.
    pub fn builder() -> QemuBuilder {
        QemuBuilder::default()
    }

    pub(crate) fn start(
        cmd: &[String],
        description: String,
        time_limit: Duration,
        fail_on: Vec<String>,
    ) -> Result<Self, Error> {
        let mut child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Error::Spawn)?;
        let shared = Arc::new(Shared::default());
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            let s = shared.clone();
            readers.push(std::thread::spawn(move || reader(out, s, false)));
        }
        if let Some(err) = child.stderr.take() {
            // Separate buffer: QEMU's messages must not split a serial line.
            let s = Arc::new(Shared::default());
            let s2 = s.clone();
            let main = shared.clone();
            readers.push(std::thread::spawn(move || {
                reader(err, s2, true);
                let lines = std::mem::take(&mut s.lock().stderr);
                main.lock().stderr.extend(lines);
            }));
        }
        let started = Instant::now();
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            shared,
            readers,
            cursor: (0, 0),
            deadline: started + time_limit,
            started,
            fail_on,
            command: cmd.to_vec(),
            description,
            failed: false,
        })
    }

    /// The QEMU command line, as run.
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// Records a failure so the log is printed on drop, and passes `e` on.
    fn fail<T>(&mut self, e: Error) -> Result<T, Error> {
        self.failed = true;
        Err(e)
    }

    /// Waits until every pattern has matched a line after the last consumed
    /// one, in any order, and returns the matches in the order of `patterns`.
    /// The lines up to the last of them are consumed. Regexes match complete
    /// lines only; a plain string may also match the line still being printed
    /// (a prompt), and then only what follows it on that line stays.
    ///
    /// Fails early if QEMU exits or a failure marker shows up in a line that
    /// none of the patterns matches.
    pub fn expect_all<P: Pattern>(
        &mut self,
        patterns: &[P],
        timeout: Duration,
    ) -> Result<Vec<Match>, Error> {
        let start = Instant::now();
        let deadline = self.deadline.min(start + timeout);
        let describe = || {
            let v: Vec<_> = patterns.iter().map(Pattern::describe).collect();
            v.join(", ")
        };
        // Each match records the position just after it: (line, column).
        let mut found: Vec<Option<((usize, usize), Match)>> = vec![None; patterns.len()];
        let (mut scanned, col) = self.cursor;
        let shared = self.shared.clone();
        let mut log = shared.lock();
        loop {
            // Stop at the line that completes the set: failure markers after
            // it belong to the next expect.
            while scanned < log.lines.len() && found.iter().any(Option::is_none) {
                let whole = &log.lines[scanned];
                // The rest of a line whose start (a prompt) was already matched.
                let line = if scanned == self.cursor.0 {
                    whole.get(col..).unwrap_or("")
                } else {
                    whole
                };
                let mut any = false;
                for (p, slot) in patterns.iter().zip(found.iter_mut()) {
                    if slot.is_none()
                        && let Some(m) = p.match_line(line)
                    {
                        *slot = Some(((scanned + 1, 0), m));
                        any = true;
                    }
                }
                if !any && self.fail_on.iter().any(|f| line.contains(f.as_str())) {
                    let line = line.to_owned();
                    drop(log);
                    return self.fail(Error::Failure {
                        pattern: describe(),
                        line,
                    });
                }
                scanned += 1;
            }
            // A prompt without a newline can satisfy the last pattern if it
            // is a plain string; the rest of its line stays for the next expect.
            let partial = log.partial_line();
            let rest = if scanned == self.cursor.0 {
                partial.get(col..).unwrap_or("")
            } else {
                &partial
            };
            let mut pending = found.iter().zip(patterns).filter(|(s, _)| s.is_none());
            if let (Some((_, p)), None) = (pending.next(), pending.next())
                && p.partial_ok()
                && let Some(m) = p.match_line(rest)
            {
                let idx = found.iter().position(Option::is_none).expect("one pending");
                found[idx] = Some(((scanned, partial.len()), m));
            }
            if found.iter().all(Option::is_some) {
                let found: Vec<_> = found.into_iter().flatten().collect();
                if let Some(end) = found.iter().map(|(pos, _)| *pos).max() {
                    self.cursor = end;
                }
                return Ok(found.into_iter().map(|(_, m)| m).collect());
            }
            if log.closed {
                drop(log);
                let status = self.child.try_wait().ok().flatten();
                return self.fail(Error::Exited {
                    pattern: describe(),
                    status,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                drop(log);
                return self.fail(Error::Timeout {
                    pattern: describe(),
                    waited: now - start,
                });
            }
            log = shared
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for one pattern; see [`Qemu::expect_all`].
    pub fn expect<P: Pattern>(&mut self, pattern: P, timeout: Duration) -> Result<Match, Error> {
        let mut v = self.expect_all(&[pattern], timeout)?;
        Ok(v.remove(0))
    }

    /// Types `text` followed by Enter (`\r`, what a terminal sends) on the
    /// serial console.
    pub fn send_line(&mut self, text: &str) -> Result<(), Error> {
        let r = match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(text.as_bytes())
                .and_then(|()| stdin.write_all(b"\r"))
                .and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin closed")),
        };
        r.map_err(Error::Io).or_else(|e| self.fail(e))
    }

    /// Waits for QEMU to exit (e.g. after a PSCI SYSTEM_OFF) and returns its
    /// status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, Error> {
        let start = Instant::now();
        let deadline = self.deadline.min(start + timeout);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => return self.fail(Error::NoExit(start.elapsed())),
                Err(e) => return self.fail(Error::Io(e)),
            }
        }
    }

    /// The whole console log so far, one string per line (the unfinished
    /// last line included).
    pub fn lines(&self) -> Vec<String> {
        let log = self.shared.lock();
        let mut v = log.lines.clone();
        if !log.partial.is_empty() {
            v.push(log.partial_line());
        }
        v
    }

    /// Prints the command, the console log and QEMU's stderr to stderr.
    pub fn dump(&self) {
        let log = self.shared.lock();
        let mut out = format!(
            "===== QEMU console ({}, {:.1?} s) =====\n$ {}\n",
            self.description,
            self.started.elapsed().as_secs_f64(),
            self.command.join(" ")
        );
        for l in &log.lines {
            out.push_str(l);
            out.push('\n');
        }
        if !log.partial.is_empty() {
            out.push_str(&log.partial_line());
            out.push_str("  <no newline>\n");
        }
        for l in &log.stderr {
            out.push_str("qemu stderr: ");
            out.push_str(l);
            out.push('\n');
        }
        out.push_str("===== end of QEMU console =====");
        eprintln!("{out}");
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        // Kill before joining the readers: they end when the pipes close.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Let the reader take in what QEMU wrote before it died, but do not
        // hang if a grandchild still holds the pipe open.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut log = self.shared.lock();
        while !log.closed && Instant::now() < deadline {
            log = self
                .shared
                .changed
                .wait_timeout(log, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(log);
        for r in self.readers.drain(..) {
            if r.is_finished() {
                let _ = r.join();
            }
        }
        if self.failed || std::thread::panicking() {
            self.dump();
        }
    }
}

#[cfg(test)]
#[path = "console_tests.rs"]
mod tests;
