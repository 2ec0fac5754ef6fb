//! The store server: the tree, the watches, and one connection per domain
//! (its shared page, its end of the rings, the message being assembled and
//! the bytes waiting to go out). Pure logic: [`Server::service`] reads and
//! answers whatever the clients wrote and says whom to notify; dom0's
//! [`super::service`] does the hypercalls around it.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use tern_abi::store::{
    Access, MsgAssembler, RecvError, STORE_OUTPUT_MAX, STORE_PERMS_MAX, SharedStorePage,
    StoreEndpoint, StoreError, StoreMsgHeader, StoreMsgType, StorePerm, split_field,
};
use zerocopy::IntoBytes;

use super::tree::{DOM0, Tree, access, home, join};
use super::watch::{Watch, Watches, watch_path};

/// Messages taken from one client per [`Server::service`] pass, so that one
/// busy client cannot starve the others.
const MSGS_PER_PASS: usize = 32;

/// One domain's connection.
#[derive(Debug)]
struct Conn {
    page: Box<SharedStorePage>,
    ep: StoreEndpoint,
    asm: Box<MsgAssembler>,
    out: VecDeque<u8>,
    /// Why the connection was dropped, once it is.
    dropped: Option<String>,
}

/// The store server.
#[derive(Debug, Default)]
pub struct Server {
    tree: Tree,
    watches: Watches,
    conns: BTreeMap<u32, Conn>,
    /// Watch events waiting to be queued on their connections.
    events: Vec<(u32, Vec<u8>)>,
    notices: Vec<String>,
}

/// `OK\0`, the answer of requests that return nothing else.
const OK: &[u8] = b"OK\0";

/// The one path of a request payload (`path\0`; the NUL may be missing).
fn one_path(body: &[u8]) -> Result<&[u8], StoreError> {
    match split_field(body) {
        Some((p, [])) => Ok(p),
        Some(_) => Err(StoreError::Inval),
        None => Ok(body),
    }
}

/// `path\0token\0`.
fn path_and_token(body: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let (path, rest) = split_field(body).ok_or(StoreError::Inval)?;
    match split_field(rest) {
        Some((token, [])) => Ok((path, token)),
        _ => Err(StoreError::Inval),
    }
}

/// `perm\0perm\0...` (at least one).
fn parse_perms(mut rest: &[u8]) -> Result<Vec<StorePerm>, StoreError> {
    let mut perms = Vec::new();
    while !rest.is_empty() {
        let (p, r) = split_field(rest).ok_or(StoreError::Inval)?;
        if perms.len() == STORE_PERMS_MAX {
            return Err(StoreError::TooBig);
        }
        perms.push(StorePerm::parse(p).ok_or(StoreError::Inval)?);
        rest = r;
    }
    Ok(perms)
}

/// NUL-terminated strings, concatenated.
fn nul_list<I: IntoIterator<Item = S>, S: AsRef<[u8]>>(items: I) -> Vec<u8> {
    let mut v = Vec::new();
    for i in items {
        v.extend_from_slice(i.as_ref());
        v.push(0);
    }
    v
}

impl Server {
    /// An empty store: `/`, `/local`, `/local/domain`, no connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tree, for dom0's own views (`store-ls`).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Takes the log lines about dropped connections.
    pub fn take_notices(&mut self) -> Vec<String> {
        core::mem::take(&mut self.notices)
    }

    /// Whether `dom` has a live connection.
    pub fn is_connected(&self, dom: u32) -> bool {
        self.conns.get(&dom).is_some_and(|c| c.dropped.is_none())
    }

    /// The page of `dom`'s connection (to grant it).
    pub fn page(&self, dom: u32) -> Option<&SharedStorePage> {
        self.conns.get(&dom).map(|c| &*c.page)
    }

    /// A new domain: creates its home (`name`, `domid`) owned by it, fires
    /// the watches, and serves `page` (zeroed, about to be granted to it).
    pub fn introduce(&mut self, dom: u32, name: &str, page: Box<SharedStorePage>) {
        let h = home(dom);
        if let Ok(r) = self.tree.rm(DOM0, &h) {
            self.fire(&h, Some(&r.perms));
        }
        // dom0 may write anywhere; the errors cannot happen.
        let _ = self.tree.mkdir(DOM0, &h);
        let owner = [StorePerm {
            dom,
            access: Access::None,
        }];
        let _ = self.tree.set_perms(DOM0, &h, &owner);
        let _ = self.tree.write(DOM0, &join(&h, "name"), name.as_bytes());
        let _ = self
            .tree
            .write(DOM0, &join(&h, "domid"), alloc::format!("{dom}").as_bytes());
        self.fire(&h, None);
        self.fire("@introduceDomain", None);
        self.conns.insert(
            dom,
            Conn {
                page,
                ep: StoreEndpoint::server(),
                asm: Box::new(MsgAssembler::new()),
                out: VecDeque::new(),
                dropped: None,
            },
        );
        self.deliver_events();
    }

