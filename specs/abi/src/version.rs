//! ABI versions and the feature bitmap answered by the `version` discovery call.
//!
//! Two versions are kept apart, as Xen keeps its guest interface apart from its
//! domctl interface: the **guest ABI** (what any PV guest may use, and whose major
//! is part of every function id) and the **control ABI** (the dom0-only calls
//! `domctl` and `module_op` and their structures). `specs/versioning.md` gives
//! the bump rules.

/// A `major.minor` ABI version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Incompatible changes bump the major.
    pub major: u16,
    /// Compatible additions bump the minor.
    pub minor: u16,
}

impl Version {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// The register encoding: `major << 16 | minor` (bits 63:32 zero).
    pub const fn pack(self) -> u64 {
        (self.major as u64) << 16 | self.minor as u64
    }

    /// Decodes [`Version::pack`]; `None` if bits 63:32 are not zero.
    pub const fn unpack(reg: u64) -> Option<Self> {
        if reg >> 32 != 0 {
            return None;
        }
        Some(Self {
            major: (reg >> 16) as u16,
            minor: reg as u16,
        })
    }

    /// Whether an implementation at `self` serves a client built for `required`:
    /// same major, and at least the required minor.
    pub const fn satisfies(self, required: Version) -> bool {
        self.major == required.major && self.minor >= required.minor
    }
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The guest ABI this crate describes. Its major is the major in the function ids
/// of [`crate::Call`].
pub const GUEST_ABI: Version = Version::new(1, 0);

/// The control (dom0) ABI this crate describes: `domctl`, `module_op` and their
/// structures.
pub const CONTROL_ABI: Version = Version::new(1, 0);

abi_flags! {
    /// Features in `x3` of the `version` call. A bit is set when the family is
    /// implemented **and** the caller may use it (dom0-only families are clear
    /// for other domains). Bits not defined here are reserved and read as zero.
    pub struct Features: u64 {
        /// `console_io` is available.
        const CONSOLE = 0 => "console";
        /// `sched_op` is available.
        const SCHED = 1 => "sched";
        /// `domctl` is available (dom0 only).
        const DOMCTL = 2 => "domctl";
        /// `module_op` is available (dom0 only).
        const MODULE = 3 => "module";
        /// `evtchn_op` is available and events are delivered with the upcall
        /// interrupt.
        const EVTCHN = 4 => "evtchn";
        /// `vcpu_op` is available.
        const VCPU = 5 => "vcpu";
        /// `time_op` is available and its timer raises `Virq::Timer`.
        const TIME = 6 => "time";
        /// `grant_op` is available: grant tables, grant mapping and copy.
        const GRANT = 7 => "grant";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        let v = Version::new(3, 0x1234);
        assert_eq!(v.pack(), 0x3_1234);
        assert_eq!(Version::unpack(v.pack()), Some(v));
        assert_eq!(Version::unpack(1 << 32), None);
        assert!(Version::new(1, 2).satisfies(Version::new(1, 1)));
        assert!(!Version::new(1, 0).satisfies(Version::new(1, 1)));
        assert!(!Version::new(2, 5).satisfies(Version::new(1, 0)));
    }

    #[test]
    fn features() {
        let f = Features::CONSOLE | Features::SCHED;
        assert!(f.contains(Features::CONSOLE));
        assert!(!f.contains(Features::DOMCTL));
        assert_eq!(Features::KNOWN.bits(), 0xff);
        assert_eq!(Features::from_bits(1 << 10), None);
    }
}
