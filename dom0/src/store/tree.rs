//! The store's tree: nodes by absolute path, each with a value, children and
//! permissions, and the permission rules of `specs/store.md`
//! ("Permissions"). Every operation names the calling domain and is checked
//! here; the caller turns the result into a message.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Bound;

use tern_abi::store::{
    Access, STORE_NODE_QUOTA, STORE_PATH_MAX, STORE_PERMS_MAX, STORE_VALUE_MAX, StoreError,
    StorePerm, is_valid_path,
};

/// dom0's domain id: it may do anything.
pub const DOM0: u32 = 0;

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its value.
    pub value: Vec<u8>,
    /// Its permissions: the owner entry first (never empty).
    pub perms: Vec<StorePerm>,
    /// Its children's names.
    pub children: BTreeSet<String>,
}

impl Node {
    /// The owning domain.
    pub fn owner(&self) -> u32 {
        self.perms[0].dom
    }
}

/// What `dom` may do with a node of permissions `perms`.
pub fn access(perms: &[StorePerm], dom: u32) -> Access {
    let Some(owner) = perms.first() else {
        return if dom == DOM0 {
            Access::Both
        } else {
            Access::None
        };
    };
    if dom == DOM0 || dom == owner.dom {
        return Access::Both;
    }
    perms[1..]
        .iter()
        .find(|p| p.dom == dom)
        .map_or(owner.access, |p| p.access)
}

/// The home of domain `dom`.
pub fn home(dom: u32) -> String {
    alloc::format!("/local/domain/{dom}")
}

/// The absolute form of `path` for `dom` (relative paths are below its
/// home). Special `@` paths are refused here; watches handle them.
pub fn absolute(dom: u32, path: &[u8]) -> Result<String, StoreError> {
    if !is_valid_path(path) || path.first() == Some(&b'@') {
        return Err(StoreError::Inval);
    }
    // Valid paths are ASCII.
    let text = core::str::from_utf8(path).map_err(|_| StoreError::Inval)?;
    let abs = if text.starts_with('/') {
        text.to_string()
    } else {
        alloc::format!("{}/{text}", home(dom))
    };
    if abs.len() > STORE_PATH_MAX {
        return Err(StoreError::TooBig);
    }
    Ok(abs)
}

/// The path above `path` (`None` for the root).
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let at = path.rfind('/')?;
    Some(if at == 0 { "/" } else { &path[..at] })
}

/// The last component of `path`.
pub fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// `child` under `dir`.
pub fn join(dir: &str, child: &str) -> String {
    if dir == "/" {
        alloc::format!("/{child}")
    } else {
        alloc::format!("{dir}/{child}")
    }
}

