//! The guest library: domain configurations and ELF images in an ext2/3/4
//! filesystem on one of dom0's disks, read-only (`ext4-view`), so that
//! `create /guests/web.toml` starts domains that did not come in the boot
//! bundle, and `fs-ls` shows what there is.
//!
//! | module | holds |
//! |---|---|
//! | this file | [`Library`]: listing directories, reading a configuration and the image it names, with one-line errors ([`FsError`]) |
//! | [`paths`] | which `create` arguments are library paths; where a configuration's image is |
//! | [`disk`] | which disk holds the library (`dom0.fs=`), and reading it in whole sectors through the virtio-blk driver |
//!
//! A configuration's `image` is a path relative to the configuration's
//! directory, or absolute in the library. Everything but the disk I/O of
//! [`disk`] is host-tested, on images that `mke2fs -d` makes.

pub mod disk;
pub mod paths;

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use ext4_view::{Ext4, Ext4Error, Ext4Read, FileType};

use crate::config::{self, DomainConfig};
use crate::{CONFIG_MAX, is_config_module};

/// Largest image dom0 reads from the library, in bytes: the image is held
/// in dom0's heap while the hypervisor copies it, and no domain's RAM is
/// larger than this anyway.
pub const IMAGE_MAX: u64 = 64 * 1024 * 1024;

/// Why a library operation failed; shown as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsError {
    /// No disk holds a library.
    NoLibrary,
    /// The filesystem cannot be read (I/O, corrupt, unsupported features).
    Unreadable(String),
    /// `path` does not exist.
    NotFound(String),
    /// `path` is a directory where a file was wanted.
    IsADirectory(String),
    /// `path` is a file where a directory was wanted.
    NotADirectory(String),
    /// `path` is not a `*.toml` domain configuration.
    NotConfig(String),
    /// `path` is larger than the limit.
    TooLarge(String, u64),
    /// The configuration at `path` does not parse (the parser's message).
    BadConfig(String, String),
    /// Another failure at `path` (ext4-view's message).
    Other(String, String),
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoLibrary => f.write_str(
                "no guest library (no dom0 disk holds an ext2/3/4 filesystem; dom0.fs=vdX names one)",
            ),
            Self::Unreadable(why) => write!(f, "guest library unreadable: {why}"),
            Self::NotFound(p) => write!(f, "{p}: no such file or directory"),
            Self::IsADirectory(p) => write!(f, "{p}: is a directory"),
            Self::NotADirectory(p) => write!(f, "{p}: not a directory"),
            Self::NotConfig(p) => write!(f, "{p}: not a domain configuration (*.toml)"),
            Self::TooLarge(p, max) => write!(f, "{p}: larger than {max} bytes"),
            Self::BadConfig(p, why) => write!(f, "{p}: {why}"),
            Self::Other(p, why) => write!(f, "{p}: {why}"),
        }
    }
}

/// `ext4-view`'s error for an operation on `path`, as ours.
fn error_at(path: &str, e: Ext4Error) -> FsError {
    let path = path.to_string();
    match e {
        Ext4Error::NotFound => FsError::NotFound(path),
        Ext4Error::IsADirectory => FsError::IsADirectory(path),
        Ext4Error::NotADirectory => FsError::NotADirectory(path),
        e @ (Ext4Error::Io(_) | Ext4Error::Corrupt(_) | Ext4Error::Incompatible(_)) => {
            FsError::Unreadable(alloc::format!("{path}: {e}"))
        }
        e => FsError::Other(path, e.to_string()),
    }
}

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Link,
    /// A device, FIFO or socket.
    Special,
}

/// One entry of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name (lossily UTF-8).
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// Its size in bytes.
    pub size: u64,
}

impl fmt::Display for Entry {
    /// `fs-ls`'s line: the size (`<dir>` for a directory), then the name,
    /// with `/` after a directory's and `@` after a link's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.kind {
            Kind::Dir => "/",
            Kind::Link => "@",
            Kind::File | Kind::Special => "",
        };
        if self.kind == Kind::Dir {
            write!(f, "{:>10}  {}{mark}", "<dir>", self.name)
        } else {
            write!(f, "{:>10}  {}{mark}", self.size, self.name)
        }
    }
}

