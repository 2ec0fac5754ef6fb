//! The configuration store's wire format: the shared page between a domain
//! and the store server (dom0), its two byte rings, the message header, the
//! message types and error names, the limits, and the front-end/back-end
//! device states. `specs/store.md` is the normative description; the
//! hypervisor never reads this page.
//!
//! The design is xenstore's domain interface: one page with a request ring
//! (client to server) and a response ring (server to client), each of
//! [`STORE_RING_SIZE`] bytes with two free-running 32-bit indices. Messages
//! are a [`StoreMsgHeader`] and `len` payload bytes, streamed through the
//! ring (a message may be longer than the ring; the reader assembles it).
//!
//! Each end keeps its own index privately ([`StoreEndpoint`]) and only reads
//! the peer's from the page, so a peer that scribbles on the page cannot make
//! this end read or write outside the ring: an index claiming more bytes than
//! the ring holds is [`RingError::Overflow`] and the end stops
//! ([`RingError::Broken`]); the server then drops the connection.

use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub use crate::ring::RingError;
use crate::spec::{LayoutDesc, layout_desc};

/// Bytes of each of the two rings of a [`StorePage`].
pub const STORE_RING_SIZE: usize = 1024;
/// Longest path, in bytes, in its absolute form (`/local/domain/<id>/...`).
pub const STORE_PATH_MAX: usize = 256;
/// Longest value of a node, in bytes.
pub const STORE_VALUE_MAX: usize = 2048;
/// Longest message payload, in bytes.
pub const STORE_PAYLOAD_MAX: usize = 4096;
/// Bytes of a [`StoreMsgHeader`].
pub const STORE_HEADER_BYTES: usize = size_of::<StoreMsgHeader>();
/// Longest message: header and payload.
pub const STORE_MSG_MAX: usize = STORE_HEADER_BYTES + STORE_PAYLOAD_MAX;
// A write of the longest value to the longest path fits one message.
const _: () = assert!(STORE_PATH_MAX + 1 + STORE_VALUE_MAX <= STORE_PAYLOAD_MAX);
/// Most permission entries of one node (owner entry included).
pub const STORE_PERMS_MAX: usize = 16;
/// Most nodes a domain other than dom0 may own.
pub const STORE_NODE_QUOTA: usize = 1000;
/// Most watches a domain other than dom0 may have set.
pub const STORE_WATCH_QUOTA: usize = 128;
/// Most bytes of responses and watch events the server queues for a client
/// that does not read them; past this the connection is dropped.
pub const STORE_OUTPUT_MAX: usize = 64 * 1024;

/// Header of every message, in both directions (xenstore's `xsd_sockmsg`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StoreMsgHeader {
    /// IN/OUT: a [`StoreMsgType`].
    pub msg_type: u32,
    /// IN: chosen by the client; OUT: the request's, echoed (0 in a watch event).
    pub req_id: u32,
    /// IN/OUT: transaction id; 0 (transactions are not defined yet).
    pub tx_id: u32,
    /// IN/OUT: payload bytes that follow, at most [`STORE_PAYLOAD_MAX`].
    pub len: u32,
}

impl StoreMsgHeader {
    /// A header for `len` payload bytes (outside transactions).
    pub const fn new(msg_type: StoreMsgType, req_id: u32, len: u32) -> Self {
        Self {
            msg_type: msg_type.raw(),
            req_id,
            tx_id: 0,
            len,
        }
    }
}

/// The shared page, as plain bytes (for its description; both ends use the
/// atomic view [`SharedStorePage`]). "IN" fields are written by the client
/// domain, "OUT" fields by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct StorePage {
    /// IN: the request ring.
    pub req: [u8; STORE_RING_SIZE],
    /// OUT: the response ring.
    pub rsp: [u8; STORE_RING_SIZE],
    /// OUT: request bytes consumed by the server (free-running).
    pub req_cons: u32,
    /// IN: request bytes produced by the client (free-running).
    pub req_prod: u32,
    /// IN: response bytes consumed by the client (free-running).
    pub rsp_cons: u32,
    /// OUT: response bytes produced by the server (free-running).
    pub rsp_prod: u32,
    /// Zero.
    pub reserved: [u8; 2032],
}
const _: () = assert!(size_of::<StorePage>() == crate::PAGE_SIZE as usize);

