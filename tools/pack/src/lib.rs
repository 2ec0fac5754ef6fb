//! `tern-pack`: host-side image tooling.
//!
//! - [`image`]: flatten the `hyp` ELF into the raw Image that boot loaders load.
//! - [`cpio`]: pack boot modules (dom0, guest ELFs, `*.toml` configs) into the
//!   cpio "newc" bundle passed as the initrd.
#![forbid(unsafe_code)]

pub mod cpio;
pub mod elf;
pub mod image;
