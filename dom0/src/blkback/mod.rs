//! The block back end (`specs/blkif.md`): serves each domain's virtual
//! disks (its configuration's `disk = [...]`) from dom0's virtio-blk disks,
//! over one shared ring and event channel per disk.
//!
//! | module | holds |
//! |---|---|
//! | [`request`] | what a request may ask of a virtual disk (a whole disk or a region of one): the checks of `specs/blkif.md`, in order |
//! | [`engine`] | serving one ring: take, check, copy, read/write/flush, answer; generic over the ring, the disk and the grant copies so that it is host-tested |
//! | [`service`] | dom0's one back end: store entries, the handshake as a non-blocking state machine run from dom0's loops, grant copies, the virtio disks, tear-down |
//!
//! Everything but [`service`] is plain logic, tested on the host.

pub mod engine;
pub mod request;
pub mod service;

#[cfg(test)]
mod tests;
