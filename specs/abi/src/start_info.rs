//! The start-info page: what the hypervisor tells a guest at entry.
//!
//! The hypervisor writes a [`StartInfo`] at the start of the page at
//! [`crate::layout::START_INFO_IPA`] (the first page of guest RAM) before the
//! guest's first instruction and passes its IPA in `x0`. The rest of that page is
//! zero. The page is ordinary guest RAM: the guest may read it, copy it, and
//! reuse it once it no longer needs it.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::spec::{LayoutDesc, layout_desc};

/// `StartInfo::magic`: the ASCII bytes `TERNINFO` read as a little-endian `u64`.
pub const START_INFO_MAGIC: u64 = u64::from_le_bytes(*b"TERNINFO");

/// `StartInfo::ram_phys_base` of a domain that is not told where its RAM is.
pub const NO_RAM_PHYS_BASE: u64 = u64::MAX;

/// The start-info structure. Every field is OUT (written by the hypervisor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct StartInfo {
    /// OUT: [`START_INFO_MAGIC`].
    pub magic: u64,
    /// OUT: the guest ABI version of the hypervisor, `major << 16 | minor`
    /// (see [`crate::Version::pack`]).
    pub abi_version: u32,
    /// OUT: [`crate::domctl::DomainFlags`] (`IS_DOM0`).
    pub flags: u32,
    /// OUT: this domain's id.
    pub domain_id: u32,
    /// OUT: number of vCPUs of this domain.
    pub vcpus: u32,
    /// OUT: IPA of the first byte of RAM ([`crate::layout::GUEST_RAM_BASE`]).
    pub ram_base: u64,
    /// OUT: RAM size in bytes (a multiple of the page size); equal to `x1` at entry.
    pub ram_size: u64,
    /// OUT: event-channel port of the console; 0 (none) until event channels exist.
    pub console_port: u32,
    /// OUT: number of boot modules, readable with `module_op` (dom0); 0 for
    /// other domains.
    pub module_count: u32,
    /// OUT: this domain's name, NUL-padded.
    pub name: [u8; 32],
    /// OUT: the command line, NUL-padded (from `CreateDomain::cmdline`, or the
    /// hypervisor's boot arguments after `--` for dom0).
    pub cmdline: [u8; 256],
    /// OUT: the domain serving this domain's configuration store (dom0), as
    /// set by `domctl set_store`; meaningless while `store_port` is 0.
    pub store_domid: u32,
    /// OUT: the grant reference, in `store_domid`'s grant table, of the
    /// store's shared page ([`crate::store`]).
    pub store_gref: u32,
    /// OUT: the unbound port of `store_domid` to `bind_interdomain` to; 0
    /// when the domain has no store.
    pub store_port: u32,
    /// Reserved, written as zero.
    pub reserved0: u32,
    /// OUT: dom0 only: the physical address of `GUEST_RAM_BASE` (dom0's RAM
    /// is one physically contiguous run, so a device's DMA address for an
    /// IPA in RAM is `ipa - ram_base + ram_phys_base`).
    /// [`NO_RAM_PHYS_BASE`] for every other domain.
    pub ram_phys_base: u64,
    /// Reserved, written as zero; later minor versions may define fields here.
    pub reserved: [u8; 152],
}
const _: () = assert!(size_of::<StartInfo>() == 512);
const _: () = assert!(size_of::<StartInfo>() as u64 <= crate::PAGE_SIZE);

impl StartInfo {
    /// Whether `magic` is right and the guest ABI major is `major`.
    pub const fn is_valid_for_major(&self, major: u16) -> bool {
        self.magic == START_INFO_MAGIC && (self.abi_version >> 16) as u16 == major
    }
}

/// Field table of [`StartInfo`].
pub const LAYOUT: LayoutDesc = layout_desc!(StartInfo {
    magic: u64 => Out,
    abi_version: u32 => Out,
    flags: u32 => Out,
    domain_id: u32 => Out,
    vcpus: u32 => Out,
    ram_base: u64 => Out,
    ram_size: u64 => Out,
    console_port: u32 => Out,
    module_count: u32 => Out,
    name: [u8; 32] => Out,
    cmdline: [u8; 256] => Out,
    store_domid: u32 => Out,
    store_gref: u32 => Out,
    store_port: u32 => Out,
    reserved0: u32 => Reserved,
    ram_phys_base: u64 => Out,
    reserved: [u8; 152] => Reserved,
});

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn magic_and_validity() {
        assert_eq!(&START_INFO_MAGIC.to_le_bytes(), b"TERNINFO");
        let mut s = StartInfo::new_zeroed();
        assert!(!s.is_valid_for_major(1));
        s.magic = START_INFO_MAGIC;
        s.abi_version = crate::GUEST_ABI.pack() as u32;
        assert!(s.is_valid_for_major(1));
    }
}
