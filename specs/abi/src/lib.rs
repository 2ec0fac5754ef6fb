//! The tern hypercall ABI. TODO(owner: abi helper)
#![no_std]
#![forbid(unsafe_code)]
