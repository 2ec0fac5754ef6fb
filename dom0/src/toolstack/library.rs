//! The shell's guest-library verbs: `create <path>` (a configuration and
//! its image from the library on dom0's disk, [`dom0::fs`]) and `fs-ls`.

use dom0::domains::Watchlist;
use dom0::fs::paths;
use dom0::shell_println as println;

/// `create <path>`: the configuration and its image from the guest library.
pub(super) fn create(path: &str, watch: &mut Watchlist) {
    let lib = match dom0::fs::disk::open() {
        Ok(lib) => lib,
        Err(e) => return error!("create: {e}"),
    };
    // Every failure up to here is one line.
    let (cfg, image) = match lib.domain(path) {
        Ok(loaded) => loaded,
        Err(e) => return error!("create: {e}"),
    };
    drop(lib);
    println!("Parsing config from {path}");
    let built = crate::start_from(&cfg, crate::Image::Bytes(&image));
    super::started(built, &cfg, path, watch);
}

/// `fs-ls [<Path>]`: the guest library's directory `path` (default `/`).
pub(super) fn fs_ls(path: Option<&str>) {
    let path = paths::absolute(path.unwrap_or("/"));
    match dom0::fs::disk::open().and_then(|lib| lib.list(&path)) {
        Ok(entries) => {
            for e in entries {
                println!("{e}");
            }
        }
        Err(e) => error!("fs-ls: {e}"),
    }
}
