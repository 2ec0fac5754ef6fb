//! The guest-physical (IPA) memory map every domain sees, and the vCPU entry
//! state. `specs/memory-map.md` is the normative description.
//!
//! ```text
//! 0x00_0000_0000 ┬ DEVICE_WINDOW   dom0: device MMIO, identity-mapped (IPA == PA)
//!                │                 others: unmapped, reserved for virtual devices
//! 0x00_4000_0000 ┼ GUEST_RAM_BASE  START_INFO_IPA: the start-info page
//! 0x00_4000_1000 │                 free RAM (zeroed)
//! 0x00_4008_0000 │ GUEST_IMAGE_BASE: where the SDK links text
//!                │   ... RAM, up to GUEST_RAM_MAX_SIZE bytes from GUEST_RAM_BASE
//! 0x10_0000_0000 ┼ MAP_WINDOW      grant mappings and pages shared by the hypervisor
//! 0x20_0000_0000 ┼ unmapped, reserved
//! 0x100_0000_0000 ┴ end of the IPA space (IPA_BITS = 40)
//! ```

/// Width of the IPA space of every domain, in bits (1 TiB). Fits every stage-2
/// the supported CPUs implement (Cortex-A53/A57/A72: 40-bit PARange or more).
pub const IPA_BITS: u32 = 40;

/// Start of the device window: IPA 0.
pub const DEVICE_WINDOW_BASE: u64 = 0;
/// Size of the device window: everything below guest RAM (1 GiB). For dom0,
/// device MMIO here is identity-mapped; for other domains it is unmapped.
pub const DEVICE_WINDOW_SIZE: u64 = GUEST_RAM_BASE - DEVICE_WINDOW_BASE;

/// IPA of the first byte of every domain's RAM (1 GiB).
pub const GUEST_RAM_BASE: u64 = 0x4000_0000;
/// Most RAM a domain can have: RAM must end at or below [`MAP_WINDOW_BASE`]
/// (63 GiB).
pub const GUEST_RAM_MAX_SIZE: u64 = MAP_WINDOW_BASE - GUEST_RAM_BASE;
/// Least RAM a domain can have (1 MiB): the start-info page, the area below the
/// image, and room for a small image.
pub const GUEST_RAM_MIN_SIZE: u64 = 0x10_0000;

/// IPA of the start-info page: the first page of RAM. Fixed, so a guest can find
/// it even if it lost `x0`, and below any image linked at [`GUEST_IMAGE_BASE`].
pub const START_INFO_IPA: u64 = GUEST_RAM_BASE;

/// Where the SDK's linker script places text: RAM base + 512 KiB (the Linux
/// arm64 text offset convention). RAM between the start-info page and here is
/// free for the guest (zeroed at creation).
pub const GUEST_IMAGE_BASE: u64 = GUEST_RAM_BASE + 0x8_0000;

/// Start of the window where the hypervisor maps foreign pages: grant
/// mappings and pages it shares with the guest (64 GiB). Nothing is mapped
/// there in guest ABI 1.0; guests must not place anything there.
pub const MAP_WINDOW_BASE: u64 = 0x10_0000_0000;
/// Size of the mapping window (64 GiB).
pub const MAP_WINDOW_SIZE: u64 = 0x10_0000_0000;

/// Whether `[ipa, ipa + len)` lies inside a RAM of `ram_size` bytes at
/// [`GUEST_RAM_BASE`]. An empty range is inside if `ipa` is within or at the end.
pub const fn ram_contains(ram_size: u64, ipa: u64, len: u64) -> bool {
    let Some(end) = ipa.checked_add(len) else {
        return false;
    };
    ipa >= GUEST_RAM_BASE && end <= GUEST_RAM_BASE + ram_size
}

const _: () = assert!(GUEST_IMAGE_BASE > START_INFO_IPA + crate::PAGE_SIZE);
const _: () = assert!(GUEST_RAM_MIN_SIZE > GUEST_IMAGE_BASE - GUEST_RAM_BASE);
const _: () = assert!(MAP_WINDOW_BASE + MAP_WINDOW_SIZE <= 1 << IPA_BITS);
const _: () = assert!(GUEST_RAM_BASE + GUEST_RAM_MAX_SIZE <= MAP_WINDOW_BASE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_ranges() {
        let size = 0x100_0000;
        assert!(ram_contains(size, GUEST_RAM_BASE, size));
        assert!(ram_contains(size, GUEST_RAM_BASE + size, 0));
        assert!(!ram_contains(size, GUEST_RAM_BASE - 1, 1));
        assert!(!ram_contains(size, GUEST_RAM_BASE, size + 1));
        assert!(!ram_contains(size, u64::MAX, 2));
    }
}
