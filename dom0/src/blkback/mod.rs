//! The block back end (`specs/blkif.md`): serves each domain's virtual
//! disks (its configuration's `disk = [...]`) from dom0's own disks
//! (virtio-blk disks, SD cards: anything that is a [`disk::BlockDevice`]),
//! over one shared ring and event channel per disk.
//!
//! | module | holds |
//! |---|---|
//! | [`disk`] | the [`disk::BlockDevice`] trait every real disk implements, and dom0's named disks |
//! | [`request`] | what a request may ask of a virtual disk (a whole disk or a region of one): the checks of `specs/blkif.md`, in order |
//! | [`engine`] | serving one ring: take, check, copy, read/write/flush, answer; generic over the ring, the disk and the page copies so that it is host-tested |
//! | [`service`] | dom0's one back end: store entries, the handshake as a non-blocking state machine run from dom0's loops, requests in flight at queued disks, the real disks, tear-down |
//! | [`bench`] | dom0's direct reads for the `blk-read-4k` benchmark |
//! | `queued` | requests in flight at disks that take several at once, answered as they finish |
//! | `copier` | request data in by grant copy, out through transient writable grant maps, or both ways through persistent ones |
//! | `persistent` | the data pages a front end reuses, kept mapped (`feature-persistent`) |
//!
//! Everything but [`service`] is plain logic, tested on the host.

pub mod bench;
mod copier;
pub mod disk;
pub mod engine;
mod persistent;
mod queued;
pub mod request;
pub mod service;

#[cfg(test)]
mod tests;