abi_enum! {
    /// `StoreMsgHeader::msg_type`. The numbers are xenstore's (`XS_*`).
    pub enum StoreMsgType: u32, unknown = InvalidArgument {
        /// Payload `path\0`; answer: the names of its children, each
        /// followed by a NUL.
        Directory = 1 => "directory",
        /// Payload `path\0`; answer: the value (no NUL added).
        Read = 2 => "read",
        /// Payload `path\0`; answer: its permissions, each followed by a NUL.
        GetPerms = 3 => "get_perms",
        /// Payload `path\0token\0`; answer `OK\0`, then one watch event at once.
        Watch = 4 => "watch",
        /// Payload `path\0token\0`; answer `OK\0`.
        Unwatch = 5 => "unwatch",
        /// Payload `path\0value` (the value runs to the end); answer `OK\0`.
        Write = 11 => "write",
        /// Payload `path\0`; answer `OK\0` (also if it exists).
        Mkdir = 12 => "mkdir",
        /// Payload `path\0`; removes the node and everything below; answer `OK\0`.
        Rm = 13 => "rm",
        /// Payload `path\0perm\0perm\0...`; answer `OK\0`.
        SetPerms = 14 => "set_perms",
        /// Server to client, unsolicited: `path\0token\0`.
        WatchEvent = 15 => "watch_event",
        /// Server to client, answering a failed request: the error's name and a NUL.
        Error = 16 => "error",
    }
}

abi_enum! {
    /// Why a request failed, as its name travels in an `Error` message
    /// (xenstore's errno names; the numbers are Linux's errno values).
    pub enum StoreError: u32, unknown = InvalidArgument {
        /// Not allowed (changing a node's owner, without being dom0).
        Perm = 1 => "EPERM",
        /// No such node.
        NoEnt = 2 => "ENOENT",
        /// A payload, path or value longer than its limit.
        TooBig = 7 => "E2BIG",
        /// No read (or write) permission on the node.
        Access = 13 => "EACCES",
        /// The node exists (a watch already set with that path and token).
        Exist = 17 => "EEXIST",
        /// A malformed request: bad path, missing field, unknown type.
        Inval = 22 => "EINVAL",
        /// Not implemented (a non-zero transaction id).
        NoSys = 38 => "ENOSYS",
        /// A quota of the caller's domain is exhausted.
        Quota = 122 => "EQUOTA",
    }
}

impl StoreError {
    /// The error called `name` (its payload without the NUL).
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|e| e.name().as_bytes() == name)
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

abi_enum! {
    /// The `state` node of a split device's front and back ends (the
    /// numbers of Xen's `XenbusState`), written as a decimal string.
    pub enum XenbusState: u32, unknown = InvalidArgument {
        /// Not set up.
        Unknown = 0 => "unknown",
        /// Creating its nodes.
        Initialising = 1 => "initialising",
        /// Back end: ready for the front end's details.
        InitWait = 2 => "init_wait",
        /// Front end: `ring-ref` and `event-channel` are written.
        Initialised = 3 => "initialised",
        /// Running.
        Connected = 4 => "connected",
        /// Shutting down.
        Closing = 5 => "closing",
        /// Shut down.
        Closed = 6 => "closed",
    }
}

impl XenbusState {
    /// Reads a `state` node's value (decimal, surrounding whitespace allowed).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let text = core::str::from_utf8(value).ok()?.trim();
        Self::from_raw(text.parse().ok()?)
    }
}

/// What a permission entry allows (its letter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `n`: nothing.
    None,
    /// `r`: read (read, directory, get_perms, watch events).
    Read,
    /// `w`: write (write, mkdir, rm below).
    Write,
    /// `b`: both.
    Both,
}

impl Access {
    /// Whether it allows reading.
    pub const fn read(self) -> bool {
        matches!(self, Self::Read | Self::Both)
    }
    /// Whether it allows writing.
    pub const fn write(self) -> bool {
        matches!(self, Self::Write | Self::Both)
    }
    /// The letter.
    pub const fn letter(self) -> u8 {
        match self {
            Self::None => b'n',
            Self::Read => b'r',
            Self::Write => b'w',
            Self::Both => b'b',
        }
    }
}

/// One permission entry, as written `<letter><domid>` (`r1`). The first
/// entry of a node names its owner (who may do anything) and, by its
/// letter, what every domain not listed may do; later entries give a domain
/// its own access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorePerm {
    /// The domain.
    pub dom: u32,
    /// What it may do.
    pub access: Access,
}

impl StorePerm {
    /// Parses `<letter><domid>`.
    pub fn parse(text: &[u8]) -> Option<Self> {
        let (&letter, digits) = text.split_first()?;
        let access = match letter {
            b'n' => Access::None,
            b'r' => Access::Read,
            b'w' => Access::Write,
            b'b' => Access::Both,
            _ => return None,
        };
        if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let dom = core::str::from_utf8(digits).ok()?.parse().ok()?;
        Some(Self { dom, access })
    }
}

