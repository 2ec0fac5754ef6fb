//! The tern hypervisor.
//!
//! Everything outside `arch` is plain Rust that builds and is unit-tested on the
//! host (`cargo test -p hyp`). `arch::aarch64` holds the thin Arm-specific layer:
//! entry assembly, system registers, exception vectors, MMU enable, context switch.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod addr;
pub mod bootargs;
pub mod drivers;
pub mod frames;
pub mod memmap;
pub mod modules;
pub mod pagetable;
pub mod platform;

#[cfg(target_arch = "aarch64")]
pub mod arch;
