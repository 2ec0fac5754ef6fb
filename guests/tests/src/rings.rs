//! What the ring test guests share: the request and response layouts, the
//! payloads and their checksum, and the rendezvous of the two ends.
//!
//! The front end (`ring-front`) grants, in this order: the ring page
//! (reference [`RING_GREF`]), [`DATA_PAGES`] request pages (read-only) and
//! [`DATA_PAGES`] response pages (read-write). Request `id` carries its
//! payload in request page `id % DATA_PAGES` and names both pages; the back
//! end (`ring-back`) maps the request page read-only, copies the payload out
//! and checks it, and writes the response payload ([`response_byte`]) into
//! the response page with a grant copy.
//!
//! Rendezvous: the two domains find each other's ids with `peer=` (see
//! [`crate::events::peer`]) and set the ring up through the configuration
//! store, as split drivers do: the front end reserves a port for the back end
//! and grants the ring page, publishes both in its device directory
//! (`device/ring/0`) and the back end maps and binds them
//! ([`pv_guest_sdk::store::Store::front_connect`] / `back_connect`).
//! [`connect_front`], [`front_handshake`] and [`connect_back`] are the only
//! code that knows this.

use alloc::format;
use alloc::string::String;

use pv_guest_sdk::abi::Error;
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::GrantRef;
use pv_guest_sdk::ring::{BackRing, FrontRing};
use pv_guest_sdk::store::{Device, FrontDetails, Store};
use pv_guest_sdk::time::Deadline;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A request: "check the `len` bytes of payload in grant `req_gref`, whose
/// checksum is `sum`, and answer in grant `rsp_gref`".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Req {
    /// Sequence number, from 0.
    pub id: u64,
    /// The front end's grant holding the payload (read-only).
    pub req_gref: u32,
    /// Payload bytes (1..=4096).
    pub len: u32,
    /// [`checksum`] of the payload.
    pub sum: u64,
    /// The front end's grant for the response payload (read-write).
    pub rsp_gref: u32,
    /// Zero (a back end refuses anything else), except between
    /// `ring-victim` and `ring-hostile`, where it carries a [`Cmd`].
    pub pad: u32,
}

/// A response: the request's id, a status, and the response payload's
/// length and checksum.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Rsp {
    /// The id of the request answered.
    pub id: u64,
    /// [`STATUS_OK`] or why the request was refused.
    pub status: u32,
    /// Response payload bytes.
    pub len: u32,
    /// [`checksum`] of the response payload.
    pub sum: u64,
}

/// The request was served.
pub const STATUS_OK: u32 = 0;
/// The payload did not match its checksum.
pub const STATUS_BAD_SUM: u32 = 1;
/// The request named a length or grant the back end refuses.
pub const STATUS_BAD_REQUEST: u32 = 2;
/// Mapping or copying a grant failed.
pub const STATUS_GRANT_FAILED: u32 = 3;

/// The name of a response status, for reports.
pub fn status_name(status: u32) -> &'static str {
    match status {
        STATUS_OK => "ok",
        STATUS_BAD_SUM => "bad checksum",
        STATUS_BAD_REQUEST => "bad request",
        STATUS_GRANT_FAILED => "grant refused",
        _ => "unknown status",
    }
}

/// Commands of `ring-victim` to `ring-hostile`, in [`Req::pad`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Cmd {
    /// Map grant 1 read-only and keep it mapped.
    MapAndHold = 1,
    /// Try grants that were not given; answer with how many were allowed.
    Probe = 2,
    /// Scribble on the ring's indices, claim a huge response index, then
    /// write through the read-only mapping.
    Scribble = 3,
}

impl Cmd {
    /// The command numbered `raw`.
    pub fn from_raw(raw: u32) -> Option<Self> {
        [Self::MapAndHold, Self::Probe, Self::Scribble]
            .into_iter()
            .find(|c| *c as u32 == raw)
    }
}

/// Requests in flight at most, and pages of each kind the front end grants.
pub const DATA_PAGES: u32 = 64;
/// The device type the ring guests publish in the store.
pub const DEVICE: &str = "ring";
/// How long either end waits for the other during the handshake.
const HANDSHAKE_MS: u64 = 30_000;

