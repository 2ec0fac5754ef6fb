//! dom0's one store server and the hypercalls around it: giving a new
//! domain its page (granted read-write) and port (`alloc_unbound`) and
//! telling the hypervisor (`domctl set_store`), taking them back when the
//! domain is destroyed, and serving every connection when its event fires.
//!
//! The main loop calls [`take_kick`] in its wait condition and [`serve`]
//! after waking; the shell loop calls [`serve`] as it polls.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::store::{SharedStorePage, StoreError, StoreMsgType};
use pv_guest_sdk::abi::{Error, PAGE_SIZE};
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::{self, GrantRef};
use pv_guest_sdk::hypercall::ipa_of;
use pv_guest_sdk::{domctl, println};

use super::server::Server;
use super::tree::DOM0;

/// What dom0 holds for one domain's connection besides the server's state.
#[derive(Debug, Clone, Copy)]
struct Link {
    gref: GrantRef,
    port: Port,
}

#[derive(Debug, Default)]
struct Dom0Store {
    server: Server,
    links: BTreeMap<u32, Link>,
}

static STORE: spin::Mutex<Option<Dom0Store>> = spin::Mutex::new(None);
/// Set by any store port's event handler, taken by [`take_kick`].
static KICK: AtomicBool = AtomicBool::new(false);
/// Counts the times the store may have changed (a domain's requests were
/// served, or dom0 changed it): back ends waiting in a handshake re-read the
/// peer's `state` only when it moved, not on every wake.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Whether the store may have changed since `seen` (a [`GENERATION`]
/// value); moves `seen` up to now. Start `seen` at `u64::MAX`.
pub fn changed_since(seen: &mut u64) -> bool {
    let now = GENERATION.load(Ordering::Acquire);
    core::mem::replace(seen, now) != now
}

fn with<R>(f: impl FnOnce(&mut Dom0Store) -> R) -> R {
    f(STORE.lock().get_or_insert_with(Dom0Store::default))
}

fn on_event(_: Port) {
    KICK.store(true, Ordering::Release);
}

/// Whether a store event came since the last call (for the main loop's
/// wait condition; call [`serve`] when it is `true`).
pub fn take_kick() -> bool {
    KICK.swap(false, Ordering::AcqRel)
}

/// Gives domain `id` (created, not yet unpaused) its store: a zeroed page
/// granted to it read-write, a port reserved for it, both announced with
/// `domctl set_store`, and its home `/local/domain/<id>` with `name` and
/// `domid`. On failure nothing is left behind; the failing step is named.
pub fn introduce(id: DomainId, name: &str) -> Result<(), (&'static str, Error)> {
    let page = Box::new(SharedStorePage::new());
    let frame = ipa_of(&*page) / PAGE_SIZE;
    // SAFETY: the page is kept (in the server) until `end_access` of this
    // grant succeeds in `release`, and leaked if it never does; it is made
    // of atomics, so the domain's writes break no Rust reference.
    let gref = unsafe { grant::grant_frame(id, frame, false) }.map_err(|e| ("grant", e))?;
    let port = match events::alloc_unbound(id) {
        Ok(p) => p,
        Err(e) => {
            let _ = grant::end_access(gref);
            return Err(("alloc_unbound", e));
        }
    };
    events::on(port, on_event);
    if let Err(e) = domctl::set_store(id, DomainId::DOM0, gref.0, port.0) {
        let _ = events::close(port);
        let _ = grant::end_access(gref);
        return Err(("set_store", e));
    }
    with(|s| {
        s.server.introduce(id.0, name, page);
        s.links.insert(id.0, Link { gref, port });
    });
    serve();
    Ok(())
}

