//! The hypervisor's global state, as one value: domains, memory, boot modules,
//! the console. Hypercalls and traps act on it through `&mut Hypervisor`, which
//! the arch layer obtains from one lock; generic over physical memory and the
//! frame allocator so everything here runs in host tests.

use alloc::vec::Vec;

use tern_abi::domctl::DomainId;

use crate::console_in::{self, ConsoleInput};
use crate::domain::table::DomainTable;
use crate::physmem::{FrameSource, PhysMem};

/// A boot module: a named file from the initrd.
#[derive(Clone, Copy, Debug)]
pub struct Module<'a> {
    /// Its name in the archive.
    pub name: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// Where guests' console output goes: the physical UART on the board.
pub trait ConsoleSink: Send {
    /// Writes one complete line of domain `name`'s output (without the newline).
    fn domain_line(&mut self, name: &str, line: &[u8]);

    /// Writes output of the interactive domain (the console input owner, once
    /// it reads) as it is: no prefix, no line buffering. The default goes
    /// through the log's raw path, which holds the log lock for the write (so
    /// it never splits a log line) and keeps the text in the log ring, as the
    /// board's console keeps everything it shows. Bytes that are not UTF-8
    /// come out as U+FFFD.
    fn write_raw(&mut self, bytes: &[u8]) {
        crate::logger::report(format_args!("{}", Utf8Lossy(bytes)));
    }
}

/// Shows bytes as text, replacing what is not UTF-8.
struct Utf8Lossy<'a>(&'a [u8]);

impl core::fmt::Display for Utf8Lossy<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

/// Longest console line kept before it is flushed without a newline.
pub const CONSOLE_LINE_MAX: usize = 160;

/// Per-domain console line buffer (output is emitted line by line, prefixed with
/// the domain's name, so lines from several domains never interleave).
#[derive(Debug)]
pub struct LineBuffer {
    /// The domain it belongs to.
    pub domain: DomainId,
    buf: Vec<u8>,
}

/// A GIC operation on a physical interrupt delivered to dom0 as an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PirqRequest {
    /// Enable the interrupt (it was just bound).
    Enable(u32),
    /// Deactivate it: dom0 handled it (`pirq_eoi`), it may fire again.
    Eoi(u32),
}

/// Everything the hypervisor owns once it has booted.
pub struct Hypervisor<'m, M: PhysMem, F: FrameSource> {
    /// Live domains.
    pub domains: DomainTable,
    /// Physical memory access.
    pub mem: &'m M,
    /// The frame allocator.
    pub frames: F,
    /// Boot modules from the initrd.
    pub modules: Vec<Module<'m>>,
    /// The console.
    pub console: &'m mut dyn ConsoleSink,
    /// Counter frequency, for CPU-time reports.
    pub ticks_per_s: u64,
    /// Physical CPUs online.
    pub cpus_online: u32,
    /// Event channels, virqs, per-vCPU timers and time pages.
    pub events: crate::evtchn::Events,
    /// Grant tables, grant mappings, and the TLB flushes they need.
    pub grants: crate::grant::Grants,
    /// CPUs the arch layer must interrupt after this hypercall, so that they
    /// reschedule (a domain they run was paused or is dying, or work appeared
    /// for idle CPUs).
    pub kick_mask: u64,
    /// CPUs whose running vCPU has a new notification (an event, its timer):
    /// they must re-evaluate its upcall line, but need not reschedule for
    /// it. The arch layer interrupts the other CPUs among them as for
    /// `kick_mask`; on its own CPU it just updates the line.
    pub upcall_mask: u64,
    /// Console input: typed bytes and who receives them.
    pub console_in: ConsoleInput<'m>,
    /// A scheduling decision a `sched_op send_block` made already (the
    /// CPU it is for, and the decision): the blocking vCPU handed its CPU
    /// to the one it woke (`Scheduler::hand_off`). The arch layer's switch
    /// in the same trap takes it instead of calling `schedule`.
    pub handed: Option<(crate::percpu::CpuIndex, crate::sched::Decision)>,
    /// Which vCPU runs where and for how long (see `crate::lifecycle`).
    pub sched: crate::sched::Scheduler,
    /// The physical counter now (`CNTPCT_EL0` on the board; a fake in tests).
    pub clock: fn() -> u64,
    /// Interrupts (INTIDs) of the devices the hypervisor gave dom0: the only
    /// ones `evtchn_op bind_pirq` accepts.
    pub dom0_irqs: Vec<u32>,
    /// What the arch layer must do at the GIC after this hypercall.
    pub pirq_requests: Vec<PirqRequest>,
    lines: Vec<LineBuffer>,
}

