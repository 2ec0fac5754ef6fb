//! dom0's logic that is not tied to the hardware: configuration parsing and
//! domain tracking. Host-tested; `main.rs` drives it with hypercalls.
#![no_std]

extern crate alloc;

pub mod config;
pub mod domains;

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
