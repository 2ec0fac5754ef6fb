//! The start-info page, as the guest's entry function receives it.

use crate::cmdline::Cmdline;
use crate::heap::IpaRange;
use tern_abi::domctl::{DomainFlags, DomainId};
use tern_abi::{Version, strings};
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// The start-info page the hypervisor wrote for this domain
/// (`tern_abi::StartInfo`), with accessors. Derefs to the raw ABI structure.
#[derive(Debug, FromBytes, KnownLayout, Immutable)]
#[repr(transparent)]
pub struct StartInfo(tern_abi::StartInfo);

impl StartInfo {
    /// Views `bytes` as a start-info page if they are large and aligned
    /// enough, carry the magic, and are for guest ABI major
    /// `tern_abi::GUEST_ABI.major`.
    pub fn from_bytes(bytes: &[u8]) -> Option<&Self> {
        let (si, _) = Self::ref_from_prefix(bytes).ok()?;
        si.0.is_valid_for_major(tern_abi::GUEST_ABI.major)
            .then_some(si)
    }

    /// The raw ABI structure.
    pub const fn raw(&self) -> &tern_abi::StartInfo {
        &self.0
    }

    /// This domain's name (`"?"` if the hypervisor wrote something that is
    /// not UTF-8, which it never should).
    pub fn name(&self) -> &str {
        strings::field_str(&self.0.name).unwrap_or("?")
    }

    /// This domain's id.
    pub const fn domain_id(&self) -> DomainId {
        DomainId(self.0.domain_id)
    }

    /// Whether this domain is dom0.
    pub const fn is_dom0(&self) -> bool {
        DomainFlags::from_bits_retain(self.0.flags).contains(DomainFlags::IS_DOM0)
    }

    /// The guest ABI version the hypervisor implements.
    pub fn abi_version(&self) -> Version {
        // The field is 32 bits wide, so `unpack` cannot fail.
        Version::unpack(u64::from(self.0.abi_version)).unwrap_or(Version::new(0, 0))
    }

    /// The command line (empty if it is not UTF-8).
    pub fn cmdline(&self) -> Cmdline<'_> {
        Cmdline::new(strings::field_str(&self.0.cmdline).unwrap_or(""))
    }

    /// This domain's RAM.
    pub const fn ram(&self) -> IpaRange {
        IpaRange {
            start: self.0.ram_base,
            end: self.0.ram_base.saturating_add(self.0.ram_size),
        }
    }

    /// Number of vCPUs of this domain.
    pub const fn vcpus(&self) -> u32 {
        self.0.vcpus
    }

    /// Number of boot modules (dom0; 0 elsewhere).
    pub const fn module_count(&self) -> u32 {
        self.0.module_count
    }

    /// Where this domain's configuration store is, if it has one.
    pub const fn store(&self) -> Option<StoreRef> {
        if self.0.store_port == 0 {
            return None;
        }
        Some(StoreRef {
            domid: DomainId(self.0.store_domid),
            gref: self.0.store_gref,
            port: self.0.store_port,
        })
    }

    /// dom0: the physical address of its first byte of RAM (its RAM is one
    /// physically contiguous run); `None` for every other domain.
    pub const fn ram_phys_base(&self) -> Option<u64> {
        if self.0.ram_phys_base == tern_abi::start_info::NO_RAM_PHYS_BASE {
            None
        } else {
            Some(self.0.ram_phys_base)
        }
    }
}

/// Where a domain's configuration store is (`StartInfo::store`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreRef {
    /// The serving domain (dom0).
    pub domid: DomainId,
    /// Grant reference of the store page in `domid`'s grant table.
    pub gref: u32,
    /// `domid`'s unbound port, for `bind_interdomain`.
    pub port: u32,
}

impl core::ops::Deref for StartInfo {
    type Target = tern_abi::StartInfo;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use tern_abi::GUEST_ABI;
    use tern_abi::start_info::START_INFO_MAGIC;
    use zerocopy::{FromZeros, IntoBytes};

    fn sample() -> tern_abi::StartInfo {
        let mut s = tern_abi::StartInfo::new_zeroed();
        s.magic = START_INFO_MAGIC;
        s.abi_version = GUEST_ABI.pack() as u32;
        s.flags = DomainFlags::IS_DOM0.bits();
        s.domain_id = 0;
        s.vcpus = 1;
        s.ram_base = 0x4000_0000;
        s.ram_size = 0x100_0000;
        strings::set_field(&mut s.name, b"dom0").unwrap();
        strings::set_field(&mut s.cmdline, b"count=3").unwrap();
        s
    }

    #[test]
    fn accessors() {
        let s = sample();
        let si = StartInfo::from_bytes(s.as_bytes()).unwrap();
        assert_eq!(si.name(), "dom0");
        assert!(si.is_dom0());
        assert_eq!(si.domain_id(), DomainId::DOM0);
        assert_eq!(si.abi_version(), GUEST_ABI);
        assert_eq!(si.cmdline().get_u64("count"), Some(3));
        assert_eq!(si.ram().end, 0x4100_0000);
        assert_eq!(si.vcpus, 1);
        assert_eq!(si.store(), None);
        assert_eq!(si.ram_phys_base(), Some(0));
        let mut s = sample();
        (s.store_domid, s.store_gref, s.store_port) = (0, 8, 2);
        s.ram_phys_base = tern_abi::start_info::NO_RAM_PHYS_BASE;
        let si = StartInfo::from_bytes(s.as_bytes()).unwrap();
        let want = StoreRef {
            domid: DomainId::DOM0,
            gref: 8,
            port: 2,
        };
        assert_eq!((si.store(), si.ram_phys_base()), (Some(want), None));
    }

    #[test]
    fn rejects_bad_pages() {
        let mut s = sample();
        s.magic = 0;
        assert!(StartInfo::from_bytes(s.as_bytes()).is_none());
        let mut s = sample();
        s.abi_version = (GUEST_ABI.major as u32 + 1) << 16;
        assert!(StartInfo::from_bytes(s.as_bytes()).is_none());
        assert!(StartInfo::from_bytes(&sample().as_bytes()[..100]).is_none());
    }
}
