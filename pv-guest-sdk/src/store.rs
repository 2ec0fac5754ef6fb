//! The configuration store client (`specs/store.md`): read, write, list,
//! remove, permissions and watches over this domain's store page, the
//! front-end / back-end handshake of split devices, and dom0's shutdown and
//! reboot requests ([`Store::wait_shutdown_request`], module `shutdown`).
//!
//! ```ignore
//! use pv_guest_sdk::store::Store;
//! let mut s = Store::connect()?;             // from the start-info page
//! s.write("data/greeting", b"hello")?;       // relative: below our home
//! let v = s.read("/local/domain/0/name");    // Err(Store(EACCES)) for a domU
//! s.watch("data", "tok")?;
//! let ev = s.next_event(Some(deadline))?;    // blocks on the event channel
//! ```
//!
//! Requests are synchronous: one is sent, then the client blocks (on the
//! store's event channel) until its answer; watch events that arrive in
//! between are kept for [`Store::next_event`]. The page is mapped from the
//! grant dom0 made (`store_gref` of `store_domid`); every byte read from it
//! is copied out before it is looked at (`tern_abi::store`), and a server
//! that breaks the rings gives [`Error::Ring`], never a panic.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use tern_abi::domctl::DomainId;
use tern_abi::store::{
    Access, MsgAssembler, RecvError, STORE_PAYLOAD_MAX, SharedStorePage, StoreEndpoint,
    StoreMsgHeader, StoreMsgType,
};
use zerocopy::IntoBytes;

pub use tern_abi::store::{StoreError, StorePerm, XenbusState};

use crate::events::{self, Port};
use crate::grant::{self, GrantRef, Mapping};
use crate::time::Deadline;

mod device;
mod shutdown;
pub use device::{Device, FrontDetails};
pub use shutdown::{SHUTDOWN_NODE, parse_shutdown_request};

/// How long a request waits for its answer.
const ANSWER_MS: u64 = 10_000;

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The server refused the request.
    Store(StoreError),
    /// This domain has no store (its start-info page names none).
    NoStore,
    /// A hypercall failed while connecting.
    Hypercall(crate::Error),
    /// The server broke the rings or sent a message too long: the
    /// connection is unusable.
    Ring(RecvError),
    /// A request that does not fit a message.
    TooBig,
    /// No answer (or event) before the deadline.
    Timeout,
    /// The server's answer does not parse.
    Protocol,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => write!(f, "{e}"),
            Self::NoStore => f.write_str("no configuration store"),
            Self::Hypercall(e) => write!(f, "{e}"),
            Self::Ring(e) => write!(f, "store connection broken: {e}"),
            Self::TooBig => f.write_str("request too long"),
            Self::Timeout => f.write_str("timed out"),
            Self::Protocol => f.write_str("malformed answer"),
        }
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        Self::Hypercall(e)
    }
}

impl From<RecvError> for Error {
    fn from(e: RecvError) -> Self {
        Self::Ring(e)
    }
}

impl From<tern_abi::ring::RingError> for Error {
    fn from(e: tern_abi::ring::RingError) -> Self {
        Self::Ring(RecvError::Ring(e))
    }
}

/// One watch event: the path that changed (relative if the watch was set
/// with a relative path) and the watch's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The node that changed.
    pub path: String,
    /// The token given to [`Store::watch`].
    pub token: String,
}

/// A handle on this domain's connection to the store. Every handle shares
/// one connection (the store's event channel can be bound only once), made
/// by the first [`Store::connect`]: block, network and console front ends
/// and the guest's own code can each hold a `Store`.
pub struct Store {
    me: DomainId,
    port: Port,
}

/// The connection every [`Store`] uses: the mapped page, this end's ring
/// state, a message being assembled, and the watch events not yet taken.
struct Conn {
    mapping: Mapping,
    ep: StoreEndpoint,
    asm: Box<MsgAssembler>,
    port: Port,
    next_id: u32,
    events: VecDeque<WatchEvent>,
}

static CONN: spin::Mutex<Option<Conn>> = spin::Mutex::new(None);

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store(domain {}, port {})", self.me.0, self.port.0)
    }
}

fn page_of(m: &Mapping) -> &SharedStorePage {
    // SAFETY: `m` maps one page, read-write, at `m.ipa()` (page aligned,
    // VA == IPA) until it is dropped, which the borrow of `m` outlives;
    // `SharedStorePage` is one page of atomics, so the server's concurrent
    // writes break no assumption of this reference.
    unsafe { &*(m.ipa() as usize as *const SharedStorePage) }
}

