//! Virtual network interfaces (`vif`) between a domU (front end) and dom0
//! (back end): two shared rings of frame descriptors and the store keys of
//! their handshake. `specs/netif.md` is the normative description; the
//! design is Xen's `io/netif.h`, cut down to one frame per descriptor.
//!
//! - The **tx ring** carries frames the front end sends: each request names
//!   a page the front end granted (read-only is enough), the frame's offset
//!   in it and its size; the back end copies the frame out (grant copy) and
//!   answers with [`NETIF_RSP_OKAY`] or an error.
//! - The **rx ring** carries empty buffers the front end posts: each
//!   request names a granted writable page, an offset and the room there;
//!   the back end copies one received frame in and answers with the frame's
//!   size (positive) or an error (negative).
//!
//! Both rings are `tern_abi::ring` rings (`specs/rings.md`) of
//! [`NetifRequest`]/[`NetifResponse`], each in a page of its own, sharing
//! one event channel. Nothing here trusts the peer: every field is checked
//! by [`NetifRequest::tx_frame`] / [`NetifRequest::rx_buffer`].

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::PAGE_SIZE;
use crate::spec::{LayoutDesc, layout_desc};

/// The device type of a vif in store paths (`.../device/vif/<n>`).
pub const DEVICE_TYPE: &str = "vif";
/// Key in the back end's directory: the interface's MAC address, six
/// two-digit hex bytes separated by `:` (written by dom0 before the front
/// end starts).
pub const KEY_MAC: &str = "mac";
/// Key in the front end's directory: grant reference (decimal) of the tx
/// ring page.
pub const KEY_TX_RING_REF: &str = "tx-ring-ref";
/// Key in the front end's directory: grant reference (decimal) of the rx
/// ring page.
pub const KEY_RX_RING_REF: &str = "rx-ring-ref";
/// Key in the front end's directory: the port (decimal) the front end
/// reserved for the back end; both rings notify over it.
pub const KEY_EVENT_CHANNEL: &str = "event-channel";

/// Largest frame a descriptor carries: an Ethernet header and a 1500-byte
/// payload (no frame check sequence).
pub const NETIF_FRAME_MAX: u16 = 1514;
/// Smallest frame a tx descriptor may carry: an Ethernet header.
pub const NETIF_FRAME_MIN: u16 = 14;
/// Slots of each ring (`tern_abi::ring::ring_size` of a 16-byte slot).
pub const NETIF_RING_SLOTS: u32 = crate::ring::ring_size(size_of::<NetifRequest>());

/// Response status: the frame was sent (tx).
pub const NETIF_RSP_OKAY: i32 = 0;
/// Response status: the descriptor was refused (bad grant, offset, size,
/// flags) or the copy failed; nothing was sent or received.
pub const NETIF_RSP_ERROR: i32 = -1;
/// Response status: the descriptor was good but the frame was dropped (the
/// back end is shutting down the interface).
pub const NETIF_RSP_DROPPED: i32 = -2;

/// A request on either ring: one frame (tx) or one empty buffer (rx).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct NetifRequest {
    /// Chosen by the front end; the response carries it back.
    pub id: u16,
    /// No flag is defined: must be 0.
    pub flags: u16,
    /// Grant reference (in the front end's table) of the page.
    pub gref: u32,
    /// Byte offset of the frame (or buffer) in the page.
    pub offset: u16,
    /// tx: the frame's bytes; rx: the room in the buffer.
    pub size: u16,
    /// Zero.
    pub reserved: u32,
}
const _: () = assert!(size_of::<NetifRequest>() == 16);

/// A response on either ring.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct NetifResponse {
    /// The request's `id`.
    pub id: u16,
    /// Zero.
    pub flags: u16,
    /// tx: [`NETIF_RSP_OKAY`] or a negative status; rx: the frame's size
    /// (positive) or a negative status.
    pub status: i32,
}
const _: () = assert!(size_of::<NetifResponse>() == 8);

/// Why a request is refused (its response then carries [`NETIF_RSP_ERROR`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescError {
    /// A flag is set (none is defined).
    Flags,
    /// tx: smaller than [`NETIF_FRAME_MIN`] or larger than
    /// [`NETIF_FRAME_MAX`]; rx: zero room.
    Size,
    /// The frame or buffer runs past the end of its page.
    Bounds,
}

impl core::fmt::Display for DescError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Flags => "unknown flags",
            Self::Size => "bad size",
            Self::Bounds => "runs past its page",
        })
    }
}

impl NetifRequest {
    fn in_page(&self) -> Result<(), DescError> {
        if self.flags != 0 {
            return Err(DescError::Flags);
        }
        if u64::from(self.offset) + u64::from(self.size) > PAGE_SIZE {
            return Err(DescError::Bounds);
        }
        Ok(())
    }

