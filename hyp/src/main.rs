//! The hypervisor image. All code lives in the `hyp` library; this binary only
//! links it for `aarch64-unknown-none`. On the host it is an empty program so that
//! `cargo build`/`cargo test` of the workspace work.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use hyp as _;

#[cfg(not(target_os = "none"))]
fn main() {}