/// The front end's ring type.
pub type Front = FrontRing<Req, Rsp>;
/// The back end's ring type.
pub type Back = BackRing<Req, Rsp>;

/// A 64-bit checksum of `bytes` (FNV-1a over 8-byte little-endian words,
/// the tail zero-padded, then the length).
pub fn checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().unwrap_or_default())).wrapping_mul(PRIME);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(PRIME);
    }
    (h ^ bytes.len() as u64).wrapping_mul(PRIME)
}

/// xorshift64*: the payload generator.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// The payload length of request `id`: mostly short, a whole page now
/// and then.
pub fn payload_len(id: u64) -> usize {
    let mut s = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let r = next(&mut s);
    if id.is_multiple_of(61) {
        4096
    } else {
        1 + (r % 384) as usize
    }
}

/// Fills `buf` with request `id`'s payload.
pub fn fill_payload(id: u64, buf: &mut [u8]) {
    let mut s = id.wrapping_mul(0xd1b5_4a32_d192_ed03) ^ 0x5555;
    for c in buf.chunks_mut(8) {
        let w = next(&mut s).to_le_bytes();
        c.copy_from_slice(&w[..c.len()]);
    }
}

/// Byte `j` of the response to a request whose payload is `req`: the
/// payload reversed, each byte xored with the low byte of the id.
pub fn response_byte(id: u64, req: &[u8], j: usize) -> u8 {
    req[req.len() - 1 - j] ^ id as u8
}

/// The device between this domain (front end) and `back`.
fn device(front: DomainId, back: DomainId) -> Device {
    Device {
        kind: DEVICE.into(),
        index: 0,
        front,
        back,
    }
}

/// This domain's id.
fn me() -> DomainId {
    pv_guest_sdk::start_info().map_or(DomainId(0), |si| si.domain_id())
}

/// Reserves an event port for `peer`, waiting while `peer` does not exist
/// yet (it may be created after this domain).
pub fn reserve_port(peer: DomainId) -> Result<Port, String> {
    let give_up = Deadline::after_ms(HANDSHAKE_MS);
    loop {
        match events::alloc_unbound(peer) {
            Ok(p) => return Ok(p),
            Err(Error::NoSuchDomain) if !give_up.passed() => pv_guest_sdk::yield_now(),
            Err(e) => return Err(format!("alloc_unbound: {e}")),
        }
    }
}

/// The front end's half of the store handshake for a ring page already
/// granted to `back` (`ring_ref`) and a port reserved for it: publishes
/// both and returns once the back end has mapped and bound them
/// (Connected).
pub fn front_handshake(
    store: &mut Store,
    back: DomainId,
    ring_ref: GrantRef,
    port: Port,
) -> Result<(), String> {
    let details = FrontDetails {
        ring_ref: ring_ref.0,
        event_channel: port.0,
    };
    store
        .front_connect(
            &device(me(), back),
            details,
            Deadline::after_ms(HANDSHAKE_MS),
        )
        .map_err(|e| format!("store handshake: {e}"))
}

/// The front end's side: reserves a port for `peer`, creates and grants the
/// ring, and runs the handshake ([`front_handshake`]).
pub fn connect_front(store: &mut Store, peer: DomainId) -> Result<Front, String> {
    let port = reserve_port(peer)?;
    let front =
        Front::new(peer, port).map_err(|e| format!("cannot create and grant the ring: {e}"))?;
    front_handshake(store, peer, front.gref(), port)?;
    Ok(front)
}

/// The back end's side: waits in the store for `peer`'s ring reference and
/// port, maps the ring and binds the port, then says Connected. Returns the
/// ring and what the front end published.
pub fn connect_back(store: &mut Store, peer: DomainId) -> Result<(Back, FrontDetails), String> {
    let dev = device(peer, me());
    store
        .back_connect(&dev, Deadline::after_ms(HANDSHAKE_MS), |d| {
            let port = events::bind_interdomain(peer, Port(d.event_channel))?;
            let back = Back::new(peer, GrantRef(d.ring_ref), port)?;
            Ok((back, d))
        })
        .map_err(|e| format!("store handshake: {e}"))
}