fn no_clock() -> u64 {
    0
}

impl<'m, M: PhysMem, F: FrameSource> Hypervisor<'m, M, F> {
    /// State with no domains yet.
    pub fn new(
        mem: &'m M,
        frames: F,
        modules: Vec<Module<'m>>,
        console: &'m mut dyn ConsoleSink,
        ticks_per_s: u64,
    ) -> Self {
        Self {
            domains: DomainTable::new(),
            mem,
            frames,
            modules,
            console,
            ticks_per_s,
            cpus_online: 1,
            events: crate::evtchn::Events::new(),
            grants: crate::grant::Grants::new(),
            kick_mask: 0,
            upcall_mask: 0,
            handed: None,
            console_in: ConsoleInput::new(console_in::registered_source()),
            sched: crate::sched::Scheduler::new(
                1,
                crate::sched::SchedConfig::new(ticks_per_s.max(1_000_000)),
            )
            .expect("the default configuration is valid"),
            clock: no_clock,
            dom0_irqs: Vec::new(),
            pirq_requests: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Appends console output of `domain`, emitting each complete line.
    pub fn console_write(&mut self, domain: DomainId, bytes: &[u8]) {
        let Ok(d) = self.domains.get(domain) else {
            return;
        };
        let i = match self.lines.iter().position(|l| l.domain == domain) {
            Some(i) => i,
            None => {
                self.lines.push(LineBuffer {
                    domain,
                    buf: Vec::new(),
                });
                self.lines.len() - 1
            }
        };
        let line = &mut self.lines[i].buf;
        for &b in bytes {
            if b == b'\n' || line.len() >= CONSOLE_LINE_MAX {
                self.console.domain_line(d.name(), line);
                line.clear();
                if b == b'\n' {
                    continue;
                }
            }
            if b != b'\r' {
                line.push(b);
            }
        }
    }

    /// Flushes and forgets `domain`'s partial console line (at shutdown, crash
    /// or destruction, so the last words of a dying guest are not lost).
    pub fn console_flush(&mut self, domain: DomainId) {
        if let Some(i) = self.lines.iter().position(|l| l.domain == domain) {
            let l = self.lines.swap_remove(i);
            if !l.buf.is_empty()
                && let Ok(d) = self.domains.get(domain)
            {
                self.console.domain_line(d.name(), &l.buf);
            }
        }
    }

    /// Destroys a domain, flushing its console first. A domain with a vCPU
    /// still on a CPU is marked dying and those CPUs are kicked; the call
    /// returns `Busy` and succeeds once retried after they let go of it.
    pub fn destroy_domain(&mut self, id: DomainId) -> Result<(), tern_abi::Error> {
        let d = self.domains.get_mut(id)?;
        if d.running_cpus() != 0 {
            d.life = crate::domain::Lifecycle::Dying;
            self.stop_scheduling(id);
            return Err(tern_abi::Error::Busy);
        }
        if let Ok(k) = self.sched.remove_domain(id) {
            self.kick_mask |= k.0;
        }
        self.console_flush(id);
        // Before the RAM goes: mapped pages of `id` must survive it.
        self.grants
            .destroy_domain(id, &mut self.domains, &mut self.frames, self.mem);
        self.domains.destroy(id, &mut self.frames, self.mem)?;
        // After the RAM is gone: `Events` never touches a dead domain's pages.
        self.events.destroy_domain(id);
        Ok(())
    }
}