    /// A domain is gone: removes its home and its watches, fires the
    /// watches, and hands back its page.
    pub fn release(&mut self, dom: u32) -> Option<Box<SharedStorePage>> {
        self.watches.remove_domain(dom);
        let h = home(dom);
        if let Ok(r) = self.tree.rm(DOM0, &h) {
            self.fire(&h, Some(&r.perms));
        }
        self.fire("@releaseDomain", None);
        let conn = self.conns.remove(&dom);
        self.deliver_events();
        conn.map(|c| c.page)
    }

    /// Runs one request of `dom` (dom0's shell uses this directly) and
    /// queues the watch events it causes. Returns the answer's payload.
    pub fn request(
        &mut self,
        dom: u32,
        ty: StoreMsgType,
        body: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let r = self.op(dom, ty, body);
        self.deliver_events();
        r
    }

    fn op(&mut self, dom: u32, ty: StoreMsgType, body: &[u8]) -> Result<Vec<u8>, StoreError> {
        use super::tree::absolute;
        match ty {
            StoreMsgType::Read => {
                let p = absolute(dom, one_path(body)?)?;
                Ok(self.tree.readable(dom, &p)?.value.clone())
            }
            StoreMsgType::Directory => {
                let p = absolute(dom, one_path(body)?)?;
                Ok(nul_list(&self.tree.readable(dom, &p)?.children))
            }
            StoreMsgType::GetPerms => {
                let p = absolute(dom, one_path(body)?)?;
                let n = self.tree.readable(dom, &p)?;
                Ok(nul_list(n.perms.iter().map(|p| alloc::format!("{p}"))))
            }
            StoreMsgType::Write => {
                let (path, value) = split_field(body).ok_or(StoreError::Inval)?;
                let p = absolute(dom, path)?;
                self.tree.write(dom, &p, value)?;
                self.fire(&p, None);
                Ok(OK.into())
            }
            StoreMsgType::Mkdir => {
                let p = absolute(dom, one_path(body)?)?;
                if self.tree.mkdir(dom, &p)? {
                    self.fire(&p, None);
                }
                Ok(OK.into())
            }
            StoreMsgType::Rm => {
                let p = absolute(dom, one_path(body)?)?;
                let r = self.tree.rm(dom, &p)?;
                self.fire(&p, Some(&r.perms));
                Ok(OK.into())
            }
            StoreMsgType::SetPerms => {
                let (path, rest) = split_field(body).ok_or(StoreError::Inval)?;
                let p = absolute(dom, path)?;
                let perms = parse_perms(rest)?;
                self.tree.set_perms(dom, &p, &perms)?;
                self.fire(&p, None);
                Ok(OK.into())
            }
            StoreMsgType::Watch => {
                let (path, token) = path_and_token(body)?;
                let (wp, relative) = watch_path(dom, path)?;
                let w = Watch {
                    dom,
                    path: wp,
                    token: token.into(),
                    relative,
                };
                // The first event, right after the answer (xenstore's).
                let first = event_payload(&w, &w.path);
                self.watches.add(w)?;
                self.events.push((dom, first));
                Ok(OK.into())
            }
            StoreMsgType::Unwatch => {
                let (path, token) = path_and_token(body)?;
                let (wp, _) = watch_path(dom, path)?;
                self.watches.remove(dom, &wp, token)?;
                Ok(OK.into())
            }
            StoreMsgType::WatchEvent | StoreMsgType::Error => Err(StoreError::Inval),
        }
    }

    /// Collects the events of a change of `path`: for each watch it fires
    /// whose domain may read the node (as it is now, or `removed`: the
    /// permissions the removed node had).
    fn fire(&mut self, path: &str, removed: Option<&[StorePerm]>) {
        let perms = match removed {
            Some(p) => Some(p),
            None => self.tree.get(path).map(|n| n.perms.as_slice()),
        };
        let special = path.starts_with('@');
        for (w, ev) in self.watches.fired(path, removed.is_some()) {
            let may_read = special || perms.is_some_and(|p| access(p, w.dom).read());
            if may_read {
                self.events.push((w.dom, event_payload(w, &ev)));
            }
        }
    }

    /// Queues the collected events on their domains' connections (dom0
    /// and dropped connections get none).
    fn deliver_events(&mut self) {
        for (dom, payload) in core::mem::take(&mut self.events) {
            if let Some(c) = self.conns.get_mut(&dom)
                && c.dropped.is_none()
            {
                queue(c, StoreMsgType::WatchEvent.raw(), 0, &payload);
            }
        }
    }

