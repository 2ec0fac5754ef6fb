//! Where `scripts/build.sh` puts the images.

use crate::Error;
use std::path::{Path, PathBuf};

/// The workspace root (parent of this crate).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set (relative paths are
/// taken from the workspace root, where the scripts run cargo), else `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// `<target dir>/images`, filled by `scripts/build.sh`.
pub fn images_dir() -> PathBuf {
    target_dir().join("images")
}

/// Path of the image `name` (`hyp.bin`, `hyp.elf`, `bundle.cpio`), or
/// [`Error::MissingImage`] telling to run `scripts/build.sh`. Tests must not
/// skip silently when the images are missing.
pub fn image(name: &str) -> Result<PathBuf, Error> {
    let path = images_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingImage(path))
    }
}
