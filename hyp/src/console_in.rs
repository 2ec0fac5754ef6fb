//! Console input: bytes typed on the physical console, held until the domain
//! that owns the input takes them with `console_io read`
//! (`specs/hypercalls.md`, `console_io`).
//!
//! Policy: one domain owns the input at a time, dom0 for now. The console
//! back-end (issue 6) will move ownership to the domain attached to the
//! console; every other domain reads nothing. Once the owner has read, it is
//! *interactive*: its output goes to the UART unprefixed and unbuffered, so a
//! prompt and the echo of typed characters show at once.
//!
//! The bytes come from an [`InputSource`] (the PL011 on the board) polled when
//! the owner reads. The ring takes only what fits, so bytes the owner has not
//! read yet stay in the UART's FIFO, where the sender is held back (QEMU)
//! instead of being dropped here.
//!
//! So that the owner can block instead of polling, the UART's receive
//! interrupt raises `Virq::Console` for it (the IRQ path calls
//! [`input_arrived`], then raises the event). The interrupt is level-triggered
//! and stays asserted while the FIFO holds bytes, so it is masked when it
//! fires and unmasked by the owner's next read: one event per batch of input,
//! no storm while the owner has not read yet. The owner reads until a read
//! returns nothing before it blocks; that read unmasks the interrupt with
//! the FIFO empty, so the next byte typed fires it (no lost wake-up).
//!
//! Generic and host-tested; the board's source is registered once at boot
//! ([`register_source`]) because the UART is brought up before the
//! [`crate::hypervisor::Hypervisor`] exists.

use spin::Once;
use tern_abi::domctl::DomainId;

/// Where typed bytes come from: a UART's receive side.
pub trait InputSource: Sync {
    /// Moves up to `buf.len()` received bytes into `buf` without waiting and
    /// returns how many.
    fn read(&self, buf: &mut [u8]) -> usize;

    /// Unmasks (`on`) or masks the receive interrupt. A source without one
    /// ignores this.
    fn set_rx_interrupt(&self, _on: bool) {}
}

/// Bytes of input held between reads of the owner.
pub const RING_SIZE: usize = 256;

/// A FIFO of bytes with a fixed capacity that refuses what does not fit.
#[derive(Debug)]
pub struct InputRing {
    buf: [u8; RING_SIZE],
    /// Index of the oldest byte.
    head: usize,
    /// Bytes held.
    len: usize,
}

impl InputRing {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            buf: [0; RING_SIZE],
            head: 0,
            len: 0,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left, in bytes.
    pub fn free(&self) -> usize {
        RING_SIZE - self.len
    }

    /// Appends as much of `bytes` as fits; returns how many were taken.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.free());
        for &b in &bytes[..n] {
            self.buf[(self.head + self.len) % RING_SIZE] = b;
            self.len += 1;
        }
        n
    }

    /// Moves the oldest bytes into `out`, as many as fit; returns how many.
    pub fn pop(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for slot in &mut out[..n] {
            *slot = self.buf[self.head];
            self.head = (self.head + 1) % RING_SIZE;
            self.len -= 1;
        }
        n
    }

    /// Refills from `source` up to the ring's capacity.
    pub fn fill_from(&mut self, source: &dyn InputSource) {
        let mut chunk = [0u8; 32];
        while self.free() > 0 {
            let want = self.free().min(chunk.len());
            let got = source.read(&mut chunk[..want]);
            if got == 0 {
                break;
            }
            self.push(&chunk[..got.min(want)]);
        }
    }
}

impl Default for InputRing {
    fn default() -> Self {
        Self::new()
    }
}

/// The console's input side: the ring, its source, and who owns it.
pub struct ConsoleInput<'s> {
    ring: InputRing,
    source: Option<&'s dyn InputSource>,
    owner: DomainId,
    interactive: bool,
}

impl<'s> ConsoleInput<'s> {
    /// Input from `source` (none: nothing is ever typed), owned by dom0.
    pub const fn new(source: Option<&'s dyn InputSource>) -> Self {
        Self {
            ring: InputRing::new(),
            source,
            owner: DomainId::DOM0,
            interactive: false,
        }
    }

    /// The domain that receives typed bytes.
    pub fn owner(&self) -> DomainId {
        self.owner
    }

    /// Whether `domain`'s output goes out unprefixed and unbuffered: it owns
    /// the input and has read it.
    pub fn is_interactive(&self, domain: DomainId) -> bool {
        self.interactive && domain == self.owner
    }

    /// Bytes received but not yet read.
    pub fn pending(&self) -> usize {
        self.ring.len()
    }

    /// `console_io read` by `caller`: polls the source, then moves up to
    /// `out.len()` bytes into `out`. Returns how many, 0 for a caller that
    /// does not own the input (whose call changes nothing). The owner's read
    /// unmasks the receive interrupt again (see the module documentation).
    pub fn read(&mut self, caller: DomainId, out: &mut [u8]) -> usize {
        if caller != self.owner {
            return 0;
        }
        self.interactive = true;
        if let Some(source) = self.source {
            self.ring.fill_from(source);
            source.set_rx_interrupt(true);
        }
        self.ring.pop(out)
    }
}

static BOARD_SOURCE: Once<&'static dyn InputSource> = Once::new();