    fn drop_conn(&mut self, dom: u32, why: String) {
        if let Some(c) = self.conns.get_mut(&dom) {
            c.dropped = Some(why.clone());
            c.out.clear();
        }
        self.watches.remove_domain(dom);
        self.notices
            .push(alloc::format!("domain {dom}: connection dropped: {why}"));
    }

    /// Reads and answers what every client wrote, then writes out what is
    /// queued. Returns the domains whose page changed (to notify).
    pub fn service(&mut self) -> Vec<u32> {
        // dom0's loop calls this on every pass, for whatever woke it (a
        // block request, a frame): mostly there is nothing here, and the
        // pass below allocates.
        if self.idle() {
            return Vec::new();
        }
        let mut notify = BTreeSet::new();
        let doms: Vec<u32> = self.conns.keys().copied().collect();
        for &dom in &doms {
            for _ in 0..MSGS_PER_PASS {
                let Some(c) = self.conns.get_mut(&dom).filter(|c| c.dropped.is_none()) else {
                    break;
                };
                let before = c.ep.consumed();
                let got = c
                    .asm
                    .pull(&mut c.ep, &c.page)
                    .map(|m| m.map(|(h, b)| (h, b.to_vec())));
                if c.ep.consumed() != before {
                    // A client waiting for room in the request ring.
                    notify.insert(dom);
                }
                match got {
                    Ok(Some((h, body))) => self.handle(dom, h, &body),
                    Ok(None) => break,
                    Err(e) => {
                        let why = match e {
                            RecvError::Ring(r) => alloc::format!("{r}"),
                            RecvError::TooLong(_) => alloc::format!("{e}"),
                        };
                        self.drop_conn(dom, why);
                        break;
                    }
                }
            }
        }
        for &dom in &doms {
            let Some(c) = self.conns.get_mut(&dom).filter(|c| c.dropped.is_none()) else {
                continue;
            };
            match flush(c) {
                Ok(true) => {
                    notify.insert(dom);
                }
                Ok(false) => {}
                Err(why) => self.drop_conn(dom, why),
            }
        }
        notify
            .into_iter()
            .filter(|&d| self.is_connected(d))
            .collect()
    }

    /// Whether [`Server::service`] would find nothing to do: no live
    /// connection has unread request bytes or answers queued. A ring the
    /// peer broke counts as work (the pass drops it); the check reads on a
    /// copy of the endpoint so that the pass reports it as it always did.
    fn idle(&self) -> bool {
        self.conns.values().all(|c| {
            c.dropped.is_some()
                || (c.out.is_empty() && matches!(c.ep.clone().readable(&c.page), Ok(0)))
        })
    }

    fn handle(&mut self, dom: u32, h: StoreMsgHeader, body: &[u8]) {
        let r = if h.tx_id != 0 {
            Err(StoreError::NoSys)
        } else {
            match StoreMsgType::from_raw(h.msg_type) {
                Some(ty) => self.op(dom, ty, body),
                None => Err(StoreError::Inval),
            }
        };
        if let Some(c) = self.conns.get_mut(&dom) {
            match r {
                Ok(payload) => queue(c, h.msg_type, h.req_id, &payload),
                Err(e) => queue(
                    c,
                    StoreMsgType::Error.raw(),
                    h.req_id,
                    &nul_list([e.name()]),
                ),
            }
        }
        self.deliver_events();
    }
}

/// `path\0token\0` of an event for `w` about absolute `path`.
fn event_payload(w: &Watch, path: &str) -> Vec<u8> {
    nul_list([w.client_path(path).as_bytes(), &w.token])
}

/// Appends one message to a connection's output.
fn queue(c: &mut Conn, msg_type: u32, req_id: u32, payload: &[u8]) {
    let h = StoreMsgHeader {
        msg_type,
        req_id,
        tx_id: 0,
        len: payload.len() as u32,
    };
    c.out.extend(h.as_bytes());
    c.out.extend(payload);
}

/// Writes what fits of a connection's output. `Ok(true)`: something was
/// written. An error says why the connection must be dropped.
fn flush(c: &mut Conn) -> Result<bool, String> {
    if c.out.len() > STORE_OUTPUT_MAX {
        return Err(alloc::format!(
            "{} bytes of answers unread (limit {STORE_OUTPUT_MAX})",
            c.out.len()
        ));
    }
    let mut wrote = false;
    while !c.out.is_empty() {
        let (a, _) = c.out.as_slices();
        let n = c.ep.write(&c.page, a).map_err(|e| alloc::format!("{e}"))?;
        if n == 0 {
            break;
        }
        c.out.drain(..n);
        wrote = true;
    }
    Ok(wrote)
}