/// Domain `id` was destroyed: removes its home (firing watches), closes
/// its port and revokes the grant. A grant that cannot be revoked (still
/// mapped) keeps its page for ever rather than free memory it reaches.
pub fn release(id: DomainId) {
    let (page, link) = with(|s| (s.server.release(id.0), s.links.remove(&id.0)));
    if let Some(link) = link {
        let _ = events::close(link.port);
        match grant::end_access(link.gref) {
            Ok(()) => drop(page),
            Err(e) => {
                println!("dom0: store: domain {}: page kept: {e}", id.0);
                if let Some(p) = page {
                    Box::leak(p);
                }
            }
        }
    }
    serve();
}

/// Answers what every domain wrote to the store, writes out answers and
/// watch events, and notifies the domains whose page changed.
pub fn serve() {
    let (notify, notices) = with(|s| {
        let doms = s.server.service();
        if !doms.is_empty() {
            GENERATION.fetch_add(1, Ordering::AcqRel);
        }
        let ports: Vec<Port> = doms
            .iter()
            .filter_map(|d| s.links.get(d).map(|l| l.port))
            .collect();
        (ports, s.server.take_notices())
    });
    for port in notify {
        let _ = events::send(port);
    }
    for n in notices {
        println!("dom0: store: {n}");
    }
}

/// A request of dom0's own (the shell's verbs); the watch events it causes
/// go out at once.
pub fn request(ty: StoreMsgType, body: &[u8]) -> Result<Vec<u8>, StoreError> {
    let r = with(|s| s.server.request(DOM0, ty, body));
    if !matches!(
        ty,
        StoreMsgType::Read | StoreMsgType::Directory | StoreMsgType::GetPerms
    ) {
        GENERATION.fetch_add(1, Ordering::AcqRel);
    }
    serve();
    r
}

/// dom0 writes `value` at `path`.
pub fn write(path: &str, value: &[u8]) -> Result<(), StoreError> {
    request(
        StoreMsgType::Write,
        &[path.as_bytes(), b"\0", value].concat(),
    )
    .map(drop)
}

/// What is at `path`, if dom0 can read it.
pub fn read(path: &str) -> Option<Vec<u8>> {
    request(StoreMsgType::Read, &[path.as_bytes(), b"\0"].concat()).ok()
}

/// A back end's `state` in its directory `dir`.
pub fn set_state(dir: &str, s: pv_guest_sdk::abi::store::XenbusState) {
    // dom0 may write anywhere; a failure (quota) shows as a stuck front end.
    let _ = write(
        &alloc::format!("{dir}/state"),
        alloc::format!("{}", s.raw()).as_bytes(),
    );
}

/// `store-ls`: the lines of the subtree below `path`.
pub fn list(path: &str) -> Result<Vec<String>, StoreError> {
    with(|s| super::listing::lines(s.server.tree(), path))
}

/// `store-ls [path]`: the subtree, or one error line.
pub fn verb_ls(path: Option<&str>) {
    let path = path.unwrap_or("/");
    match list(path) {
        Ok(lines) => {
            for l in lines {
                crate::shell_println!("{l}");
            }
        }
        Err(e) => crate::shell_println!("error: store-ls: {path}: {e}"),
    }
}

/// `store-read path`: the value (quoted if it is not printable text), or
/// one error line.
pub fn verb_read(path: &str) {
    match request(StoreMsgType::Read, &[path.as_bytes(), b"\0"].concat()) {
        Ok(v) => match core::str::from_utf8(&v) {
            Ok(text) if !text.contains(|c: char| c.is_control()) => crate::shell_println!("{text}"),
            _ => crate::shell_println!("{}", super::listing::quoted(&v)),
        },
        Err(e) => crate::shell_println!("error: store-read: {path}: {e}"),
    }
}

/// `store-write path value`: nothing, or one error line.
pub fn verb_write(path: &str, value: &str) {
    let body = [path.as_bytes(), b"\0", value.as_bytes()].concat();
    if let Err(e) = request(StoreMsgType::Write, &body) {
        crate::shell_println!("error: store-write: {path}: {e}");
    }
}
