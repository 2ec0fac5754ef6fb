//! The device entries of a domain configuration: `disk = [...]` and
//! `vif = [...]`, each entry a string of `key=value` pairs separated by
//! commas, in the spirit of xl's disk and vif specifications.
//!
//! ```toml
//! disk = ["target=vda, vdev=xvda, access=rw, start=2048, sectors=8192"]
//! vif = ["mac=00:16:3e:00:00:01, bridge=br0"]
//! ```
//!
//! Disk keys: `target` (required: the dom0 disk that backs it, `vda` being
//! the first virtio block device), `vdev` (the name the guest sees; default
//! `xvda`, `xvdb`, ... by position), `access` (`rw`, the default, or `ro`),
//! `start` and `sectors` (a region of the target in 512-byte sectors;
//! default: all of it from sector 0).
//!
//! Vif keys: `mac` (six hex bytes `xx:xx:xx:xx:xx:xx`, unicast; default one
//! derived from the domain and the interface's position in Xen's
//! `00:16:3e` range) and `bridge` (default `br0`).

use alloc::string::String;
use core::fmt;

/// Most disks or vifs one domain may have.
pub const MAX_DEVICES: usize = 8;

/// One virtual disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// The dom0 disk backing it.
    pub target: String,
    /// Its name in the guest.
    pub vdev: String,
    /// Whether the guest may only read it.
    pub read_only: bool,
    /// First sector of the region on the target.
    pub start: u64,
    /// Sectors in the region; `None`: to the end of the target.
    pub sectors: Option<u64>,
}

/// One virtual network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VifSpec {
    /// Its MAC address; `None`: derived when the domain is created.
    pub mac: Option<[u8; 6]>,
    /// The virtual switch it plugs into.
    pub bridge: String,
}

/// Xen's organisationally unique identifier, the prefix of derived MACs.
pub const XEN_OUI: [u8; 3] = [0x00, 0x16, 0x3e];

impl VifSpec {
    /// The MAC the interface gets: its own, or one derived from the domain id
    /// and the interface's index.
    pub fn mac_for(&self, domid: u32, index: usize) -> [u8; 6] {
        self.mac.unwrap_or_else(|| {
            let [_, _, hi, lo] = domid.to_be_bytes();
            [XEN_OUI[0], XEN_OUI[1], XEN_OUI[2], hi, lo, index as u8]
        })
    }
}

/// Why a device entry is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// A piece is not `key=value`.
    NotKeyValue(String),
    /// A key the entry kind does not have.
    UnknownKey(String),
    /// A key given twice.
    Duplicate(&'static str),
    /// A bad value for `key`, and what it must be.
    BadValue(&'static str, &'static str),
    /// A required key is missing.
    Missing(&'static str),
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotKeyValue(p) => write!(f, "`{p}` is not key=value"),
            Self::UnknownKey(k) => write!(f, "unknown key `{k}`"),
            Self::Duplicate(k) => write!(f, "`{k}` given twice"),
            Self::BadValue(k, what) => write!(f, "`{k}` must be {what}"),
            Self::Missing(k) => write!(f, "missing `{k}`"),
        }
    }
}

/// Splits `spec` into `(key, value)` pairs, checking each key against `keys`
/// and refusing repeats; calls `f` with the index of the key in `keys`.
fn pairs<'a>(
    spec: &'a str,
    keys: &[&'static str],
    mut f: impl FnMut(usize, &'static str, &'a str) -> Result<(), SpecError>,
) -> Result<(), SpecError> {
    let mut seen = 0u32;
    for piece in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = piece
            .split_once('=')
            .ok_or_else(|| SpecError::NotKeyValue(piece.into()))?;
        let (k, v) = (k.trim(), v.trim());
        let i = keys
            .iter()
            .position(|&key| key == k)
            .ok_or_else(|| SpecError::UnknownKey(k.into()))?;
        if seen & (1 << i) != 0 {
            return Err(SpecError::Duplicate(keys[i]));
        }
        seen |= 1 << i;
        f(i, keys[i], v)?;
    }
    Ok(())
}

