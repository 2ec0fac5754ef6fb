//! The tern hypercall ABI: the single source of truth shared by `hyp`, `dom0` and
//! `pv-guest-sdk`.
//!
//! This crate holds numbers, error codes, versions and the `zerocopy` layouts of
//! every structure that crosses the guest/hypervisor boundary. The documents in
//! `specs/` describe the same facts for humans; `tests/spec_matches_code.rs` checks
//! that the two agree in both directions.
//!
//! | module | holds |
//! |---|---|
//! | [`call`] | the SMCCC function-id encoding, [`Call`] (one per hypercall family), [`Caller`] |
//! | [`error`] | [`Error`], the negative status codes, and [`status_to_result`] |
//! | [`version`] | [`Version`], [`GUEST_ABI`], [`CONTROL_ABI`], [`Features`] |
//! | [`smccc`] | the standard SMCCC queries the hypervisor answers and tern's UID |
//! | [`console`], [`sched`], [`domctl`], [`module`], [`evtchn`], [`vcpu`], [`time`] | sub-operations, argument registers and structures of each family |
//! | [`start_info`] | [`StartInfo`], the page handed to every guest in `x0` |
//! | [`blkif`] | the virtual block device's ring entries and store keys (between guests) |
//! | [`netif`] | virtual network interfaces: the tx/rx frame descriptors and the store keys of their handshake (between guests) |
//! | [`conif`] | the split console's shared page: its input and output byte rings (between guests) |
//! | [`store`] | the configuration store's shared page, byte rings, messages and limits (between guests; the hypervisor never reads it) |
//! | [`layout`] | the guest-physical memory map and the vCPU entry state |
//! | [`spec`] | enumerable descriptions (calls, sub-ops, layouts) the spec test compares with `specs/` |
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

#[macro_use]
mod macros;

pub mod blkif;
pub mod call;
pub mod conif;
pub mod console;
pub mod domctl;
pub mod error;
pub mod evtchn;
pub mod grant;
pub mod layout;
pub mod module;
pub mod netif;
pub mod ring;
pub mod sched;
pub mod smccc;
pub mod spec;
pub mod start_info;
pub mod store;
pub mod strings;
pub mod time;
pub mod vcpu;
pub mod version;

pub use call::{Call, Caller, decode, function_id};
pub use error::{Error, status_to_result};
pub use start_info::StartInfo;
pub use version::{CONTROL_ABI, Features, GUEST_ABI, Version};

/// Size in bytes of a guest page: the translation granule of stage 2 and the unit
/// in which guest memory is counted (`memory_pages` fields).
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
