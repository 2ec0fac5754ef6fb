//! Arm-specific layer: entry and relocation, EL3 hand-off, EL2 MMU, exception
//! vectors, system registers. Everything else in the crate is generic.

pub mod aarch64;
