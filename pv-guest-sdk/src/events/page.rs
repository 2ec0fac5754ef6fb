//! The event page as this guest sees it (`tern_abi::evtchn::EventPage`
//! with atomic words) and the upcall handler's scan of it.

use core::sync::atomic::{AtomicU64, Ordering};

use tern_abi::evtchn::{EVENT_VCPUS, EventPage, PORT_WORDS};

use super::Port;

/// The per-vCPU words of the event page, as atomics.
#[repr(C)]
pub(super) struct VcpuWords {
    pub(super) upcall_pending: AtomicU64,
    pub(super) pending_sel: AtomicU64,
}

/// The event page with atomic words, laid out as `tern_abi::evtchn::EventPage`.
#[repr(C, align(4096))]
pub struct SharedPage {
    pub(super) pending: [AtomicU64; PORT_WORDS],
    pub(super) mask: [AtomicU64; PORT_WORDS],
    pub(super) vcpu: [VcpuWords; EVENT_VCPUS],
    reserved: [u8; 2944],
}

const _: () = assert!(size_of::<SharedPage>() == size_of::<EventPage>());
const _: () = assert!(core::mem::offset_of!(SharedPage, mask) as u64 == EventPage::mask_offset(0));
const _: () =
    assert!(core::mem::offset_of!(SharedPage, vcpu) as u64 == EventPage::upcall_pending_offset(0));

impl SharedPage {
    /// An all-zero page: nothing pending, nothing masked.
    pub const fn new() -> Self {
        Self {
            pending: [const { AtomicU64::new(0) }; PORT_WORDS],
            mask: [const { AtomicU64::new(0) }; PORT_WORDS],
            vcpu: [const {
                VcpuWords {
                    upcall_pending: AtomicU64::new(0),
                    pending_sel: AtomicU64::new(0),
                }
            }; EVENT_VCPUS],
            reserved: [0; 2944],
        }
    }

    /// Whether `port` is pending.
    pub fn is_pending(&self, port: Port) -> bool {
        self.pending[port.word()].load(Ordering::Acquire) & port.bit() != 0
    }

    /// Whether `vcpu` has `upcall_pending` set.
    pub fn upcall_pending(&self, vcpu: usize) -> bool {
        self.vcpu[vcpu].upcall_pending.load(Ordering::Acquire) != 0
    }

    /// The upcall handler's scan for `vcpu` (specs/hypercalls.md,
    /// `evtchn_op`): clears `upcall_pending`, then while `pending_sel` is
    /// non-zero takes it, and for each unmasked pending port of those words
    /// that `owner` says belongs to `vcpu` clears its pending bit and calls
    /// `handle`. Returns the number of ports handled and whether
    /// `upcall_pending` was set (then the upcall must be acknowledged).
    pub fn scan(
        &self,
        vcpu: usize,
        owner: impl Fn(Port) -> usize,
        handle: impl FnMut(Port),
    ) -> (usize, bool) {
        let me = &self.vcpu[vcpu];
        let was_pending = me.upcall_pending.swap(0, Ordering::AcqRel) != 0;
        (self.scan_selected(me, vcpu, owner, handle), was_pending)
    }

    /// [`Self::scan`] after `upcall_pending` was cleared, with `vcpu`'s
    /// words, `me`, looked up by the caller (once for all the passes of a
    /// wait). Returns the number of ports handled.
    ///
    /// The common case, one port pending in one word, goes straight
    /// through; anything else goes to [`Self::scan_words`], out of line, so
    /// that what the general scan keeps across the handler calls does not
    /// weigh on the common case (and on the wait loop it is inlined in).
    #[inline(always)]
    pub(super) fn scan_selected(
        &self,
        me: &VcpuWords,
        vcpu: usize,
        owner: impl Fn(Port) -> usize,
        mut handle: impl FnMut(Port),
    ) -> usize {
        let sel = me.pending_sel.swap(0, Ordering::AcqRel);
        if sel.is_power_of_two() {
            let w = sel.trailing_zeros() as usize;
            let live = self.live(w);
            if live.is_power_of_two() {
                let b = live.trailing_zeros();
                // `live` is that port's bit.
                let n = self.take(w, b as usize, live, vcpu, &owner, &mut handle);
                // Mostly nothing came while the handler ran: a load finding
                // 0 says so as well as a swap, without an exclusive pair.
                if me.pending_sel.load(Ordering::Acquire) == 0 {
                    return n;
                }
                return n + self.scan_words(me, vcpu, 0, &owner, &mut handle);
            }
        }
        self.scan_words(me, vcpu, sel, &owner, &mut handle)
    }

    /// The general scan: the ports of the words in `sel` (taken from
    /// `me.pending_sel`), then those of words selected since, until no
    /// more are. Returns the number of ports handled.
    #[inline(never)]
    fn scan_words(
        &self,
        me: &VcpuWords,
        vcpu: usize,
        mut sel: u64,
        owner: &impl Fn(Port) -> usize,
        handle: &mut impl FnMut(Port),
    ) -> usize {
        let mut n = 0;
        loop {
            for w in bits(sel) {
                for b in bits(self.live(w)) {
                    n += self.take(w, b, 1 << b, vcpu, owner, handle);
                }
            }
            // As in `scan_selected`: a load first, the swap only if needed.
            sel = match me.pending_sel.load(Ordering::Acquire) {
                0 => return n,
                _ => me.pending_sel.swap(0, Ordering::AcqRel),
            };
        }
    }

    /// The unmasked pending ports of word `w`. Plain loads (which, unlike
    /// acquire ones, take an offset): every caller reads after the
    /// selector swap, whose acquire orders these after it, and a port is
    /// only handled after the acquire of clearing its bit.
    #[inline(always)]
    fn live(&self, w: usize) -> u64 {
        self.pending[w].load(Ordering::Relaxed) & !self.mask[w].load(Ordering::Relaxed)
    }

    /// Handles port `b` of word `w` (`bit`: its bit) if `owner` says it is
    /// `vcpu`'s and its pending bit is still set: clears the bit, then calls
    /// `handle`. Returns the number of ports handled (0 or 1).
    #[inline(always)]
    fn take(
        &self,
        w: usize,
        b: usize,
        bit: u64,
        vcpu: usize,
        owner: &impl Fn(Port) -> usize,
        handle: &mut impl FnMut(Port),
    ) -> usize {
        let port = Port((w * 64 + b) as u32);
        // Another vCPU's port in a word we share: its own vCPU was
        // signalled for it and handles it.
        if owner(port) != vcpu {
            return 0;
        }
        if self.pending[w].fetch_and(!bit, Ordering::AcqRel) & bit == 0 {
            return 0;
        }
        handle(port);
        1
    }
}

impl Default for SharedPage {
    fn default() -> Self {
        Self::new()
    }
}

/// Indices of the set bits of `word`, lowest first.
fn bits(mut word: u64) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        if word == 0 {
            return None;
        }
        let i = word.trailing_zeros() as usize;
        word &= word - 1;
        Some(i)
    })
}