/// A device name: 1..=15 of `[a-z0-9]`, starting with a letter.
fn is_dev_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Parses the `index`th entry of `disk = [...]`.
pub fn parse_disk(spec: &str, index: usize) -> Result<DiskSpec, SpecError> {
    let mut d = DiskSpec {
        target: String::new(),
        vdev: alloc::format!("xvd{}", (b'a' + index as u8) as char),
        read_only: false,
        start: 0,
        sectors: None,
    };
    let number = |k, v: &str| {
        pv_guest_sdk::cmdline::parse_u64(v).ok_or(SpecError::BadValue(k, "a number of sectors"))
    };
    pairs(
        spec,
        &["target", "vdev", "access", "start", "sectors"],
        |_, k, v| {
            match k {
                "target" if is_dev_name(v) => d.target = v.into(),
                "vdev" if is_dev_name(v) => d.vdev = v.into(),
                "target" | "vdev" => return Err(SpecError::BadValue(k, "a device name like vda")),
                "access" => {
                    d.read_only = match v {
                        "rw" | "w" => false,
                        "ro" | "r" => true,
                        _ => return Err(SpecError::BadValue(k, "rw or ro")),
                    }
                }
                "start" => d.start = number(k, v)?,
                _ => match number(k, v)? {
                    0 => return Err(SpecError::BadValue(k, "at least 1")),
                    n => d.sectors = Some(n),
                },
            }
            Ok(())
        },
    )?;
    if d.target.is_empty() {
        return Err(SpecError::Missing("target"));
    }
    if d.sectors.is_some_and(|n| d.start.checked_add(n).is_none()) {
        return Err(SpecError::BadValue(
            "sectors",
            "within 2^64 sectors of start",
        ));
    }
    Ok(d)
}

/// Parses one entry of `vif = [...]`.
pub fn parse_vif(spec: &str) -> Result<VifSpec, SpecError> {
    let mut vif = VifSpec {
        mac: None,
        bridge: String::from("br0"),
    };
    pairs(spec, &["mac", "bridge"], |_, k, v| {
        match k {
            "mac" => {
                let mac =
                    parse_mac(v).ok_or(SpecError::BadValue(k, "xx:xx:xx:xx:xx:xx, unicast"))?;
                vif.mac = Some(mac);
            }
            _ if is_dev_name(v) => vif.bridge = v.into(),
            _ => return Err(SpecError::BadValue(k, "a bridge name like br0")),
        }
        Ok(())
    })?;
    Ok(vif)
}

/// Six colon-separated hex bytes of a unicast address (bit 0 of the first
/// byte clear).
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    (parts.next().is_none() && mac[0] & 1 == 0).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn disks() {
        let d = parse_disk(
            "target=vda, vdev=xvdb, access=ro, start=2048, sectors=0x2000",
            0,
        )
        .unwrap();
        assert_eq!(d.target, "vda");
        assert_eq!(d.vdev, "xvdb");
        assert!(d.read_only);
        assert_eq!((d.start, d.sectors), (2048, Some(0x2000)));
        let d = parse_disk("target=vdb", 2).unwrap();
        assert_eq!(
            (d.vdev.as_str(), d.read_only, d.start, d.sectors),
            ("xvdc", false, 0, None)
        );
        let e = |s| parse_disk(s, 0).unwrap_err().to_string();
        assert_eq!(e("vdev=xvda"), "missing `target`");
        assert_eq!(e("target=vda, target=vdb"), "`target` given twice");
        assert_eq!(e("target=vda, size=3"), "unknown key `size`");
        assert_eq!(e("target=vda, access=rx"), "`access` must be rw or ro");
        assert_eq!(
            e("target=/dev/vda"),
            "`target` must be a device name like vda"
        );
        assert_eq!(e("target=vda, sectors=0"), "`sectors` must be at least 1");
        assert_eq!(
            e("target=vda junk"),
            "`target` must be a device name like vda"
        );
        assert_eq!(e("vda"), "`vda` is not key=value");
        assert!(e("target=vda, start=18446744073709551615, sectors=2").contains("within"));
    }

    #[test]
    fn vifs_and_macs() {
        let v = parse_vif("mac=00:16:3e:0a:0B:0c, bridge=br1").unwrap();
        assert_eq!(v.mac, Some([0x00, 0x16, 0x3e, 0x0a, 0x0b, 0x0c]));
        assert_eq!(v.bridge, "br1");
        let v = parse_vif("").unwrap();
        assert_eq!((v.mac, v.bridge.as_str()), (None, "br0"));
        assert_eq!(v.mac_for(0x0102, 3), [0x00, 0x16, 0x3e, 0x01, 0x02, 3]);
        let e = |s| parse_vif(s).unwrap_err().to_string();
        assert!(
            e("mac=01:00:5e:00:00:01").contains("unicast"),
            "multicast refused"
        );
        assert!(e("mac=00:16:3e:00:00").contains("unicast"));
        assert!(e("mac=00:16:3e:00:00:01:02").contains("unicast"));
        assert!(e("mac=0:16:3e:00:00:01").contains("unicast"));
        assert_eq!(e("bridge=Br0"), "`bridge` must be a bridge name like br0");
        assert_eq!(e("ip=10.0.0.1"), "unknown key `ip`");
    }
}
