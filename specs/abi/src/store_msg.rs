//! Message assembly for the store's byte rings: a message (header and
//! payload) may arrive in pieces over several reads; [`MsgAssembler`] takes
//! only what the current message lacks and hands it over complete.

use zerocopy::FromBytes;

use super::{
    RingError, STORE_HEADER_BYTES, STORE_MSG_MAX, STORE_PAYLOAD_MAX, SharedStorePage,
    StoreEndpoint, StoreMsgHeader,
};

/// Why a message could not be received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// The rings are broken ([`RingError`]).
    Ring(RingError),
    /// The header announces a payload longer than [`STORE_PAYLOAD_MAX`]:
    /// the stream cannot be resynchronised.
    TooLong(u32),
}

impl From<RingError> for RecvError {
    fn from(e: RingError) -> Self {
        Self::Ring(e)
    }
}

impl core::fmt::Display for RecvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ring(e) => write!(f, "{e}"),
            Self::TooLong(n) => write!(
                f,
                "message payload of {n} bytes (limit {STORE_PAYLOAD_MAX})"
            ),
        }
    }
}

/// Assembles messages from the bytes an endpoint reads: a message may
/// arrive in pieces over several reads. Holds at most one message.
#[derive(Clone, Debug)]
pub struct MsgAssembler {
    buf: [u8; STORE_MSG_MAX],
    have: usize,
    complete: bool,
}

impl Default for MsgAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl MsgAssembler {
    /// Nothing received yet.
    pub const fn new() -> Self {
        Self {
            buf: [0; STORE_MSG_MAX],
            have: 0,
            complete: false,
        }
    }

    /// Reads what the next message still lacks (never bytes of the message
    /// after it) and returns it once complete: its header and payload,
    /// private copies. `Ok(None)`: not all there yet.
    pub fn pull(
        &mut self,
        ep: &mut StoreEndpoint,
        page: &SharedStorePage,
    ) -> Result<Option<(StoreMsgHeader, &[u8])>, RecvError> {
        if self.complete {
            self.have = 0;
            self.complete = false;
        }
        loop {
            let want = if self.have < STORE_HEADER_BYTES {
                STORE_HEADER_BYTES
            } else {
                let len = self.header().len;
                if len as usize > STORE_PAYLOAD_MAX {
                    return Err(RecvError::TooLong(len));
                }
                let want = STORE_HEADER_BYTES + len as usize;
                if self.have == want {
                    self.complete = true;
                    return Ok(Some((self.header(), &self.buf[STORE_HEADER_BYTES..want])));
                }
                want
            };
            let got = ep.read(page, &mut self.buf[self.have..want])?;
            if got == 0 {
                return Ok(None);
            }
            self.have += got;
        }
    }

    fn header(&self) -> StoreMsgHeader {
        // The buffer holds at least a header whenever this is called.
        StoreMsgHeader::read_from_prefix(&self.buf)
            .map(|(h, _)| h)
            .unwrap_or_default()
    }
}