impl Conn {
    /// Writes a whole message, waiting for room in the request ring.
    fn send(&mut self, ty: StoreMsgType, body: &[u8]) -> Result<u32, Error> {
        if body.len() > STORE_PAYLOAD_MAX {
            return Err(Error::TooBig);
        }
        self.next_id = self.next_id.wrapping_add(1);
        let h = StoreMsgHeader::new(ty, self.next_id, body.len() as u32);
        let msg = [h.as_bytes(), body].concat();
        let deadline = Deadline::after_ms(ANSWER_MS);
        let mut off = 0;
        while off < msg.len() {
            let page = page_of(&self.mapping);
            let n = self.ep.write(page, &msg[off..])?;
            if n > 0 {
                off += n;
                let _ = events::send(self.port);
                continue;
            }
            let ep = &mut self.ep;
            if !events::wait_until(
                || ep.writable(page).map_or(true, |n| n > 0),
                Some(deadline.0),
            ) {
                return Err(Error::Timeout);
            }
        }
        Ok(self.next_id)
    }

    /// Takes every complete message waiting: watch events are queued, the
    /// answer to `want` (if it came) is returned.
    fn drain(&mut self, want: Option<u32>) -> Result<Option<(u32, Vec<u8>)>, Error> {
        let mut answer = None;
        loop {
            let page = page_of(&self.mapping);
            let before = self.ep.consumed();
            let got = self
                .asm
                .pull(&mut self.ep, page)?
                .map(|(h, b)| (h, b.to_vec()));
            if self.ep.consumed() != before {
                // The server may hold more for us: tell it there is room.
                let _ = events::send(self.port);
            }
            let Some((h, body)) = got else {
                return Ok(answer);
            };
            if h.msg_type == StoreMsgType::WatchEvent.raw() {
                self.events.push_back(parse_event(&body)?);
            } else if Some(h.req_id) == want && answer.is_none() {
                answer = Some((h.msg_type, body));
            }
            // Anything else is a stale answer: dropped.
        }
    }

    /// Blocks until the response ring has bytes or `deadline` passes.
    fn wait(&mut self, deadline: Deadline) -> bool {
        let page = page_of(&self.mapping);
        let ep = &mut self.ep;
        events::wait_until(
            || ep.readable(page).map_or(true, |n| n > 0),
            Some(deadline.0),
        )
    }

    /// Sends one request and returns its answer's payload.
    fn call(&mut self, ty: StoreMsgType, body: &[u8]) -> Result<Vec<u8>, Error> {
        let id = self.send(ty, body)?;
        let deadline = Deadline::after_ms(ANSWER_MS);
        loop {
            if let Some((t, payload)) = self.drain(Some(id))? {
                if t == StoreMsgType::Error.raw() {
                    let name = payload.strip_suffix(b"\0").unwrap_or(&payload);
                    return Err(StoreError::from_name(name).map_or(Error::Protocol, Error::Store));
                }
                return Ok(payload);
            }
            if !self.wait(deadline) {
                return Err(Error::Timeout);
            }
        }
    }

    /// The next watch event, waiting for it until `deadline` (`None`:
    /// forever). `Ok(None)`: the deadline passed.
    fn next_event(&mut self, deadline: Option<Deadline>) -> Result<Option<WatchEvent>, Error> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            self.drain(None)?;
            if !self.events.is_empty() {
                continue;
            }
            let d = deadline.unwrap_or(Deadline(u64::MAX));
            if !self.wait(d) {
                return Ok(None);
            }
        }
    }

    /// Drops the watch events received so far.
    fn discard_events(&mut self) -> Result<usize, Error> {
        self.drain(None)?;
        let n = self.events.len();
        self.events.clear();
        Ok(n)
    }
}

impl Store {
    /// Connects to the store the start-info page names (maps its page and
    /// binds its port), or hands out another handle on the connection an
    /// earlier call made.
    pub fn connect() -> Result<Self, Error> {
        let si = crate::start_info().ok_or(Error::NoStore)?;
        let r = si.store().ok_or(Error::NoStore)?;
        let mut conn = CONN.lock();
        let port = match conn.as_ref() {
            Some(c) => c.port,
            None => {
                events::init()?;
                let mapping = grant::map(r.domid, GrantRef(r.gref), false)?;
                let port = events::bind_interdomain(r.domid, Port(r.port))?;
                let ep = StoreEndpoint::client(page_of(&mapping));
                *conn = Some(Conn {
                    mapping,
                    ep,
                    asm: Box::new(MsgAssembler::new()),
                    port,
                    next_id: 0,
                    events: VecDeque::new(),
                });
                port
            }
        };
        Ok(Self {
            me: si.domain_id(),
            port,
        })
    }

    /// Runs `f` on the shared connection. Never called with it held.
    fn with<R>(&mut self, f: impl FnOnce(&mut Conn) -> Result<R, Error>) -> Result<R, Error> {
        let mut conn = CONN.lock();
        f(conn.as_mut().ok_or(Error::NoStore)?)
    }

    /// Sends one request and returns its answer's payload.
    fn call(&mut self, ty: StoreMsgType, body: &[u8]) -> Result<Vec<u8>, Error> {
        self.with(|c| c.call(ty, body))
    }

    /// This domain's home, `/local/domain/<id>`.
    pub fn home(&self) -> String {
        alloc::format!("/local/domain/{}", self.me.0)
    }