/// Whether `path` is `dir` or below it.
pub fn is_at_or_below(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// The tree.
#[derive(Debug)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    /// Nodes owned, per domain.
    owned: BTreeMap<u32, usize>,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

/// What a removal took away, for watches.
#[derive(Debug)]
pub struct Removed {
    /// Every removed path, the top one first.
    pub paths: Vec<String>,
    /// The top node's permissions, as they were.
    pub perms: Vec<StorePerm>,
}

impl Tree {
    /// `/`, `/local` and `/local/domain`, owned by dom0, closed to others.
    pub fn new() -> Self {
        let mut t = Self {
            nodes: BTreeMap::new(),
            owned: BTreeMap::new(),
        };
        let closed = vec![StorePerm {
            dom: DOM0,
            access: Access::None,
        }];
        t.insert("/", closed.clone());
        t.insert("/local", closed.clone());
        t.insert("/local/domain", closed);
        t
    }

    fn insert(&mut self, path: &str, perms: Vec<StorePerm>) {
        *self.owned.entry(perms[0].dom).or_default() += 1;
        if let Some(p) = parent(path)
            && let Some(n) = self.nodes.get_mut(p)
        {
            n.children.insert(base(path).to_string());
        }
        self.nodes.insert(
            path.to_string(),
            Node {
                value: Vec::new(),
                perms,
                children: BTreeSet::new(),
            },
        );
    }

    /// The node at `path`, unchecked (for dom0's own views).
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Number of nodes `dom` owns.
    pub fn owned_by(&self, dom: u32) -> usize {
        self.owned.get(&dom).copied().unwrap_or(0)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true: the root always exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nearest existing node at or above `path`, and its path.
    fn nearest(&self, path: &str) -> (&str, &Node) {
        let mut p = path;
        loop {
            if let Some((k, n)) = self.nodes.get_key_value(p) {
                return (k.as_str(), n);
            }
            // The root always exists, so this ends.
            p = parent(p).unwrap_or("/");
        }
    }

    /// The node at `path` if `dom` may read it. A missing node is `ENOENT`
    /// only if `dom` may read the nearest node above it, else `EACCES`, so
    /// that existence does not leak out of unreadable subtrees.
    pub fn readable(&self, dom: u32, path: &str) -> Result<&Node, StoreError> {
        let (at, node) = self.nearest(path);
        if !access(&node.perms, dom).read() {
            return Err(StoreError::Access);
        }
        if at != path {
            return Err(StoreError::NoEnt);
        }
        Ok(node)
    }

    /// Checks that `dom` may write `path` (the node, or the nearest one
    /// above it if it does not exist) and has quota for the nodes it would
    /// create. Returns the paths that would be created, top first.
    fn prepare_write(&self, dom: u32, path: &str) -> Result<Vec<String>, StoreError> {
        let (at, node) = self.nearest(path);
        if !access(&node.perms, dom).write() {
            return Err(StoreError::Access);
        }
        let mut missing = Vec::new();
        let mut p = path;
        while p != at {
            missing.push(p.to_string());
            p = parent(p).unwrap_or("/");
        }
        missing.reverse();
        if dom != DOM0 && self.owned_by(dom) + missing.len() > STORE_NODE_QUOTA {
            return Err(StoreError::Quota);
        }
        Ok(missing)
    }

    /// Creates `missing` (top first) below existing nodes, inheriting
    /// permissions; a domain other than dom0 owns what it creates.
    fn create(&mut self, dom: u32, missing: &[String]) {
        for p in missing {
            let above = parent(p).and_then(|a| self.nodes.get(a));
            let mut perms = above.map_or_else(
                || {
                    vec![StorePerm {
                        dom,
                        access: Access::None,
                    }]
                },
                |n| n.perms.clone(),
            );
            if dom != DOM0 {
                perms[0].dom = dom;
            }
            self.insert(p, perms);
        }
    }

    /// `write`: sets the value, creating the node and those above it.
    pub fn write(&mut self, dom: u32, path: &str, value: &[u8]) -> Result<(), StoreError> {
        if value.len() > STORE_VALUE_MAX {
            return Err(StoreError::TooBig);
        }
        let missing = self.prepare_write(dom, path)?;
        self.create(dom, &missing);
        if let Some(n) = self.nodes.get_mut(path) {
            n.value = value.to_vec();
        }
        Ok(())
    }

    /// `mkdir`: creates the node (and those above) if missing. Returns
    /// whether anything was created.
    pub fn mkdir(&mut self, dom: u32, path: &str) -> Result<bool, StoreError> {
        let missing = self.prepare_write(dom, path)?;
        self.create(dom, &missing);
        Ok(!missing.is_empty())
    }

    /// `rm`: removes the node and everything below it.
    pub fn rm(&mut self, dom: u32, path: &str) -> Result<Removed, StoreError> {
        if path == "/" {
            return Err(StoreError::Inval);
        }
        let node = self.readable_or_writable(dom, path)?;
        if !access(&node.perms, dom).write() {
            return Err(StoreError::Access);
        }
        let perms = node.perms.clone();
        let paths: Vec<String> = self.subtree(path).map(|(k, _)| k.clone()).collect();
        for p in &paths {
            if let Some(n) = self.nodes.remove(p)
                && let Some(c) = self.owned.get_mut(&n.owner())
            {
                *c = c.saturating_sub(1);
            }
        }
        if let Some(n) = parent(path).and_then(|a| self.nodes.get_mut(a)) {
            n.children.remove(base(path));
        }
        Ok(Removed { paths, perms })
    }

    /// The node for a write-type operation on an existing node: `ENOENT`
    /// only if the caller could see it is missing.
    fn readable_or_writable(&self, dom: u32, path: &str) -> Result<&Node, StoreError> {
        let (at, node) = self.nearest(path);
        if at != path {
            let a = access(&node.perms, dom);
            return Err(if a.read() || a.write() {
                StoreError::NoEnt
            } else {
                StoreError::Access
            });
        }
        Ok(node)
    }

    /// `set_perms`: replaces the node's permissions. Only dom0 may change
    /// the owner.
    pub fn set_perms(
        &mut self,
        dom: u32,
        path: &str,
        perms: &[StorePerm],
    ) -> Result<(), StoreError> {
        if perms.is_empty() {
            return Err(StoreError::Inval);
        }
        if perms.len() > STORE_PERMS_MAX {
            return Err(StoreError::TooBig);
        }
        let node = self.readable_or_writable(dom, path)?;
        if !access(&node.perms, dom).write() {
            return Err(StoreError::Access);
        }
        let old = node.owner();
        if dom != DOM0 && perms[0].dom != old {
            return Err(StoreError::Perm);
        }
        if let Some(n) = self.nodes.get_mut(path) {
            n.perms = perms.to_vec();
        }
        if perms[0].dom != old {
            if let Some(c) = self.owned.get_mut(&old) {
                *c = c.saturating_sub(1);
            }
            *self.owned.entry(perms[0].dom).or_default() += 1;
        }
        Ok(())
    }

    /// Every path at or below `path`, in order (for listings).
    pub fn subtree(&self, path: &str) -> impl Iterator<Item = (&String, &Node)> {
        // Paths with `path` as a prefix are contiguous in the map, but
        // `/a-b` sorts between `/a` and `/a/b`: filter those out.
        self.nodes
            .range::<str, _>((Bound::Included(path), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(path))
            .filter(move |(k, _)| is_at_or_below(k, path))
    }
}
