//! Physical interrupts of dom0's devices, delivered to dom0 as events
//! (`evtchn_op bind_pirq` / `pirq_eoi`).
//!
//! An interrupt is taken on whatever CPU the GIC picks, often an idle one
//! before it takes the hypervisor lock, so which INTIDs are bound and which
//! fired live in lock-free bitmaps; the events are raised under the lock.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::drivers::gic::{self, Acked};
use crate::hypervisor::PirqRequest;
use crate::percpu::CpuIndex;
use crate::physmem::{FrameSource, PhysMem};
use crate::platform::IntId;

/// Words of the bitmaps: INTIDs 0..1020 are interrupts (1020.. are special).
const WORDS: usize = 16;

static BOUND: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];
static FIRED: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];
/// Bit `w` set: word `w` of [`FIRED`] may have bits, so that raising looks
/// at those words only (a swap of every word cost ~100 instructions per
/// device interrupt).
static FIRED_WORDS: AtomicU64 = AtomicU64::new(0);
const _: () = assert!(WORDS <= u64::BITS as usize);

fn set(map: &[AtomicU64; WORDS], intid: u32) {
    if let Some(w) = map.get(intid as usize / 64) {
        w.fetch_or(1 << (intid % 64), Ordering::AcqRel);
    }
}

/// If `irq` is bound to dom0, takes it: drops its priority but leaves it
/// active (so it cannot fire again until dom0's `pirq_eoi`) and notes it for
/// [`raise_fired`]. Returns whether it was one of dom0's.
pub fn take(irq: Acked) -> bool {
    let intid = irq.intid().get();
    let bound = BOUND
        .get(intid as usize / 64)
        .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (intid % 64)) != 0);
    if bound {
        set(&FIRED, intid);
        // After the bit: a raise that takes the summary first then finds it.
        FIRED_WORDS.fetch_or(1 << (intid / 64), Ordering::AcqRel);
        gic::priority_drop(irq);
    }
    bound
}

/// Raises the dom0 events of the device interrupts that fired.
pub fn raise_fired<M: PhysMem, F: FrameSource>(hv: &mut crate::hypervisor::Hypervisor<'_, M, F>) {
    let mem: &dyn PhysMem = hv.mem;
    // A bit set after this swap comes with its summary bit, which the
    // `raise_fired` of the CPU that took that interrupt then finds.
    let mut words = FIRED_WORDS.swap(0, Ordering::AcqRel);
    while words != 0 {
        let w = words.trailing_zeros() as usize;
        words &= words - 1;
        let mut bits = FIRED[w].swap(0, Ordering::AcqRel);
        while bits != 0 {
            let intid = (w * 64) as u32 + bits.trailing_zeros();
            bits &= bits - 1;
            if !hv.events.raise_pirq(mem, intid) {
                // Unbound since: nobody will `pirq_eoi` it.
                gic::deactivate(Acked::spi(IntId(intid)));
            }
        }
    }
}

/// Carries out the GIC side of `bind_pirq` / `pirq_eoi`.
pub fn apply_requests(requests: &mut alloc::vec::Vec<PirqRequest>) {
    for r in requests.drain(..) {
        match r {
            PirqRequest::Enable(intid) => {
                set(&BOUND, intid);
                // SPIs are routed to CPU 0; dom0's vCPU 0 gets the event.
                if let Err(e) = gic::enable_irq(IntId(intid), CpuIndex(0)) {
                    log::error!("pirq {intid}: {e:?}");
                }
            }
            PirqRequest::Eoi(intid) => gic::deactivate(Acked::spi(IntId(intid))),
        }
    }
}
