//! Memory attributes and their encoding in VMSAv8-64 block and page descriptors
//! (Arm ARM DDI 0487, D8.3 "Translation table descriptor formats" and D8.4
//! "Memory access control" / D8.6 "Memory region attributes").
//!
//! Two encodings are implemented:
//! - stage 1 of the EL2 translation regime with `HCR_EL2.E2H == 0` (one privilege
//!   level, one VA range): memory type through `AttrIndx` into `MAIR_EL2`
//!   ([`MAIR_EL2_VALUE`]), `AP[2]` for read-only, `AP[1]` RES1 (the regime has no
//!   EL0 access), a single `XN` bit (bit 54), `PXN` and `nG` RES0;
//! - stage 2 (`VTTBR_EL2`): memory type directly in `MemAttr[3:0]`, `S2AP[1:0]`
//!   read/write, `XN[1:0]` (only `XN[1]` is used: without FEAT_XNX `XN[0]` is RES0).

use tock_registers::LocalRegisterCopy;
use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// Fields shared by every descriptor and table descriptors (D8.3.1).
    pub DESC [
        /// Entry is valid.
        VALID OFFSET(0) NUMBITS(1) [],
        /// At levels 0-2: 1 = table, 0 = block. At level 3 it must be 1 (page).
        TABLE_OR_PAGE OFFSET(1) NUMBITS(1) [],
        /// Output address bits [47:12] (next-level table, block or page).
        OUTPUT_ADDR OFFSET(12) NUMBITS(36) [],
    ],
    /// Stage-1 block/page descriptor, EL2 regime with E2H == 0 (D8.3.2).
    pub S1 [
        /// Index of the attribute in MAIR_EL2.
        ATTR_INDX OFFSET(2) NUMBITS(3) [],
        /// AP[1]: RES1 in a regime with one privilege level.
        AP_EL0 OFFSET(6) NUMBITS(1) [],
        /// AP[2]: 1 = read-only.
        AP_RO OFFSET(7) NUMBITS(1) [],
        /// Shareability.
        SH OFFSET(8) NUMBITS(2) [NonShareable = 0, OuterShareable = 2, InnerShareable = 3],
        /// Access flag: set so that the first access does not fault.
        AF OFFSET(10) NUMBITS(1) [],
        /// Execute never.
        XN OFFSET(54) NUMBITS(1) [],
    ],
    /// Stage-2 block/page descriptor (D8.3.2).
    pub S2 [
        /// Memory type and cacheability, used directly (no MAIR) when FWB is off.
        MEM_ATTR OFFSET(2) NUMBITS(4) [
            DeviceNGnRnE = 0b0000,
            DeviceNGnRE = 0b0001,
            /// Outer write-back (0b11 << 2) | inner write-back (0b11).
            NormalWriteBack = 0b1111
        ],
        /// S2AP[0]: readable.
        S2AP_READ OFFSET(6) NUMBITS(1) [],
        /// S2AP[1]: writable.
        S2AP_WRITE OFFSET(7) NUMBITS(1) [],
        /// Shareability.
        SH OFFSET(8) NUMBITS(2) [NonShareable = 0, OuterShareable = 2, InnerShareable = 3],
        /// Access flag.
        AF OFFSET(10) NUMBITS(1) [],
        /// XN[1]: execute never at EL1 and EL0.
        XN OFFSET(54) NUMBITS(1) [],
    ],
    /// One 8-bit attribute field of MAIR_ELx (Arm ARM D19, register MAIR_EL2).
    pub MAIR_ATTR [
        /// Normal memory: inner attributes (bits [3:0]). Device memory: 0b00dd00 uses bits [3:2].
        INNER OFFSET(0) NUMBITS(4) [
            DeviceNGnRnE = 0b0000,
            DeviceNGnRE = 0b0100,
            WriteBackNonTransientReadWriteAlloc = 0b1111
        ],
        /// Outer attributes (bits [7:4]); 0b0000 selects Device memory.
        OUTER OFFSET(4) NUMBITS(4) [
            Device = 0b0000,
            WriteBackNonTransientReadWriteAlloc = 0b1111
        ],
    ],
}

/// Memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryType {
    /// Normal memory, inner and outer write-back, read/write-allocate.
    NormalWriteBack,
    /// Device-nGnRE: the usual MMIO type (posted writes allowed).
    DeviceNGnRE,
    /// Device-nGnRnE: strongly ordered MMIO.
    DeviceNGnRnE,
}

/// Shareability domain (D8.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shareability {
    /// Non-shareable.
    Non,
    /// Outer shareable.
    Outer,
    /// Inner shareable (what SMP RAM mappings use).
    Inner,
}

/// What a mapping allows and how memory behaves, independent of the regime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// Memory type.
    pub memory: MemoryType,
    /// Reads allowed.
    pub read: bool,
    /// Writes allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub execute: bool,
    /// Shareability (ignored by hardware for Device memory, which is always
    /// treated as outer shareable, but stored as given).
    pub share: Shareability,
}

impl Attributes {
    /// RAM, read/write, not executable.
    pub const RAM_RW: Self = Self {
        memory: MemoryType::NormalWriteBack,
        read: true,
        write: true,
        execute: false,
        share: Shareability::Inner,
    };
    /// RAM, read/write/execute (guest RAM at stage 2).
    pub const RAM_RWX: Self = Self {
        execute: true,
        ..Self::RAM_RW
    };
    /// RAM, read-only, executable (hypervisor text).
    pub const RAM_RX: Self = Self {
        write: false,
        execute: true,
        ..Self::RAM_RW
    };
    /// RAM, read-only, not executable.
    pub const RAM_RO: Self = Self {
        write: false,
        ..Self::RAM_RW
    };
    /// MMIO, Device-nGnRE, read/write, never executable.
    pub const DEVICE_RW: Self = Self {
        memory: MemoryType::DeviceNGnRE,
        read: true,
        write: true,
        execute: false,
        share: Shareability::Outer,
    };

    /// The same attributes without write permission (dirty logging, grants).
    pub const fn read_only(self) -> Self {
        Self {
            write: false,
            ..self
        }
    }
}

/// MAIR_EL2 slot of each memory type used by stage-1 EL2 descriptors.
const MAIR_INDEX_NORMAL: u64 = 0;
const MAIR_INDEX_DEVICE_NGNRE: u64 = 1;
const MAIR_INDEX_DEVICE_NGNRNE: u64 = 2;
/// Bits per MAIR attribute field.
const MAIR_FIELD_BITS: u64 = 8;

/// The value the boot code must program into `MAIR_EL2` before enabling the
/// stage-1 EL2 MMU with tables built here.
pub const MAIR_EL2_VALUE: u64 = {
    let normal = MAIR_ATTR::OUTER::WriteBackNonTransientReadWriteAlloc.value
        | MAIR_ATTR::INNER::WriteBackNonTransientReadWriteAlloc.value;
    let ngnre = MAIR_ATTR::OUTER::Device.value | MAIR_ATTR::INNER::DeviceNGnRE.value;
    let ngnrne = MAIR_ATTR::OUTER::Device.value | MAIR_ATTR::INNER::DeviceNGnRnE.value;
    (normal << (MAIR_INDEX_NORMAL * MAIR_FIELD_BITS))
        | (ngnre << (MAIR_INDEX_DEVICE_NGNRE * MAIR_FIELD_BITS))
        | (ngnrne << (MAIR_INDEX_DEVICE_NGNRNE * MAIR_FIELD_BITS))
};

/// Mask of every attribute (non-address, non-type) bit a leaf may carry, per regime.
pub(super) fn leaf_attr_mask_s1() -> u64 {
    (S1::ATTR_INDX::SET
        + S1::AP_EL0::SET
        + S1::AP_RO::SET
        + S1::SH::SET
        + S1::AF::SET
        + S1::XN::SET)
        .value
}

pub(super) fn leaf_attr_mask_s2() -> u64 {
    (S2::MEM_ATTR::SET
        + S2::S2AP_READ::SET
        + S2::S2AP_WRITE::SET
        + S2::SH::SET
        + S2::AF::SET
        + S2::XN::SET)
        .value
}

