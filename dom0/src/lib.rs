//! dom0's logic that is not tied to the hardware: configuration parsing,
//! domain tracking, CPU-time reports (`dom0.top`), and the shell's line editor, commands and output formats.
//! Host-tested; `main.rs` and `toolstack.rs` drive it with hypercalls.
#![no_std]

extern crate alloc;

pub mod blkback;
pub mod config;
pub mod consback;
pub mod devlist;
pub mod devspec;
pub mod domains;
pub mod editor;
pub mod format;
pub mod fs;
pub mod keys;
pub mod net;
pub mod netback;
pub mod restart;
pub mod sdhci;
pub mod shell;
pub mod shell_io;
pub mod store;
pub mod switch;
pub mod top;
pub mod uart;
pub mod virtio;

/// Whether a boot module is a domain configuration (by its name).
pub fn is_config_module(name: &str) -> bool {
    name.ends_with(".toml")
}

/// Largest configuration file dom0 reads, in bytes.
pub const CONFIG_MAX: u64 = 64 * 1024;

#[cfg(test)]
mod tests {
    #[test]
    fn config_modules() {
        assert!(super::is_config_module("demo.toml"));
        assert!(!super::is_config_module("demo-guest"));
        assert!(!super::is_config_module("toml"));
    }
}
