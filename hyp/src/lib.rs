//! The tern hypervisor.
//!
//! Everything outside `arch` is plain Rust that builds and is unit-tested on the
//! host (`cargo test -p hyp`). `arch::aarch64` holds the thin Arm-specific layer:
//! entry assembly, system registers, exception vectors, MMU enable, context switch.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod addr;
pub mod boot;
pub mod bootargs;
pub mod console_in;
pub mod domain;
pub mod drivers;
pub mod elf;
pub mod evtchn;
pub mod fdt_nops;
pub mod frames;
pub mod grant;
pub mod heap;
pub mod hypercall;
pub mod hypervisor;
pub mod lifecycle;
pub mod logger;
pub mod memmap;
pub mod modules;
pub mod pagetable;
pub mod percpu;
pub mod physmem;
pub mod platform;
pub mod power;
pub mod sched;
pub(crate) mod slot_map;
pub mod smp;
pub mod stage2;
pub mod vcpu;
pub(crate) mod vec_map;

#[cfg(target_arch = "aarch64")]
pub mod arch;