/// Encodes stage-1 EL2 leaf attributes; `None` if the regime cannot express them
/// (no access, or write without read: AP[2:1] has no such encodings here).
pub(super) fn encode_s1(a: &Attributes) -> Option<u64> {
    if !a.read {
        return None;
    }
    let mut d = LocalRegisterCopy::<u64, S1::Register>::new(0);
    d.modify(S1::ATTR_INDX.val(match a.memory {
        MemoryType::NormalWriteBack => MAIR_INDEX_NORMAL,
        MemoryType::DeviceNGnRE => MAIR_INDEX_DEVICE_NGNRE,
        MemoryType::DeviceNGnRnE => MAIR_INDEX_DEVICE_NGNRNE,
    }));
    d.modify(S1::AP_EL0::SET + S1::AP_RO.val(u64::from(!a.write)) + S1::AF::SET);
    d.modify(S1::XN.val(u64::from(!a.execute)));
    d.modify(match a.share {
        Shareability::Non => S1::SH::NonShareable,
        Shareability::Outer => S1::SH::OuterShareable,
        Shareability::Inner => S1::SH::InnerShareable,
    });
    Some(d.get())
}

pub(super) fn decode_s1(desc: u64) -> Attributes {
    let d = LocalRegisterCopy::<u64, S1::Register>::new(desc);
    Attributes {
        memory: match d.read(S1::ATTR_INDX) {
            MAIR_INDEX_NORMAL => MemoryType::NormalWriteBack,
            MAIR_INDEX_DEVICE_NGNRE => MemoryType::DeviceNGnRE,
            _ => MemoryType::DeviceNGnRnE,
        },
        read: true,
        write: !d.is_set(S1::AP_RO),
        execute: !d.is_set(S1::XN),
        share: match d.read_as_enum(S1::SH) {
            Some(S1::SH::Value::OuterShareable) => Shareability::Outer,
            Some(S1::SH::Value::InnerShareable) => Shareability::Inner,
            _ => Shareability::Non,
        },
    }
}

/// Encodes stage-2 leaf attributes; every combination is expressible.
pub(super) fn encode_s2(a: &Attributes) -> Option<u64> {
    let mut d = LocalRegisterCopy::<u64, S2::Register>::new(0);
    d.modify(match a.memory {
        MemoryType::NormalWriteBack => S2::MEM_ATTR::NormalWriteBack,
        MemoryType::DeviceNGnRE => S2::MEM_ATTR::DeviceNGnRE,
        MemoryType::DeviceNGnRnE => S2::MEM_ATTR::DeviceNGnRnE,
    });
    d.modify(
        S2::S2AP_READ.val(u64::from(a.read)) + S2::S2AP_WRITE.val(u64::from(a.write)) + S2::AF::SET,
    );
    d.modify(S2::XN.val(u64::from(!a.execute)));
    d.modify(match a.share {
        Shareability::Non => S2::SH::NonShareable,
        Shareability::Outer => S2::SH::OuterShareable,
        Shareability::Inner => S2::SH::InnerShareable,
    });
    Some(d.get())
}

pub(super) fn decode_s2(desc: u64) -> Attributes {
    let d = LocalRegisterCopy::<u64, S2::Register>::new(desc);
    Attributes {
        memory: match d.read_as_enum(S2::MEM_ATTR) {
            Some(S2::MEM_ATTR::Value::NormalWriteBack) => MemoryType::NormalWriteBack,
            Some(S2::MEM_ATTR::Value::DeviceNGnRE) => MemoryType::DeviceNGnRE,
            _ => MemoryType::DeviceNGnRnE,
        },
        read: d.is_set(S2::S2AP_READ),
        write: d.is_set(S2::S2AP_WRITE),
        execute: !d.is_set(S2::XN),
        share: match d.read_as_enum(S2::SH) {
            Some(S2::SH::Value::OuterShareable) => Shareability::Outer,
            Some(S2::SH::Value::InnerShareable) => Shareability::Inner,
            _ => Shareability::Non,
        },
    }
}
