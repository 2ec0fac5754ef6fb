//! Disk images for block tests: a scratch image removed when the test ends,
//! and the data pattern the block test guests write (`fill_sector` of
//! guests/tests/src/bin/blk-io.rs and dom0's blk-test), so the host can check
//! the bytes that landed in the image.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Bytes in a sector of every disk the tests use.
pub const SECTOR: usize = 512;

/// The guests' pattern for `sector`: its number in the first 8 bytes, then
/// bytes mixed from the sector and the offset.
pub fn fill_sector(sector: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = if i < 8 {
            sector.to_le_bytes()[i]
        } else {
            (sector
                .wrapping_mul(0x9e37_79b9)
                .wrapping_add((i as u64).wrapping_mul(0x85eb_ca6b))
                >> 11) as u8
        };
    }
}

/// FNV-1a over `bytes`, continuing from `hash` (the guests print theirs).
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// FNV-1a's initial value.
pub const FNV1A_START: u64 = 0xcbf2_9ce4_8422_2325;

/// A zeroed image file in the temporary directory, named for this test
/// process, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A zeroed image of `bytes` bytes called `name` (made unique per process).
    pub fn new(name: &str, bytes: u64) -> Self {
        let path = std::env::temp_dir().join(format!("tern-{}-{name}", std::process::id()));
        let f = File::create(&path).unwrap();
        f.set_len(bytes).unwrap();
        Scratch(path)
    }

    /// Where the image is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