/// Records the board's console UART as the input source of the hypervisor
/// state created afterwards. Later calls are ignored.
pub fn register_source(source: &'static dyn InputSource) {
    BOARD_SOURCE.call_once(|| source);
}

/// The source given to [`register_source`], if any.
pub fn registered_source() -> Option<&'static dyn InputSource> {
    BOARD_SOURCE.get().copied()
}

/// The board UART's receive interrupt fired: masks it until the owner's next
/// read (the caller then raises `Virq::Console` for the owner).
pub fn input_arrived() {
    if let Some(source) = registered_source() {
        source.set_rx_interrupt(false);
    }
}

/// A fake UART for host tests.
#[cfg(test)]
pub(crate) mod testing {
    extern crate std;
    use super::InputSource;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::vec::Vec;

    /// A UART on which `typed` has been typed and not yet read.
    pub(crate) struct FakeUart {
        pub typed: Mutex<Vec<u8>>,
        /// Whether its receive interrupt is unmasked.
        pub rx_irq: AtomicBool,
    }

    impl FakeUart {
        pub fn new(bytes: &[u8]) -> Self {
            Self {
                typed: Mutex::new(bytes.to_vec()),
                rx_irq: AtomicBool::new(false),
            }
        }

        /// Whether the receive interrupt is unmasked.
        pub fn rx_irq(&self) -> bool {
            self.rx_irq.load(Ordering::Relaxed)
        }

        /// Bytes not read yet.
        pub fn left(&self) -> usize {
            self.typed.lock().unwrap().len()
        }
    }

    impl InputSource for FakeUart {
        fn read(&self, buf: &mut [u8]) -> usize {
            let mut typed = self.typed.lock().unwrap();
            let n = buf.len().min(typed.len());
            buf[..n].copy_from_slice(&typed[..n]);
            typed.drain(..n);
            n
        }

        fn set_rx_interrupt(&self, on: bool) {
            self.rx_irq.store(on, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FakeUart;
    use super::*;

    #[test]
    fn ring_is_fifo_and_refuses_overflow() {
        let mut r = InputRing::new();
        assert!(r.is_empty());
        assert_eq!(r.push(b"abc"), 3);
        let mut out = [0u8; 2];
        assert_eq!(r.pop(&mut out), 2);
        assert_eq!(&out, b"ab");
        // Wrap around the end of the array.
        let big = [b'x'; RING_SIZE];
        assert_eq!(r.push(&big), RING_SIZE - 1);
        assert_eq!(r.free(), 0);
        assert_eq!(r.push(b"y"), 0);
        let mut all = [0u8; RING_SIZE + 4];
        assert_eq!(r.pop(&mut all), RING_SIZE);
        assert_eq!(all[0], b'c');
        assert!(all[1..RING_SIZE].iter().all(|&b| b == b'x'));
        assert_eq!(r.pop(&mut all), 0);
    }

    #[test]
    fn fill_leaves_what_does_not_fit_in_the_source() {
        let uart = FakeUart::new(&[b'k'; RING_SIZE + 40]);
        let mut r = InputRing::new();
        r.fill_from(&uart);
        assert_eq!(r.len(), RING_SIZE);
        assert_eq!(uart.left(), 40);
    }

    #[test]
    fn only_the_owner_reads_and_becomes_interactive() {
        let uart = FakeUart::new(b"list\r");
        let mut input = ConsoleInput::new(Some(&uart));
        let mut out = [0u8; 8];
        assert_eq!(input.owner(), DomainId::DOM0);
        assert!(!input.is_interactive(DomainId::DOM0));
        assert_eq!(input.read(DomainId(3), &mut out), 0);
        assert!(!input.is_interactive(DomainId(3)));
        assert_eq!(uart.left(), 5, "a domU read takes nothing");
        assert_eq!(input.read(DomainId::DOM0, &mut out[..3]), 3);
        assert_eq!(&out[..3], b"lis");
        assert_eq!(input.pending(), 2, "the rest waits in the ring");
        assert!(input.is_interactive(DomainId::DOM0));
        assert!(!input.is_interactive(DomainId(3)));
        assert_eq!(input.read(DomainId::DOM0, &mut out), 2);
        assert_eq!(&out[..2], b"t\r");
        assert_eq!(input.read(DomainId::DOM0, &mut out), 0);
    }

    #[test]
    fn only_the_owners_read_unmasks_the_receive_interrupt() {
        let uart = FakeUart::new(b"x");
        let mut input = ConsoleInput::new(Some(&uart));
        let mut out = [0u8; 4];
        input.read(DomainId(3), &mut out);
        assert!(!uart.rx_irq(), "a domU's read leaves it masked");
        assert_eq!(input.read(DomainId::DOM0, &mut out), 1);
        assert!(uart.rx_irq(), "the owner's read unmasks it");
        // The IRQ path masks it when it fires; an empty read re-arms it.
        uart.set_rx_interrupt(false);
        assert_eq!(input.read(DomainId::DOM0, &mut out), 0);
        assert!(uart.rx_irq());
    }

    #[test]
    fn no_source_reads_nothing() {
        let mut input = ConsoleInput::new(None);
        assert_eq!(input.read(DomainId::DOM0, &mut [0u8; 4]), 0);
    }
}
