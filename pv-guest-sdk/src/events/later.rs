//! Notifications sent later ([`send_later`]): a back end that answers
//! several requests, or several peers, in one pass marks the ports to
//! notify and sends each event once, when it next waits; the last one goes
//! with its block in one hypercall (`sched_op send_wait`).

use core::sync::atomic::{AtomicU64, Ordering};

use tern_abi::evtchn::PORT_WORDS;

use super::Port;

/// Ports marked, one bit each, in the event page's word layout.
static MARKED: [AtomicU64; PORT_WORDS] = [const { AtomicU64::new(0) }; PORT_WORDS];
/// Bit `w` set: word `w` of [`MARKED`] may have ports (a summary, so that
/// taking finds them without reading every word).
static WORDS: AtomicU64 = AtomicU64::new(0);

const _: () = assert!(PORT_WORDS <= u64::BITS as usize);

/// Marks `port` to be notified by this domain's next [`super::wait_until`]
/// or [`super::send_and_wait`], or [`crate::yield_now`] or [`crate::block`]
/// (on any vCPU), once however often it was marked since. Errors of those sends are not reported (a peer that
/// closed its end has nobody left to tell). A port out of range is
/// ignored.
pub fn send_later(port: Port) {
    if port.word() >= PORT_WORDS {
        return;
    }
    MARKED[port.word()].fetch_or(port.bit(), Ordering::Release);
    WORDS.fetch_or(1 << port.word(), Ordering::Release);
}

/// Unmarks every marked port, calling `each` on it, lowest first.
#[inline]
pub(super) fn take(each: impl FnMut(Port)) {
    // Mostly nothing is marked: a load, not an exclusive pair, says so, and
    // the rest stays out of line, out of the caller's registers.
    if any() {
        take_marked(each);
    }
}

/// Whether a port may be marked.
#[inline(always)]
pub(super) fn any() -> bool {
    WORDS.load(Ordering::Relaxed) != 0
}

/// Sends on every marked port but the lowest if `keep`, which it then
/// returns instead (for a wait to send with its block). By value, so that a
/// caller's variables need not live in memory for it.
#[cold]
#[inline(never)]
pub(super) fn send_keeping(keep: bool) -> Option<Port> {
    let mut kept = None;
    take_marked(|p| {
        if keep && kept.is_none() {
            kept = Some(p);
        } else {
            let _ = super::send(p);
        }
    });
    kept
}

#[cold]
#[inline(never)]
fn take_marked(mut each: impl FnMut(Port)) {
    let mut words = WORDS.swap(0, Ordering::AcqRel);
    while words != 0 {
        let w = words.trailing_zeros();
        words &= words - 1;
        let mut bits = MARKED[w as usize].swap(0, Ordering::AcqRel);
        while bits != 0 {
            let b = bits.trailing_zeros();
            bits &= bits - 1;
            each(Port(w * u64::BITS + b));
        }
    }
}

/// Sends on every marked port now: before work that may take a while
/// with no wait in it (the waits, [`crate::yield_now`] and
/// [`crate::block`] send them themselves).
pub fn send_marked() {
    take(|p| {
        let _ = super::send(p);
    });
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn marked_ports_are_taken_once_each() {
        for p in [3, 4095, 3, 64, 9999] {
            send_later(Port(p));
        }
        let mut seen = std::vec::Vec::new();
        take(|p| seen.push(p.0));
        assert_eq!(seen, [3, 64, 4095]);
        take(|_| panic!("nothing left"));
        // In the same test: the marks are one global set.
        assert_eq!(send_keeping(true), None);
        for p in [4095, 64, 3] {
            send_later(Port(p));
        }
        assert!(any());
        assert_eq!(send_keeping(true), Some(Port(3)), "the lowest, kept");
        assert!(!any());
        send_later(Port(5));
        assert_eq!(send_keeping(false), None, "sent, not kept");
        take(|_| panic!("nothing left"));
    }
}