fn kind_of(t: FileType) -> Kind {
    if t.is_dir() {
        Kind::Dir
    } else if t.is_regular_file() {
        Kind::File
    } else if t.is_symlink() {
        Kind::Link
    } else {
        Kind::Special
    }
}

/// A mounted guest library.
pub struct Library {
    fs: Ext4,
}

impl Library {
    /// Reads the superblock and group descriptors through `reader`.
    pub fn load(reader: Box<dyn Ext4Read>) -> Result<Self, FsError> {
        Ext4::load(reader)
            .map(|fs| Self { fs })
            .map_err(|e| FsError::Unreadable(e.to_string()))
    }

    /// The filesystem's label (empty if it has none).
    pub fn label(&self) -> String {
        self.fs.label().to_str().unwrap_or("").into()
    }

    /// The entries of directory `path` (absolute) sorted by name, `.` and
    /// `..` left out; a file's path lists just that file.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>, FsError> {
        let meta = self.fs.metadata(path).map_err(|e| error_at(path, e))?;
        if !meta.is_dir() {
            let name = path.rsplit('/').next().unwrap_or(path);
            return Ok(alloc::vec![Entry {
                name: name.into(),
                kind: kind_of(meta.file_type()),
                size: meta.len(),
            }]);
        }
        let mut out = Vec::new();
        for entry in self.fs.read_dir(path).map_err(|e| error_at(path, e))? {
            let entry = entry.map_err(|e| error_at(path, e))?;
            let name = String::from_utf8_lossy(entry.file_name().as_ref()).into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let (kind, size) = match entry.metadata() {
                Ok(m) => (kind_of(m.file_type()), m.len()),
                Err(e) => return Err(error_at(&name, e)),
            };
            out.push(Entry { name, kind, size });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The contents of file `path` (absolute; links followed), if at most
    /// `max` bytes.
    pub fn read(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let meta = self.fs.metadata(path).map_err(|e| error_at(path, e))?;
        if meta.is_dir() {
            return Err(FsError::IsADirectory(path.into()));
        }
        if meta.len() > max {
            return Err(FsError::TooLarge(path.into(), max));
        }
        self.fs.read(path).map_err(|e| error_at(path, e))
    }

    /// The domain configuration at `path` (absolute, `*.toml`).
    pub fn config(&self, path: &str) -> Result<DomainConfig, FsError> {
        if !is_config_module(path) {
            // Said before looking, as for a boot module, unless there is
            // nothing there at all.
            self.fs.metadata(path).map_err(|e| error_at(path, e))?;
            return Err(FsError::NotConfig(path.into()));
        }
        let bytes = self.read(path, CONFIG_MAX)?;
        let text = core::str::from_utf8(&bytes)
            .map_err(|_| FsError::BadConfig(path.into(), "not UTF-8".into()))?;
        config::parse(text).map_err(|e| FsError::BadConfig(path.into(), e.to_string()))
    }

    /// The configuration at `path` and the image it names, or one line
    /// saying what is wrong (a missing image: `<name>: image <path>: ...`).
    pub fn domain(&self, path: &str) -> Result<(DomainConfig, Vec<u8>), String> {
        let cfg = self.config(path).map_err(|e| e.to_string())?;
        let image = self
            .image(path, &cfg)
            .map_err(|e| alloc::format!("{}: image {e}", cfg.name))?;
        Ok((cfg, image))
    }

    /// The ELF image the configuration at `config_path` names (`cfg.image`,
    /// relative to the configuration's directory or absolute).
    pub fn image(&self, config_path: &str, cfg: &DomainConfig) -> Result<Vec<u8>, FsError> {
        self.read(&paths::image_path(config_path, &cfg.image), IMAGE_MAX)
    }
}

#[cfg(test)]
mod tests;