    /// The local port of the store's event channel.
    pub fn port(&self) -> Port {
        self.port
    }
    /// The value of `path`.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, Error> {
        self.call(StoreMsgType::Read, &nul(path))
    }

    /// The value of `path` as text.
    pub fn read_string(&mut self, path: &str) -> Result<String, Error> {
        String::from_utf8(self.read(path)?).map_err(|_| Error::Protocol)
    }

    /// Sets the value of `path`, creating it (and the nodes above it).
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), Error> {
        let body = [path.as_bytes(), b"\0", value].concat();
        self.call(StoreMsgType::Write, &body).map(drop)
    }

    /// Creates `path` (and the nodes above it) if missing.
    pub fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        self.call(StoreMsgType::Mkdir, &nul(path)).map(drop)
    }

    /// The names of `path`'s children.
    pub fn ls(&mut self, path: &str) -> Result<Vec<String>, Error> {
        let v = self.call(StoreMsgType::Directory, &nul(path))?;
        fields(&v)
    }

    /// Removes `path` and everything below it.
    pub fn rm(&mut self, path: &str) -> Result<(), Error> {
        self.call(StoreMsgType::Rm, &nul(path)).map(drop)
    }

    /// The permissions of `path` (owner entry first).
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<StorePerm>, Error> {
        let v = self.call(StoreMsgType::GetPerms, &nul(path))?;
        fields(&v)?
            .iter()
            .map(|p| StorePerm::parse(p.as_bytes()).ok_or(Error::Protocol))
            .collect()
    }

    /// Replaces the permissions of `path` (owner entry first).
    pub fn set_perms(&mut self, path: &str, perms: &[StorePerm]) -> Result<(), Error> {
        let mut body = nul(path);
        for p in perms {
            body.extend_from_slice(p.to_string().as_bytes());
            body.push(0);
        }
        self.call(StoreMsgType::SetPerms, &body).map(drop)
    }

    /// Watches `path` and everything below it; events carry `token`. The
    /// server sends one event at once.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), Error> {
        let body = [path.as_bytes(), b"\0", token.as_bytes(), b"\0"].concat();
        self.call(StoreMsgType::Watch, &body).map(drop)
    }

    /// Removes a watch set with the same path and token.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), Error> {
        let body = [path.as_bytes(), b"\0", token.as_bytes(), b"\0"].concat();
        self.call(StoreMsgType::Unwatch, &body).map(drop)
    }

    /// The next watch event, waiting for it until `deadline` (`None`:
    /// forever). `Ok(None)`: the deadline passed.
    pub fn next_event(&mut self, deadline: Option<Deadline>) -> Result<Option<WatchEvent>, Error> {
        self.with(|c| c.next_event(deadline))
    }

    /// Drops the watch events received so far.
    pub fn discard_events(&mut self) -> Result<usize, Error> {
        self.with(Conn::discard_events)
    }

    /// Drops the queued watch events whose token is `token`, keeping the
    /// others in order.
    fn forget_events(&mut self, token: &str) {
        let _ = self.with(|c| {
            c.events.retain(|e| e.token != token);
            Ok(())
        });
    }
}

fn nul(path: &str) -> Vec<u8> {
    [path.as_bytes(), b"\0"].concat()
}

/// NUL-terminated strings.
fn fields(v: &[u8]) -> Result<Vec<String>, Error> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let body = v.strip_suffix(b"\0").ok_or(Error::Protocol)?;
    body.split(|&b| b == 0)
        .map(|f| String::from_utf8(f.to_vec()).map_err(|_| Error::Protocol))
        .collect()
}

fn parse_event(body: &[u8]) -> Result<WatchEvent, Error> {
    match fields(body)?.as_slice() {
        [path, token] => Ok(WatchEvent {
            path: path.clone(),
            token: token.clone(),
        }),
        _ => Err(Error::Protocol),
    }
}

#[cfg(test)]
mod tests {
    use super::device::state_value;
    use super::*;

    #[test]
    fn device_paths_and_answers() {
        let d = Device {
            kind: "ring".into(),
            index: 0,
            front: DomainId(3),
            back: DomainId(4),
        };
        assert_eq!(d.front_dir(), "/local/domain/3/device/ring/0");
        assert_eq!(d.back_dir(), "/local/domain/4/backend/ring/3/0");
        assert_eq!(state_value(XenbusState::Connected), b"4");
        assert_eq!(fields(b"a\0bc\0").unwrap(), ["a", "bc"]);
        assert_eq!(fields(b"").unwrap(), Vec::<String>::new());
        assert_eq!(fields(b"a"), Err(Error::Protocol));
        assert_eq!(
            parse_event(b"p\0t\0").unwrap(),
            WatchEvent {
                path: "p".into(),
                token: "t".into()
            }
        );
        assert_eq!(parse_event(b"p\0"), Err(Error::Protocol));
    }
}