    /// Checks a tx request: no flags, a frame of [`NETIF_FRAME_MIN`] to
    /// [`NETIF_FRAME_MAX`] bytes inside its page. Returns the frame's size.
    pub fn tx_frame(&self) -> Result<usize, DescError> {
        self.in_page()?;
        if !(NETIF_FRAME_MIN..=NETIF_FRAME_MAX).contains(&self.size) {
            return Err(DescError::Size);
        }
        Ok(usize::from(self.size))
    }

    /// Checks an rx request: no flags, some room, inside its page. Returns
    /// the room (the largest frame it can take).
    pub fn rx_buffer(&self) -> Result<usize, DescError> {
        self.in_page()?;
        if self.size == 0 {
            return Err(DescError::Size);
        }
        Ok(usize::from(self.size).min(usize::from(NETIF_FRAME_MAX)))
    }
}

/// Field table of [`NetifRequest`].
pub const REQUEST_LAYOUT: LayoutDesc = layout_desc!(NetifRequest {
    id: u16 => In,
    flags: u16 => In,
    gref: u32 => In,
    offset: u16 => In,
    size: u16 => In,
    reserved: u32 => Reserved,
});

/// Field table of [`NetifResponse`].
pub const RESPONSE_LAYOUT: LayoutDesc = layout_desc!(NetifResponse {
    id: u16 => Out,
    flags: u16 => Reserved,
    status: i32 => Out,
});

/// Formats a MAC address as the store holds it (`00:16:3e:00:01:00`).
pub fn format_mac(mac: [u8; 6]) -> [u8; 17] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b':'; 17];
    for (i, b) in mac.iter().enumerate() {
        out[i * 3] = HEX[usize::from(b >> 4)];
        out[i * 3 + 1] = HEX[usize::from(b & 0xf)];
    }
    out
}

/// Parses a MAC address as the store holds it (surrounding whitespace
/// allowed, hex digits in either case).
pub fn parse_mac(text: &[u8]) -> Option<[u8; 6]> {
    let text = core::str::from_utf8(text).ok()?.trim();
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(offset: u16, size: u16) -> NetifRequest {
        NetifRequest {
            offset,
            size,
            ..NetifRequest::default()
        }
    }

    #[test]
    fn ring_geometry() {
        assert_eq!(NETIF_RING_SLOTS, 128);
        assert_eq!(crate::ring::slot_words(size_of::<NetifRequest>()), 2);
    }

    #[test]
    fn tx_descriptors_are_checked() {
        assert_eq!(req(0, 60).tx_frame(), Ok(60));
        assert_eq!(req(4096 - 1514, 1514).tx_frame(), Ok(1514));
        assert_eq!(req(0, 13).tx_frame(), Err(DescError::Size));
        assert_eq!(req(0, 1515).tx_frame(), Err(DescError::Size));
        assert_eq!(req(0, u16::MAX).tx_frame(), Err(DescError::Bounds));
        assert_eq!(req(4000, 100).tx_frame(), Err(DescError::Bounds));
        assert_eq!(req(u16::MAX, 14).tx_frame(), Err(DescError::Bounds));
        let mut r = req(0, 60);
        r.flags = 1;
        assert_eq!(r.tx_frame(), Err(DescError::Flags));
    }

    #[test]
    fn rx_descriptors_are_checked() {
        assert_eq!(req(0, 2048).rx_buffer(), Ok(1514));
        assert_eq!(req(2048, 2048).rx_buffer(), Ok(1514));
        assert_eq!(req(0, 100).rx_buffer(), Ok(100));
        assert_eq!(req(0, 0).rx_buffer(), Err(DescError::Size));
        assert_eq!(req(2049, 2048).rx_buffer(), Err(DescError::Bounds));
    }

    #[test]
    fn macs_round_trip() {
        let m = [0x00, 0x16, 0x3e, 0xab, 0x01, 0xff];
        assert_eq!(&format_mac(m), b"00:16:3e:ab:01:ff");
        assert_eq!(parse_mac(&format_mac(m)), Some(m));
        assert_eq!(parse_mac(b" 00:16:3E:AB:01:FF\n"), Some(m));
        assert_eq!(parse_mac(b"00:16:3e:ab:01"), None);
        assert_eq!(parse_mac(b"00:16:3e:ab:01:ff:00"), None);
        assert_eq!(parse_mac(b"0:16:3e:ab:01:ff"), None);
        assert_eq!(parse_mac(b"zz:16:3e:ab:01:ff"), None);
    }
}
