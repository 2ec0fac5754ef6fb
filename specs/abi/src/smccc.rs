//! The standard SMCCC queries (Arm DEN0028) that the hypervisor answers on
//! `hvc #0`, and tern's vendor-hypervisor UID.
//!
//! These are SMC32 fast calls: results are 32-bit values in `w0`..`w3`, and
//! unlike tern hypercalls `x0` is not always a status (the UID query returns UID
//! words in `x0`..`x3`). Any other Arm-architecture, PSCI or standard-service id
//! returns `NOT_SUPPORTED` (-1) in `x0`: tern guests power off and reboot through
//! `sched_op`, not PSCI.

use crate::call::{OEN_ARCH, OEN_STANDARD_SECURE, OEN_VENDOR_HYP, smccc_id};

/// SMCCC `NOT_SUPPORTED`, the status for an id the hypervisor does not implement.
/// Equal to [`crate::Error::NotImplemented`].
pub const NOT_SUPPORTED: i64 = -1;

/// `SMCCC_VERSION` (Arm architecture call 0). Returns `x0` = [`SMCCC_VERSION_1_1`].
pub const SMCCC_VERSION: u32 = smccc_id(true, false, OEN_ARCH, 0);
/// `SMCCC_ARCH_FEATURES` (Arm architecture call 1). `x1` = a function id; returns
/// `x0 = 0` if the hypervisor implements that id, [`NOT_SUPPORTED`] otherwise.
pub const SMCCC_ARCH_FEATURES: u32 = smccc_id(true, false, OEN_ARCH, 1);
/// The SMCCC version the hypervisor implements, encoded as SMCCC does:
/// `major << 16 | minor` = 1.1.
pub const SMCCC_VERSION_1_1: u64 = 1 << 16 | 1;

/// `PSCI_VERSION` (standard secure service call 0). The hypervisor answers
/// [`NOT_SUPPORTED`]: it offers no PSCI to PV guests.
pub const PSCI_VERSION: u32 = smccc_id(true, false, OEN_STANDARD_SECURE, 0);

/// Function number of the SMCCC general "call count" query of a service.
pub const QUERY_CALL_COUNT: u16 = 0xff00;
/// Function number of the SMCCC general "call UID" query of a service.
pub const QUERY_CALL_UID: u16 = 0xff01;
/// Function number of the SMCCC general "revision" query of a service.
pub const QUERY_REVISION: u16 = 0xff03;

/// Vendor hypervisor service `Call Count`: returns `x0` = [`VENDOR_HYP_CALL_COUNT_VALUE`].
pub const VENDOR_HYP_CALL_COUNT: u32 = smccc_id(true, false, OEN_VENDOR_HYP, QUERY_CALL_COUNT);
/// Vendor hypervisor service `Call UID`: returns [`TERN_UID`] as [`TERN_UID_REGS`]
/// in `x0`..`x3`.
pub const VENDOR_HYP_CALL_UID: u32 = smccc_id(true, false, OEN_VENDOR_HYP, QUERY_CALL_UID);
/// Vendor hypervisor service `Revision`: returns `x0` = major, `x1` = minor of the
/// guest ABI ([`crate::GUEST_ABI`]).
pub const VENDOR_HYP_REVISION: u32 = smccc_id(true, false, OEN_VENDOR_HYP, QUERY_REVISION);

/// The number of vendor-hypervisor function ids tern implements: `version` plus
/// one per [`crate::Call`].
pub const VENDOR_HYP_CALL_COUNT_VALUE: u64 = 1 + crate::Call::ALL.len() as u64;

/// tern's vendor-hypervisor UID, `22bf763b-756d-4965-99ce-6d10daf97a2f` (a random
/// version-4 UUID generated for tern), in RFC 4122 byte order.
///
/// A guest that finds this UID knows the vendor-hypervisor ids follow this crate;
/// it then asks `version` for the ABI versions.
pub const TERN_UID: [u8; 16] = [
    0x22, 0xbf, 0x76, 0x3b, 0x75, 0x6d, 0x49, 0x65, 0x99, 0xce, 0x6d, 0x10, 0xda, 0xf9, 0x7a, 0x2f,
];

/// [`TERN_UID`] as the `Call UID` query returns it: register `i` holds bytes
/// `4i..4i+4` of the UUID as a little-endian 32-bit word (the packing SMCCC and
/// existing hypervisors use: KVM's UID `28b46fb6-…` reads `w0 = 0xb66fb428`).
pub const TERN_UID_REGS: [u32; 4] = uid_to_regs(&TERN_UID);

/// Packs a UUID (RFC 4122 byte order) into the four `Call UID` result words.
pub const fn uid_to_regs(uid: &[u8; 16]) -> [u32; 4] {
    let mut regs = [0u32; 4];
    let mut i = 0;
    while i < 4 {
        regs[i] = u32::from_le_bytes([uid[4 * i], uid[4 * i + 1], uid[4 * i + 2], uid[4 * i + 3]]);
        i += 1;
    }
    regs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_smccc() {
        assert_eq!(SMCCC_VERSION, 0x8000_0000);
        assert_eq!(SMCCC_ARCH_FEATURES, 0x8000_0001);
        assert_eq!(PSCI_VERSION, 0x8400_0000);
        assert_eq!(VENDOR_HYP_CALL_COUNT, 0x8600_FF00);
        assert_eq!(VENDOR_HYP_CALL_UID, 0x8600_FF01);
        assert_eq!(VENDOR_HYP_REVISION, 0x8600_FF03);
        assert_eq!(NOT_SUPPORTED, crate::Error::NotImplemented.raw());
    }

    #[test]
    fn uid_packing_matches_kvm_example() {
        // KVM's published UID and register values (Linux arm-smccc.h).
        let kvm = [
            0x28, 0xb4, 0x6f, 0xb6, 0x2e, 0xc5, 0x11, 0xe9, 0xa9, 0xca, 0x4b, 0x56, 0x4d, 0x00,
            0x3a, 0x74,
        ];
        assert_eq!(
            uid_to_regs(&kvm),
            [0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d]
        );
        assert_eq!(
            TERN_UID_REGS,
            [0x3b76_bf22, 0x6549_6d75, 0x106d_ce99, 0x2f7a_f9da]
        );
    }
}
