//! Watches: who asked to hear about which subtree, and which watches one
//! change fires (`specs/store.md`, "Watches").

use alloc::string::String;
use alloc::vec::Vec;

use tern_abi::store::{STORE_WATCH_QUOTA, StoreError, is_valid_path};

use super::tree::{DOM0, absolute, home, is_at_or_below};

/// One watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// The domain that set it.
    pub dom: u32,
    /// The watched path: absolute, or a special `@` path.
    pub path: String,
    /// The client's token, returned in each event.
    pub token: Vec<u8>,
    /// Whether the client gave the path relative to its home (events then
    /// name paths relative to it too).
    pub relative: bool,
}

impl Watch {
    /// The path as this watch's client names it.
    pub fn client_path<'a>(&self, abs: &'a str) -> &'a str {
        if self.relative {
            let h = home(self.dom);
            if let Some(rest) = abs.strip_prefix(h.as_str())
                && let Some(rest) = rest.strip_prefix('/')
            {
                return rest;
            }
        }
        abs
    }
}

/// Every watch.
#[derive(Debug, Default)]
pub struct Watches {
    list: Vec<Watch>,
}

/// The absolute (or special) form of a watch path for `dom`, and whether it
/// was relative.
pub fn watch_path(dom: u32, path: &[u8]) -> Result<(String, bool), StoreError> {
    if path.first() == Some(&b'@') {
        if !is_valid_path(path) || path.contains(&b'/') {
            return Err(StoreError::Inval);
        }
        let text = core::str::from_utf8(path).map_err(|_| StoreError::Inval)?;
        return Ok((text.into(), false));
    }
    Ok((absolute(dom, path)?, path.first() != Some(&b'/')))
}

impl Watches {
    /// No watch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of watches `dom` has set.
    pub fn count(&self, dom: u32) -> usize {
        self.list.iter().filter(|w| w.dom == dom).count()
    }

    /// Adds a watch: `EEXIST` for the same path and token twice, `EQUOTA`
    /// past the domain's quota (dom0 has none).
    pub fn add(&mut self, w: Watch) -> Result<(), StoreError> {
        if self
            .list
            .iter()
            .any(|o| o.dom == w.dom && o.path == w.path && o.token == w.token)
        {
            return Err(StoreError::Exist);
        }
        if w.dom != DOM0 && self.count(w.dom) >= STORE_WATCH_QUOTA {
            return Err(StoreError::Quota);
        }
        self.list.push(w);
        Ok(())
    }

    /// Removes the watch of `dom` with this path and token.
    pub fn remove(&mut self, dom: u32, path: &str, token: &[u8]) -> Result<(), StoreError> {
        let before = self.list.len();
        self.list
            .retain(|w| !(w.dom == dom && w.path == path && w.token == token));
        if self.list.len() == before {
            Err(StoreError::NoEnt)
        } else {
            Ok(())
        }
    }

    /// Removes every watch of `dom`.
    pub fn remove_domain(&mut self, dom: u32) {
        self.list.retain(|w| w.dom != dom);
    }

    /// The watches one change of `path` fires, each once, with the path
    /// each event names: the changed path for watches at or above it; for a
    /// removal (`removed`), also watches below it, with their own path.
    pub fn fired(&self, path: &str, removed: bool) -> Vec<(&Watch, String)> {
        let special = path.starts_with('@');
        self.list
            .iter()
            .filter_map(|w| {
                if special || w.path.starts_with('@') {
                    return (w.path == path).then(|| (w, path.into()));
                }
                if is_at_or_below(path, &w.path) {
                    Some((w, path.into()))
                } else if removed && is_at_or_below(&w.path, path) {
                    Some((w, w.path.clone()))
                } else {
                    None
                }
            })
            .collect()
    }
}
