//! Secondary vCPUs and inter-processor interrupts between this domain's own
//! vCPUs.
//!
//! ```ignore
//! use pv_guest_sdk::vcpu::{self, Ipi};
//! vcpu::start(1, || { /* runs on vCPU 1; returning takes it down */ })?;
//! let kick = Ipi::new(1, |_| { /* runs on vCPU 1 */ })?;
//! kick.send()?;
//! ```
//!
//! A domain is created with a fixed number of vCPUs (`StartInfo::vcpus`);
//! vCPU 0 runs the entry function, the others stay down until [`start`]
//! brings one up with `vcpu_op up`. The SDK gives each secondary vCPU its
//! own stack (from the heap, kept for that index and reused when it is
//! started again) and enters it through a trampoline that sets up FP/SIMD
//! and the exception vectors exactly like the boot vCPU's `_start`, then
//! runs the closure. The closure runs with IRQs masked; call
//! [`crate::enable_irqs`] in it to take event upcalls.

use tern_abi::evtchn::Port;
use tern_abi::vcpu::Op;
use tern_abi::{Call, Error};

use crate::events::{self, Handler};
use crate::hypercall;

/// Stack of a secondary vCPU started with [`start`]: enough for ordinary
/// Rust code and the upcall frame (720 bytes) with room to spare.
pub const STACK_SIZE: usize = 64 * 1024;

fn vcpu_call(op: Op, vcpu: usize, args: [u64; 2]) -> Result<[u64; 3], Error> {
    let [a3, a4] = args;
    hypercall::call(Call::VcpuOp, op.raw(), [vcpu as u64, a3, a4, 0, 0])
}

/// Whether vCPU `index` of this domain is up (`NotFound` beyond its vCPUs).
pub fn is_up(index: usize) -> Result<bool, Error> {
    vcpu_call(Op::IsUp, index, [0; 2]).map(|[up, _, _]| up != 0)
}

/// Stops vCPU `index` of this domain; its state is lost. To stop the calling
/// vCPU use [`stop_self`].
pub fn down(index: usize) -> Result<(), Error> {
    if index == crate::vcpu_index() {
        stop_self();
    }
    vcpu_call(Op::Down, index, [0; 2]).map(|_| ())
}

/// Stops the calling vCPU (what returning from a [`start`] closure does).
/// On the boot vCPU this leaves the domain running its other vCPUs.
pub fn stop_self() -> ! {
    let _ = vcpu_call(Op::Down, crate::vcpu_index(), [0; 2]);
    // `down` of oneself does not return; if the hypervisor refused, park.
    crate::halt()
}

/// Brings vCPU `index` (down) up running `f` on a stack of its own; when `f`
/// returns the vCPU goes down again. Fails with the hypervisor's error:
/// `NotFound` (no such vCPU), `InvalidState` (it is up), `NoMemory` (no
/// heap left for its stack); `NotImplemented` off the target.
#[cfg(feature = "alloc")]
pub fn start<F: FnOnce() + Send + 'static>(index: usize, f: F) -> Result<(), Error> {
    #[cfg(target_os = "none")]
    return imp::start(index, alloc::boxed::Box::new(alloc::boxed::Box::new(f)));
    #[cfg(not(target_os = "none"))]
    {
        let _ = (index, f);
        Err(Error::NotImplemented)
    }
}

/// The closure handed to a new vCPU: boxed twice so that a thin pointer to
/// it fits in one register.
#[cfg(all(feature = "alloc", target_os = "none"))]
type Boxed = alloc::boxed::Box<alloc::boxed::Box<dyn FnOnce() + Send>>;

#[cfg(all(feature = "alloc", target_os = "none"))]
mod imp {
    use super::{Boxed, Op, STACK_SIZE, vcpu_call};
    use crate::hypercall::ipa_of;
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::alloc::Layout;
    use tern_abi::Error;
    use tern_abi::domctl::VcpuEntry;

    /// Stack bases by vCPU index, allocated on first start and kept: a
    /// stack is reused only for the same index, which `vcpu_op up` refuses
    /// while that vCPU is up, so a live stack is never handed out twice.
    static STACKS: spin::Mutex<Vec<(usize, usize)>> = spin::Mutex::new(Vec::new());

