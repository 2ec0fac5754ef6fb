//! The tern PV guest SDK. TODO(owner: sdk helper)
#![no_std]
