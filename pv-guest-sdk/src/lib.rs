//! The tern PV guest SDK: everything a paravirtualized guest links.
//!
//! A guest crate depends on this crate alone and needs no assembly, linker
//! script or `.cargo/config`: the SDK's build script supplies the linker script
//! (text at `tern_abi::layout::GUEST_IMAGE_BASE`), `_start` sets up the stack,
//! bss, FP/SIMD, an exception vector table and (feature `alloc`, default) a
//! heap over the RAM above the image, then calls the guest's entry function.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use pv_guest_sdk::{StartInfo, println};
//!
//! pv_guest_sdk::entry!(main);
//!
//! fn main(si: &StartInfo) {
//!     println!("hello from {}", si.name());
//! } // returning powers the domain off
//! ```
//!
//! Build with `cargo build --target aarch64-unknown-none`. On any other target
//! the crate builds too, with the hypercalls answering `NotImplemented`, so
//! that guest logic can be unit-tested on the host.
//!
//! Memory model: the SDK leaves the MMU off, so VA == IPA and every buffer is
//! passed to the hypervisor by its address ([`hypercall::ipa_of`]).
#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(target_arch = "aarch64")]
#[path = "arch/aarch64.rs"]
mod arch;
#[cfg(target_os = "none")]
mod rt;

#[cfg(feature = "alloc")]
pub mod blk;
pub mod cmdline;
pub mod console;
pub mod domctl;
pub mod events;
pub mod exception;
#[cfg(feature = "alloc")]
pub mod grant;
pub mod heap;
pub mod hypercall;
pub mod module;
#[cfg(feature = "alloc")]
pub mod net;
#[cfg(feature = "alloc")]
pub mod ring;
mod start_info;
#[cfg(feature = "alloc")]
pub mod store;
pub mod time;
pub mod vcpu;

pub use hypercall::{block, shutdown, version, yield_now};
pub use start_info::StartInfo;
/// The ABI crate, re-exported so guests need no second dependency.
pub use tern_abi as abi;
pub use tern_abi::sched::ShutdownReason;
pub use tern_abi::{Error, Version};

#[cfg(target_os = "none")]
pub use rt::start_info;

/// The start-info page of this domain (always `None` off the target).
#[cfg(not(target_os = "none"))]
pub fn start_info() -> Option<&'static StartInfo> {
    None
}

/// Runs `f` with IRQs (the event upcall) masked on this vCPU.
pub fn without_irqs<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "aarch64")]
    return arch::without_irqs(f);
    #[cfg(not(target_arch = "aarch64"))]
    f()
}

/// Unmasks IRQs on this vCPU: event handlers then run from the upcall
/// interrupt, whatever the vCPU is doing. Call [`events::init`] first.
pub fn enable_irqs() {
    #[cfg(target_arch = "aarch64")]
    arch::enable_irqs();
}

/// This vCPU's index within its domain (0 off the target).
pub fn vcpu_index() -> usize {
    #[cfg(target_arch = "aarch64")]
    return arch::vcpu_index();
    #[cfg(not(target_arch = "aarch64"))]
    0
}

/// Parks the calling vCPU forever.
pub fn halt() -> ! {
    #[cfg(target_arch = "aarch64")]
    arch::halt();
    #[cfg(not(target_arch = "aarch64"))]
    loop {
        core::hint::spin_loop();
    }
}

/// Declares the guest's entry function.
///
/// `entry!(path)` where `path` is a `fn(&StartInfo)` (returning powers the
/// domain off) or a `fn(&StartInfo) -> !`. The SDK's runtime calls it on the
/// boot vCPU once the stack, bss, FP/SIMD, vectors and heap are ready.
///
/// Off the bare-metal target the macro instead emits a `fn main()` that only
/// refers to the entry function, so a guest crate that uses
/// `#![cfg_attr(target_os = "none", no_std, no_main)]` still builds (and its
/// pure logic can be tested) on the host. Such a guest must name its entry
/// function something other than `main`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[cfg(target_os = "none")]
        #[doc(hidden)]
        #[unsafe(export_name = "__pv_guest_main")]
        #[allow(unreachable_code)]
        fn __pv_guest_main(start_info: &'static $crate::StartInfo) -> ! {
            // `let ()` accepts both `()` and `!` and rejects anything else.
            let () = $main(start_info);
            $crate::shutdown($crate::ShutdownReason::Poweroff)
        }

        #[cfg(not(target_os = "none"))]
        fn main() {
            let _ = $main;
            ::core::panic!("this is a tern guest: build it with --target aarch64-unknown-none");
        }
    };
}
