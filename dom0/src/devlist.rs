//! What `block-list` and `network-list` print, in `xl`'s shapes: one row per
//! virtual device of a domain, as dom0's back ends and the store see it.
//!
//! `xl block-list` has `Vdev BE handle state evt-ch ring-ref BE-path`; ours
//! replaces the back-end path (always `/local/domain/0/backend/vbd/<dom>/
//! <handle>`) by what the disk is made of: the dom0 disk, the region of it
//! (first sector + sectors) and the mode. `xl network-list` has `Idx BE Mac
//! Addr. handle state evt-ch tx-/rx-ring-ref BE-path`; ours ends with the
//! frames the back end moved instead of the path. Numbers the front end has
//! not published yet (event channel, ring references) show as `-1`, as in
//! `xl`.

use alloc::format;
use alloc::string::String;

/// One virtual disk of a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VbdRow {
    /// Its name in the guest (`xvda`).
    pub vdev: String,
    /// Its index among the domain's disks (the store directory's name).
    pub handle: u32,
    /// The back end's `XenbusState`, as a number.
    pub state: u32,
    /// The front end's event channel.
    pub evtch: Option<u32>,
    /// The grant reference of the ring page.
    pub ring_ref: Option<u32>,
    /// The dom0 disk it is a region of (`vda`).
    pub target: String,
    /// The region's first sector on the target (512-byte sectors).
    pub start: u64,
    /// Its length, in sectors.
    pub sectors: u64,
    /// Whether the guest may only read it.
    pub read_only: bool,
    /// Requests the back end answered.
    pub requests: u64,
}

/// One virtual network interface of a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VifRow {
    /// Its index among the domain's interfaces.
    pub idx: u32,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// The back end's `XenbusState`, as a number.
    pub state: u32,
    /// The front end's event channel.
    pub evtch: Option<u32>,
    /// The grant reference of the transmit ring page.
    pub tx_ring_ref: Option<u32>,
    /// The grant reference of the receive ring page.
    pub rx_ring_ref: Option<u32>,
    /// Frames the back end moved for it, both ways.
    pub frames: u64,
}

/// A number the front end publishes, `-1` while it has not.
fn or_minus_one(v: Option<u32>) -> String {
    v.map_or_else(|| String::from("-1"), |n| format!("{n}"))
}

/// A number read from the store: decimal, surrounding blanks allowed.
pub fn store_number(value: Option<&[u8]>) -> Option<u32> {
    core::str::from_utf8(value?).ok()?.trim().parse().ok()
}

/// The header line of `block-list`.
pub fn block_header() -> String {
    format!(
        "{:<7} {:>2} {:>6} {:>5} {:>6} {:>8}  {:<6} {:<20} {:<4} {:>8}",
        "Vdev",
        "BE",
        "handle",
        "state",
        "evt-ch",
        "ring-ref",
        "target",
        "region",
        "mode",
        "requests"
    )
}

/// One line of `block-list`; the region is `start+sectors`.
pub fn block_row(r: &VbdRow) -> String {
    format!(
        "{:<7} {:>2} {:>6} {:>5} {:>6} {:>8}  {:<6} {:<20} {:<4} {:>8}",
        r.vdev,
        0,
        r.handle,
        r.state,
        or_minus_one(r.evtch),
        or_minus_one(r.ring_ref),
        r.target,
        format!("{}+{}", r.start, r.sectors),
        if r.read_only { "r" } else { "w" },
        r.requests
    )
}

/// The header line of `network-list`.
pub fn network_header() -> String {
    format!(
        "{:<3} {:>2} {:<17} {:>6} {:>5} {:>6} {:<15} {:>8}",
        "Idx", "BE", "Mac Addr.", "handle", "state", "evt-ch", "tx-/rx-ring-ref", "frames"
    )
}

/// One line of `network-list`.
pub fn network_row(r: &VifRow) -> String {
    let mac = tern_abi::netif::format_mac(r.mac);
    format!(
        "{:<3} {:>2} {:<17} {:>6} {:>5} {:>6} {:<15} {:>8}",
        r.idx,
        0,
        core::str::from_utf8(&mac).unwrap_or("?"),
        r.idx,
        r.state,
        or_minus_one(r.evtch),
        format!(
            "{}/{}",
            or_minus_one(r.tx_ring_ref),
            or_minus_one(r.rx_ring_ref)
        ),
        r.frames
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn vbd() -> VbdRow {
        VbdRow {
            vdev: "xvda".to_string(),
            handle: 0,
            state: 4,
            evtch: Some(3),
            ring_ref: Some(8),
            target: "vda".to_string(),
            start: 2048,
            sectors: 8192,
            read_only: false,
            requests: 17,
        }
    }

    #[test]
    fn block_list_columns_line_up() {
        let h = block_header();
        let r = block_row(&vbd());
        assert_eq!(
            h,
            "Vdev    BE handle state evt-ch ring-ref  target region               mode requests"
        );
        assert_eq!(
            r,
            "xvda     0      0     4      3        8  vda    2048+8192            w          17"
        );
        // Every column ends where its header ends (the numbers right-aligned).
        for word in ["handle", "state", "evt-ch", "ring-ref"] {
            let end = h.find(word).unwrap() + word.len();
            assert_ne!(r.as_bytes()[end - 1], b' ', "{word}");
            assert_eq!(r.as_bytes()[end], b' ', "{word}");
        }
    }

    #[test]
    fn block_list_unpublished_and_read_only() {
        let mut v = vbd();
        v.evtch = None;
        v.ring_ref = None;
        v.read_only = true;
        v.state = 2;
        let r = block_row(&v);
        let cols: alloc::vec::Vec<&str> = r.split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "xvda",
                "0",
                "0",
                "2",
                "-1",
                "-1",
                "vda",
                "2048+8192",
                "r",
                "17"
            ]
        );
    }

    #[test]
    fn network_list_columns() {
        let v = VifRow {
            idx: 1,
            mac: [0x00, 0x16, 0x3e, 0x00, 0x02, 0x01],
            state: 4,
            evtch: Some(5),
            tx_ring_ref: Some(9),
            rx_ring_ref: Some(10),
            frames: 1234,
        };
        assert_eq!(
            network_header(),
            "Idx BE Mac Addr.         handle state evt-ch tx-/rx-ring-ref   frames"
        );
        assert_eq!(
            network_row(&v),
            "1    0 00:16:3e:00:02:01      1     4      5 9/10                1234"
        );
        let waiting = VifRow {
            evtch: None,
            tx_ring_ref: None,
            rx_ring_ref: None,
            ..v
        };
        let cols: alloc::vec::Vec<String> = network_row(&waiting)
            .split_whitespace()
            .map(String::from)
            .collect();
        assert_eq!(cols[5..7], ["-1", "-1/-1"]);
    }

    #[test]
    fn store_numbers() {
        assert_eq!(store_number(Some(b"12")), Some(12));
        assert_eq!(store_number(Some(b" 7\n")), Some(7));
        assert_eq!(store_number(Some(b"x")), None);
        assert_eq!(store_number(Some(b"-1")), None);
        assert_eq!(store_number(None), None);
    }
}