impl core::fmt::Display for StorePerm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}{}", char::from(self.access.letter()), self.dom)
    }
}

/// Whether `path` is a well-formed path: absolute (`/` or `/a/b`) or
/// relative (`a/b`, meaning below the caller's `/local/domain/<id>`), made
/// of `[A-Za-z0-9_@-]` components separated by single `/`, no trailing `/`,
/// at most [`STORE_PATH_MAX`] bytes. Watches may also name a special path
/// (`@` and a component).
pub fn is_valid_path(path: &[u8]) -> bool {
    if path == b"/" {
        return true;
    }
    if path.is_empty() || path.len() > STORE_PATH_MAX {
        return false;
    }
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    rel.split(|&b| b == b'/').all(|c| {
        !c.is_empty()
            && c.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'@')
    })
}

/// Splits a payload at its first NUL: the field before it and the rest
/// after it. `None` if there is no NUL.
pub fn split_field(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = payload.iter().position(|&b| b == 0)?;
    Some((&payload[..at], &payload[at + 1..]))
}

/// The atomic view of a [`StorePage`] that both ends use: every byte may be
/// written by the peer at any time. Lives in one page of the server, granted
/// read-write to the client.
#[repr(C, align(4096))]
#[derive(Debug)]
pub struct SharedStorePage {
    /// The request ring.
    pub req: [AtomicU8; STORE_RING_SIZE],
    /// The response ring.
    pub rsp: [AtomicU8; STORE_RING_SIZE],
    /// Request bytes consumed (server).
    pub req_cons: AtomicU32,
    /// Request bytes produced (client).
    pub req_prod: AtomicU32,
    /// Response bytes consumed (client).
    pub rsp_cons: AtomicU32,
    /// Response bytes produced (server).
    pub rsp_prod: AtomicU32,
    /// Zero.
    pub reserved: [AtomicU8; 2032],
}
const _: () = assert!(size_of::<SharedStorePage>() == size_of::<StorePage>());
const _: () = assert!(
    core::mem::offset_of!(SharedStorePage, req_cons) == core::mem::offset_of!(StorePage, req_cons)
);
const _: () = assert!(
    core::mem::offset_of!(SharedStorePage, rsp_prod) == core::mem::offset_of!(StorePage, rsp_prod)
);

impl SharedStorePage {
    /// A zeroed page: empty rings, every index 0 (the state the server
    /// grants it in).
    pub const fn new() -> Self {
        Self {
            req: [const { AtomicU8::new(0) }; STORE_RING_SIZE],
            rsp: [const { AtomicU8::new(0) }; STORE_RING_SIZE],
            req_cons: AtomicU32::new(0),
            req_prod: AtomicU32::new(0),
            rsp_cons: AtomicU32::new(0),
            rsp_prod: AtomicU32::new(0),
            reserved: [const { AtomicU8::new(0) }; 2032],
        }
    }
}

impl Default for SharedStorePage {
    fn default() -> Self {
        Self::new()
    }
}

/// Which end of the page an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The domain: writes requests, reads responses.
    Client,
    /// dom0: reads requests, writes responses.
    Server,
}

/// One end's private state of the two rings: its own indices (never read
/// back from the page, which the peer could change) and whether the peer
/// broke the rings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreEndpoint {
    side: Side,
    rx_cons: u32,
    tx_prod: u32,
    broken: bool,
}

/// One direction of the page: the bytes, the producer and consumer index.
struct Dir<'p> {
    data: &'p [AtomicU8; STORE_RING_SIZE],
    prod: &'p AtomicU32,
    cons: &'p AtomicU32,
}

impl StoreEndpoint {
    /// The server's end of a page it has just zeroed.
    pub const fn server() -> Self {
        Self {
            side: Side::Server,
            rx_cons: 0,
            tx_prod: 0,
            broken: false,
        }
    }

    /// The client's end, taking its own indices (`req_prod`, `rsp_cons`)
    /// from the page: 0 on a fresh page, or where an earlier client of this
    /// domain left them.
    pub fn client(page: &SharedStorePage) -> Self {
        Self {
            side: Side::Client,
            rx_cons: page.rsp_cons.load(Ordering::Acquire),
            tx_prod: page.req_prod.load(Ordering::Acquire),
            broken: false,
        }
    }

    /// Bytes this end has consumed so far (its private consumer index).
    pub const fn consumed(&self) -> u32 {
        self.rx_cons
    }

    /// Bytes this end has produced so far (its private producer index).
    pub const fn produced(&self) -> u32 {
        self.tx_prod
    }

