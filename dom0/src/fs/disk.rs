//! Which of dom0's disks holds the guest library, and reading it.
//!
//! The choice, made once at boot ([`init`]): `dom0.fs=<disk>` names the disk
//! (`vdb`, `mmc0`, ...; `dom0.fs=none`: no library); without it, the first
//! disk (`vda`, `vdb`, ..., then SD cards) that holds an ext2/3/4 superblock and that no boot-bundle
//! configuration names as a `disk` target, so that a disk meant for a
//! domain is not taken for the library by accident. dom0 only reads the
//! library; the block back end may still serve the same disk to a domain
//! (reads of both go through [`crate::blkback::service::with_disk`], one at a
//! time).
//!
//! `ext4-view` reads byte ranges; [`Sectors`] turns them into reads of whole
//! 512-byte sectors, as the virtio-blk driver takes them. The filesystem is
//! opened afresh for each command ([`open`]: the superblock and group
//! descriptors, a few KiB), so dom0 holds no state of it between commands.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ext4_view::Ext4Read;
use pv_guest_sdk::println;

use super::{FsError, Library};
use crate::blkback::disk::SECTOR;
use crate::blkback::service::{disk_names, with_disk};

/// Where the superblock starts, in bytes from the start of the disk.
const SUPERBLOCK_OFFSET: usize = 1024;
/// Where `s_magic` is in the superblock.
const MAGIC_OFFSET: usize = 0x38;
/// `s_magic` of ext2, ext3 and ext4 (one format, growing features).
const EXT_MAGIC: u16 = 0xef53;

/// Whether `bytes`, read from the start of a disk, hold an ext2/3/4
/// superblock's magic.
pub fn has_ext_magic(bytes: &[u8]) -> bool {
    let at = SUPERBLOCK_OFFSET + MAGIC_OFFSET;
    bytes
        .get(at..at + 2)
        .is_some_and(|m| u16::from_le_bytes([m[0], m[1]]) == EXT_MAGIC)
}

/// The library disk among `disks` (each disk's name and whether it holds
/// an ext superblock): the one `dom0.fs=` names (`asked`; `none` for no
/// library), else the first with a filesystem that is not in `used` (the
/// targets of the boot bundle's configurations). `Err` says why `asked`
/// cannot be the library.
pub fn choose(
    asked: Option<&str>,
    disks: &[(String, bool)],
    used: &[&str],
) -> Result<Option<String>, String> {
    match asked {
        Some("none") => Ok(None),
        Some(name) => match disks.iter().find(|(n, _)| n == name) {
            None => Err(alloc::format!("dom0.fs={name}: no such disk")),
            Some((_, false)) => Err(alloc::format!(
                "dom0.fs={name}: no ext2/3/4 filesystem on it"
            )),
            Some((n, true)) => Ok(Some(n.clone())),
        },
        None => Ok(disks
            .iter()
            .find(|(n, magic)| *magic && !used.contains(&n.as_str()))
            .map(|(n, _)| n.clone())),
    }
}

/// A failed sector read, as `ext4-view` wants errors.
#[derive(Debug)]
struct ReadError(String);

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for ReadError {}

/// Reads byte ranges through `read(first_sector, buf)`, which fills `buf`
/// (whole sectors) from `first_sector` on.
pub struct Sectors<F> {
    read: F,
    buf: Vec<u8>,
}

impl<F> Sectors<F>
where
    F: FnMut(u64, &mut [u8]) -> Result<(), String>,
{
    /// A reader over `read`.
    pub fn new(read: F) -> Self {
        Self {
            read,
            buf: Vec::new(),
        }
    }
}

impl<F> Ext4Read for Sectors<F>
where
    F: FnMut(u64, &mut [u8]) -> Result<(), String>,
{
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn core::error::Error + Send + Sync>> {
        if dst.is_empty() {
            return Ok(());
        }
        let sector = SECTOR as u64;
        let end = start_byte
            .checked_add(dst.len() as u64)
            .ok_or_else(|| Box::new(ReadError("read beyond 2^64".into())))?;
        let first = start_byte / sector;
        let sectors = end.div_ceil(sector) - first;
        self.buf.clear();
        self.buf.resize(sectors as usize * SECTOR, 0);
        (self.read)(first, &mut self.buf).map_err(|e| Box::new(ReadError(e)))?;
        let skip = (start_byte % sector) as usize;
        dst.copy_from_slice(&self.buf[skip..skip + dst.len()]);
        Ok(())
    }
}

/// The library disk's name ([`init`]).
static DISK: spin::Mutex<Option<String>> = spin::Mutex::new(None);

/// Whether dom0's disk `name` holds an ext superblock.
fn probe(name: &str) -> bool {
    let mut head = alloc::vec![0u8; SUPERBLOCK_OFFSET + SECTOR];
    with_disk(name, |d| {
        d.capacity() >= (head.len() / SECTOR) as u64
            && d.read(0, &mut head).is_ok()
            && has_ext_magic(&head)
    })
    .unwrap_or(false)
}

/// Chooses the library disk (see the module's text) among the disks the
/// block back end has; `targets` are the boot bundle configurations' disk
/// targets. Says which, and why not when `dom0.fs=` names an unusable one.
pub fn init(asked: Option<&str>, targets: &[&str]) {
    let disks: Vec<(String, bool)> = disk_names()
        .into_iter()
        .map(|n| {
            let magic = probe(&n);
            (n, magic)
        })
        .collect();
    match choose(asked, &disks, targets) {
        Ok(Some(name)) => {
            *DISK.lock() = Some(name.clone());
            match open() {
                Ok(lib) => println!(
                    "dom0: guest library on {name} (label '{}'): 'fs-ls' lists it",
                    lib.label()
                ),
                Err(e) => {
                    *DISK.lock() = None;
                    println!("dom0: {name}: {e}");
                }
            }
        }
        Ok(None) => {}
        Err(why) => println!("dom0: {why}; no guest library"),
    }
}

/// Opens the library on the disk [`init`] chose.
pub fn open() -> Result<Library, FsError> {
    let name = DISK.lock().clone().ok_or(FsError::NoLibrary)?;
    let reader = Sectors::new(move |sector, buf: &mut [u8]| {
        with_disk(&name, |d| d.read(sector, buf))
            .ok_or_else(|| alloc::format!("{name}: disk gone"))?
            .map_err(|_| alloc::format!("{name}: read of sector {sector} failed"))
    });
    Library::load(Box::new(reader))
}
