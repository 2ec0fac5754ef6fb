//! dom0's PL011 driver: the UARTs the hypervisor gave dom0 (`pl011` lines
//! of the `dom0-devices` list: every enabled PL011 of the device tree but
//! the hypervisor's console). dom0 runs a second toolstack shell on the
//! first of them ([`crate::shell_io`]), so that one port carries the log
//! while the operator types on the other.
//!
//! The driver sets the line itself (8N1, FIFOs, the speed from
//! `dom0.uart-baud`, default 115200, and the reference clock from
//! `dom0.uart-clock`, default the Pi firmware's 48 MHz) rather than
//! trusting what firmware left. Receiving is interrupt driven: the receive
//! and receive-timeout interrupts come as an event (`bind_pirq`), the
//! waiting loop wakes ([`take_kick`]) and [`poll`] moves the FIFO into a
//! queue the shell reads. Sending queues bytes and tops the transmit FIFO
//! up from the transmit interrupt. A UART that comes without an interrupt
//! (on the Pi 4 all PL011s share uart0's line, which the hypervisor keeps
//! for its console) is polled every [`POLL_MS`] instead.
//!
//! On the Pi the pins are firmware's business: config.txt
//! (`dtoverlay=uart2` .. `uart5`) routes them and enables the node, and
//! only enabled nodes reach dom0.
//!
//! | module | holds |
//! |---|---|
//! | [`regs`](mod@regs) | the register block, by name |
//! | [`line`](mod@line) | baud divisor arithmetic, newline translation (host-tested) |

pub mod line;
pub mod regs;

use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicBool, Ordering};

use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::{StartInfo, println};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use crate::virtio::devices::{Device, Kind};
use regs::{CR, DR, FBRD, FR, IBRD, IFLS, INT, LCR_H, Regs};

/// How often a UART without an interrupt is looked at.
pub const POLL_MS: u64 = 10;
/// Bytes of output held for the transmit FIFO; past this, writing waits
/// for the wire (a huge output must not take all of dom0's heap).
const TX_QUEUE_MAX: usize = 16 * 1024;
/// Typed bytes held until the shell reads them; past this, the oldest go
/// (an operator pasting faster than commands run).
const RX_QUEUE_MAX: usize = 4 * 1024;

/// The driven UART.
struct Uart {
    base: usize,
    port: Option<Port>,
    tx: VecDeque<u8>,
    rx: VecDeque<u8>,
    /// Receive errors (framing, parity, break, overrun) seen.
    errors: u64,
}

static UART: spin::Mutex<Option<Uart>> = spin::Mutex::new(None);
/// Set by the UART's event handler, taken by [`take_kick`].
static KICK: AtomicBool = AtomicBool::new(false);
/// Set with `KICK`; [`poll`] acknowledges the interrupt once it has served
/// the device (the hypervisor keeps it active until then).
static FIRED: AtomicBool = AtomicBool::new(false);

fn on_event(_: Port) {
    FIRED.store(true, Ordering::Release);
    KICK.store(true, Ordering::Release);
}

impl Uart {
    fn regs(&self) -> &Regs {
        // SAFETY: the hypervisor identity-mapped the block into dom0's
        // device window for dom0's life (the device list names only mapped
        // devices), and `init` makes the one `Uart` for it, so this is its
        // only driver; tock-registers accesses are volatile.
        unsafe { &*(self.base as *const Regs) }
    }