    /// Whether the peer broke the rings (this end no longer uses them).
    pub const fn is_broken(&self) -> bool {
        self.broken
    }

    fn rx<'p>(&self, page: &'p SharedStorePage) -> Dir<'p> {
        match self.side {
            Side::Client => Dir {
                data: &page.rsp,
                prod: &page.rsp_prod,
                cons: &page.rsp_cons,
            },
            Side::Server => Dir {
                data: &page.req,
                prod: &page.req_prod,
                cons: &page.req_cons,
            },
        }
    }

    fn tx<'p>(&self, page: &'p SharedStorePage) -> Dir<'p> {
        match self.side {
            Side::Client => Dir {
                data: &page.req,
                prod: &page.req_prod,
                cons: &page.req_cons,
            },
            Side::Server => Dir {
                data: &page.rsp,
                prod: &page.rsp_prod,
                cons: &page.rsp_cons,
            },
        }
    }

    fn fail(&mut self) -> RingError {
        self.broken = true;
        RingError::Overflow
    }

    /// Bytes the peer produced that this end has not read, after checking
    /// the peer's index: it cannot be more than the ring holds.
    pub fn readable(&mut self, page: &SharedStorePage) -> Result<usize, RingError> {
        if self.broken {
            return Err(RingError::Broken);
        }
        let n = self
            .rx(page)
            .prod
            .load(Ordering::Acquire)
            .wrapping_sub(self.rx_cons) as usize;
        if n > STORE_RING_SIZE {
            return Err(self.fail());
        }
        Ok(n)
    }

    /// Copies up to `buf.len()` readable bytes out of the ring, then
    /// publishes the new consumer index. Returns how many were copied.
    pub fn read(&mut self, page: &SharedStorePage, buf: &mut [u8]) -> Result<usize, RingError> {
        let n = self.readable(page)?.min(buf.len());
        let rx = self.rx(page);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.rx_cons.wrapping_add(i as u32) as usize % STORE_RING_SIZE;
            *b = rx.data[at].load(Ordering::Relaxed);
        }
        if n > 0 {
            self.rx_cons = self.rx_cons.wrapping_add(n as u32);
            // Release: the bytes were read before the peer may reuse them.
            rx.cons.store(self.rx_cons, Ordering::Release);
        }
        Ok(n)
    }

    /// Free bytes in the ring this end writes, after checking the peer's
    /// consumer index: it may not be ahead of what was produced, nor so far
    /// behind that more than the ring would be unread.
    pub fn writable(&mut self, page: &SharedStorePage) -> Result<usize, RingError> {
        if self.broken {
            return Err(RingError::Broken);
        }
        let cons = self.tx(page).cons.load(Ordering::Acquire);
        let used = self.tx_prod.wrapping_sub(cons) as usize;
        if used > STORE_RING_SIZE {
            return Err(self.fail());
        }
        Ok(STORE_RING_SIZE - used)
    }

    /// Copies as much of `bytes` as fits into the ring, then publishes the
    /// new producer index. Returns how many were written.
    pub fn write(&mut self, page: &SharedStorePage, bytes: &[u8]) -> Result<usize, RingError> {
        let n = self.writable(page)?.min(bytes.len());
        let tx = self.tx(page);
        for (i, &b) in bytes[..n].iter().enumerate() {
            let at = self.tx_prod.wrapping_add(i as u32) as usize % STORE_RING_SIZE;
            tx.data[at].store(b, Ordering::Relaxed);
        }
        if n > 0 {
            self.tx_prod = self.tx_prod.wrapping_add(n as u32);
            // Release: the bytes are visible before the index that covers them.
            tx.prod.store(self.tx_prod, Ordering::Release);
        }
        Ok(n)
    }
}

#[path = "store_msg.rs"]
mod msg;
pub use msg::{MsgAssembler, RecvError};

/// Field table of [`StoreMsgHeader`].
pub const MSG_HEADER_LAYOUT: LayoutDesc = layout_desc!(StoreMsgHeader {
    msg_type: u32 => In,
    req_id: u32 => In,
    tx_id: u32 => In,
    len: u32 => In,
});

/// Field table of [`StorePage`].
pub const PAGE_LAYOUT: LayoutDesc = layout_desc!(StorePage {
    req: [u8; STORE_RING_SIZE] => In,
    rsp: [u8; STORE_RING_SIZE] => Out,
    req_cons: u32 => Out,
    req_prod: u32 => In,
    rsp_cons: u32 => In,
    rsp_prod: u32 => Out,
    reserved: [u8; 2032] => Reserved,
});

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