    fn stack_top(index: usize) -> Result<usize, Error> {
        let mut stacks = STACKS.lock();
        if let Some(&(_, base)) = stacks.iter().find(|&&(i, _)| i == index) {
            return Ok(base + STACK_SIZE);
        }
        // 16-byte alignment: SP must be (AAPCS64, and `vcpu_op up` checks).
        let layout = Layout::from_size_align(STACK_SIZE, 16).map_err(|_| Error::TooBig)?;
        // SAFETY: `layout` has a non-zero size. The memory is never freed:
        // it stays reserved as vCPU `index`'s stack.
        let base = unsafe { alloc::alloc::alloc(layout) };
        if base.is_null() {
            return Err(Error::NoMemory);
        }
        stacks.push((index, base as usize));
        Ok(base as usize + STACK_SIZE)
    }

    /// How often `start` asks again for a vCPU that is down but still on
    /// its CPU (each after a yield; one CPU switch is enough in practice).
    const UP_RETRIES: u32 = 1000;

    pub(super) fn start(index: usize, f: Boxed) -> Result<(), Error> {
        let sp = stack_top(index)?;
        let closure = Box::into_raw(f);
        let entry = VcpuEntry {
            pc: crate::arch::secondary_entry(),
            sp: sp as u64,
            x: [closure as usize as u64, 0, 0, 0],
        };
        // `entry` is borrowed for the call; the hypervisor copies it. A
        // vCPU that is down but has not left its CPU yet (downed a moment
        // ago) is refused with `InvalidState` too: it leaves at that CPU's
        // next switch, so yield and ask again, a bounded number of times.
        let mut r;
        let mut tries = 0;
        loop {
            r = vcpu_call(
                Op::Up,
                index,
                [ipa_of(&entry), size_of::<VcpuEntry>() as u64],
            );
            if r != Err(Error::InvalidState)
                || tries == UP_RETRIES
                || super::is_up(index).unwrap_or(true)
            {
                break;
            }
            tries += 1;
            crate::yield_now();
        }
        if let Err(e) = r {
            // SAFETY: the vCPU did not start, so the pointer from
            // `into_raw` above was handed to no one: take it back.
            drop(unsafe { Box::from_raw(closure) });
            return Err(e);
        }
        Ok(())
    }

    /// Called by the secondary trampoline (`x0` = what [`start`] put in
    /// `VcpuEntry::x[0]`) on the new vCPU's stack.
    #[unsafe(no_mangle)]
    extern "C" fn __pv_rust_secondary(closure: usize) -> ! {
        // SAFETY: only `start` enters the trampoline, with `x0` = a pointer
        // from `Box::into_raw` whose ownership passed to this vCPU when
        // `vcpu_op up` succeeded; nothing else frees it.
        let f = unsafe { Box::from_raw(closure as *mut Box<dyn FnOnce() + Send>) };
        f();
        super::stop_self()
    }
}

/// An inter-processor interrupt to one vCPU of this domain: an event port
/// bound with `bind_ipi` whose handler runs on that vCPU (in its upcall, or
/// in [`events::wait_until`] there). Any vCPU of the domain may send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipi {
    port: Port,
    target: usize,
}

impl Ipi {
    /// Binds a new IPI port to vCPU `target` and runs `handler` there for
    /// each delivery. Call [`events::init`] first.
    pub fn new(target: usize, handler: Handler) -> Result<Self, Error> {
        let port = events::bind_ipi(target)?;
        events::on(port, handler);
        Ok(Self { port, target })
    }

    /// Interrupts the target vCPU (coalesced with a delivery still pending).
    pub fn send(&self) -> Result<(), Error> {
        events::send(self.port)
    }

    /// The port.
    pub const fn port(&self) -> Port {
        self.port
    }

    /// The vCPU it interrupts.
    pub const fn target(&self) -> usize {
        self.target
    }

    /// Closes the port.
    pub fn close(self) -> Result<(), Error> {
        events::close(self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_stand_ins() {
        assert_eq!(start(1, || {}), Err(Error::NotImplemented));
        assert_eq!(is_up(1), Err(Error::NotImplemented));
        assert_eq!(
            Ipi::new(0, |_| {}).map(|i| i.target()),
            Err(Error::NotImplemented)
        );
    }
}