    /// Resets and programs the line; returns the speed set.
    fn setup(&self, clock_hz: u64, baud: u64) -> Result<u64, &'static str> {
        let d = line::divisor(clock_hz, baud).ok_or("impossible baud rate for the clock")?;
        let r = self.regs();
        // The TRM's order (3.3.8): disable, let the last character out,
        // flush the FIFOs (FEN off), then program and enable.
        r.cr.set(0);
        while r.fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
        r.lcr_h.modify(LCR_H::FEN::CLEAR);
        r.imsc.set(0);
        r.icr.write(INT::ALL.val(INT::ALL.mask));
        r.ibrd.write(IBRD::DIVINT.val(d.int));
        r.fbrd.write(FBRD::DIVFRAC.val(d.frac));
        // Written after the divisor: this write latches it.
        r.lcr_h.write(LCR_H::WLEN::Bits8 + LCR_H::FEN::SET);
        r.ifls.write(IFLS::RXIFLSEL::Half + IFLS::TXIFLSEL::Quarter);
        r.cr.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET + CR::RTS::SET);
        if self.port.is_some() {
            r.imsc.write(INT::RX::SET + INT::RT::SET);
        }
        Ok(line::actual_baud(clock_hz, d))
    }

    /// Moves received characters into the queue and queued output into the
    /// transmit FIFO; the transmit interrupt is on while output waits.
    fn service(&mut self) {
        while !self.regs().fr.is_set(FR::RXFE) {
            let c = self.regs().dr.extract();
            if c.is_set(DR::FE) || c.is_set(DR::PE) || c.is_set(DR::BE) || c.is_set(DR::OE) {
                self.errors += 1;
                // A break or garbled character is not input.
                if !c.is_set(DR::OE) {
                    continue;
                }
            }
            if self.rx.len() == RX_QUEUE_MAX {
                self.rx.pop_front();
            }
            self.rx.push_back(c.read(DR::DATA) as u8);
        }
        self.pump();
        let r = self.regs();
        // Clears the receive-timeout and error interrupts (the FIFO-level
        // ones follow the FIFOs, now served).
        r.icr.write(
            INT::RT::SET + INT::FE::SET + INT::PE::SET + INT::BE::SET + INT::OE::SET + INT::TX::SET,
        );
        if self.port.is_some() {
            let want_tx = if self.tx.is_empty() {
                INT::TX::CLEAR
            } else {
                INT::TX::SET
            };
            r.imsc.modify(want_tx);
        }
    }

    /// Fills the transmit FIFO from the queue.
    fn pump(&mut self) {
        while !self.tx.is_empty() && !self.regs().fr.is_set(FR::TXFF) {
            if let Some(b) = self.tx.pop_front() {
                self.regs().dr.write(DR::DATA.val(u32::from(b)));
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        line::crlf(bytes, |b| {
            while self.tx.len() >= TX_QUEUE_MAX {
                self.pump();
                core::hint::spin_loop();
            }
            self.tx.push_back(b);
        });
        self.service();
    }
}

/// Drives the first PL011 of `list` (its registers identity-mapped by the
/// hypervisor) and reports it; does nothing without one. Runs once.
pub fn init(si: &StartInfo, list: &[Device]) {
    let mut guard = UART.lock();
    if guard.is_some() {
        return;
    }
    let Some(d) = list.iter().find(|d| d.kind == Kind::Pl011) else {
        return;
    };
    let clock = si
        .cmdline()
        .get_u64("dom0.uart-clock")
        .unwrap_or(line::DEFAULT_CLOCK_HZ);
    let baud = si
        .cmdline()
        .get_u64("dom0.uart-baud")
        .unwrap_or(line::DEFAULT_BAUD);
    let port = match d.irq.map(events::bind_pirq) {
        Some(Ok(port)) => {
            events::on(port, on_event);
            Some(port)
        }
        Some(Err(e)) => {
            println!(
                "dom0: pl011 {:#x}: interrupt not bound ({e}): polling",
                d.base
            );
            None
        }
        None => None,
    };
    let uart = Uart {
        base: d.base as usize,
        port,
        tx: VecDeque::new(),
        rx: VecDeque::new(),
        errors: 0,
    };
    match uart.setup(clock, baud) {
        Ok(actual) => {
            println!(
                "dom0: pl011 {:#x}: {actual} baud 8N1 (clock {clock} Hz), {}",
                d.base,
                match d.irq {
                    Some(i) if port.is_some() => alloc::format!("interrupt {i}"),
                    _ => alloc::format!("polled every {POLL_MS} ms"),
                }
            );
            *guard = Some(uart);
        }
        Err(e) => println!("dom0: pl011 {:#x}: {e} ({clock} Hz, {baud} baud)", d.base),
    }
}

/// Whether dom0 drives a UART.
pub fn present() -> bool {
    UART.lock().is_some()
}

/// Whether the UART is polled (it has no interrupt): the waiting loop
/// must wake every [`POLL_MS`].
pub fn polled() -> bool {
    UART.lock().as_ref().is_some_and(|u| u.port.is_none())
}

/// Whether the UART's event came since the last call.
pub fn take_kick() -> bool {
    KICK.swap(false, Ordering::AcqRel)
}

/// Serves the UART: received bytes to the queue, queued output to the
/// wire; then lets its interrupt fire again.
pub fn poll() {
    let mut guard = UART.lock();
    let Some(u) = guard.as_mut() else { return };
    u.service();
    if FIRED.swap(false, Ordering::AcqRel)
        && let Some(port) = u.port
    {
        // Fails only if the port is not a pirq port, which it is.
        let _ = events::pirq_eoi(port);
    }
}

/// Takes up to `buf.len()` typed bytes; 0 if none wait (or no UART).
pub fn read(buf: &mut [u8]) -> usize {
    poll();
    let mut guard = UART.lock();
    let Some(u) = guard.as_mut() else { return 0 };
    let n = buf.len().min(u.rx.len());
    for (slot, b) in buf.iter_mut().zip(u.rx.drain(..n)) {
        *slot = b;
    }
    n
}

/// Queues `bytes` for the wire (each `\n` as `\r\n`) and starts sending.
pub fn write(bytes: &[u8]) {
    if let Some(u) = UART.lock().as_mut() {
        u.write(bytes);
    }
}

/// Waits until every queued byte is in the transmit FIFO and the line is
/// idle (before dom0 powers off, which stops the machine).
pub fn flush() {
    if let Some(u) = UART.lock().as_mut() {
        while !u.tx.is_empty() || u.regs().fr.is_set(FR::BUSY) {
            u.pump();
            core::hint::spin_loop();
        }
    }
}

/// Receive errors seen (framing, parity, break, overrun).
pub fn errors() -> u64 {
    UART.lock().as_ref().map_or(0, |u| u.errors)
}
