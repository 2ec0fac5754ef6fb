//! Function identifiers: how a hypercall is named in `w0`.
//!
//! tern follows the SMC Calling Convention (Arm DEN0028, "SMCCC") for `hvc #0`:
//! `w0` holds a 32-bit function identifier whose fields are
//!
//! | bits | field | tern hypercalls |
//! |---|---|---|
//! | 31 | fast call | 1 |
//! | 30 | calling convention: 0 = SMC32, 1 = SMC64 | 1 (SMC64) |
//! | 29:24 | owning entity number (OEN) | 6, vendor-specific hypervisor service |
//! | 23:17 | must be zero | 0 |
//! | 16 | SVE live-state hint (SMCCC 1.3) | ignored by the hypervisor |
//! | 15:12 | tern: ABI major version (0 = discovery) | |
//! | 11:0 | tern: call number within that major | |
//!
//! Putting the major in the identifier lets `hyp` keep one dispatch table per
//! major version: a guest built for major 1 keeps working when major 2 exists.
//! Call number 0 of every major `>= 1` is reserved and never assigned.

/// Bit 31 of a function id: set for a fast (atomic) call. All tern calls are fast.
pub const FAST_CALL: u32 = 1 << 31;
/// Bit 30 of a function id: set for the SMC64/HVC64 convention (64-bit registers).
pub const SMC64: u32 = 1 << 30;
/// Lowest bit of the owning-entity-number field (bits 29:24).
pub const OEN_SHIFT: u32 = 24;
/// Width mask of the owning-entity-number field, after shifting.
pub const OEN_MASK: u32 = 0x3f;
/// Owning entity 0: Arm architecture calls (SMCCC version, features, workarounds).
pub const OEN_ARCH: u32 = 0;
/// Owning entity 4: standard secure services (PSCI).
pub const OEN_STANDARD_SECURE: u32 = 4;
/// Owning entity 6: vendor-specific hypervisor service. Every tern hypercall uses it.
pub const OEN_VENDOR_HYP: u32 = 6;
/// Bits 23:17 of a function id, which SMCCC requires to be zero.
pub const MBZ_MASK: u32 = 0x7f << 17;
/// Bit 16 of a function id: the SMCCC 1.3 SVE hint ("no live SVE state"). tern
/// ignores it: the hypervisor preserves SVE/FP state either way.
pub const SVE_HINT: u32 = 1 << 16;
/// Lowest bit of tern's ABI-major field (bits 15:12).
pub const MAJOR_SHIFT: u32 = 12;
/// Largest ABI major that can be encoded. Major 15 is excluded because function
/// numbers `0xFF00..=0xFFFF` are reserved by SMCCC for the general service queries.
pub const MAX_MAJOR: u16 = 14;
/// Width mask of tern's call-number field (bits 11:0).
pub const CALL_MASK: u16 = 0x0fff;

/// Builds an SMCCC function id from its fields.
///
/// `function` is the 16-bit function number (bits 15:0).
pub const fn smccc_id(fast: bool, smc64: bool, oen: u32, function: u16) -> u32 {
    (if fast { FAST_CALL } else { 0 })
        | (if smc64 { SMC64 } else { 0 })
        | ((oen & OEN_MASK) << OEN_SHIFT)
        | function as u32
}

/// The function id with major 0, call 0: fast, SMC64, vendor hypervisor service.
/// Every tern function id is `BASE | major << 12 | call` (`0xC600_0000`).
pub const BASE: u32 = smccc_id(true, true, OEN_VENDOR_HYP, 0);

/// The function id of call `call` in ABI major `major`.
///
/// # Panics
/// If `major > MAX_MAJOR` or `call > CALL_MASK` (a compile-time error in a
/// `const`). Use [`checked_function_id`] for numbers that come from outside.
pub const fn function_id(major: u16, call: u16) -> u32 {
    match checked_function_id(major, call) {
        Some(id) => id,
        None => panic!("major or call number out of range"),
    }
}

/// The function id of call `call` in ABI major `major`, or `None` if either does
/// not fit its field.
pub const fn checked_function_id(major: u16, call: u16) -> Option<u32> {
    if major > MAX_MAJOR || call > CALL_MASK {
        return None;
    }
    Some(BASE | (major as u32) << MAJOR_SHIFT | call as u32)
}

/// Splits a tern function id into `(major, call)`.
///
/// Only the low 32 bits of `x0` are the id (SMCCC: the caller passes it in `w0`),
/// so pass `x0 as u32`. Returns `None` if the id is not a fast SMC64 call of the
/// vendor-hypervisor service, if a must-be-zero bit is set, or if the major is
/// above [`MAX_MAJOR`]. The SVE hint bit is ignored.
pub const fn decode(id: u32) -> Option<(u16, u16)> {
    if id & FAST_CALL == 0 || id & SMC64 == 0 {
        return None;
    }
    if (id >> OEN_SHIFT) & OEN_MASK != OEN_VENDOR_HYP || id & MBZ_MASK != 0 {
        return None;
    }
    let major = ((id >> MAJOR_SHIFT) & 0xf) as u16;
    if major > MAX_MAJOR {
        return None;
    }
    Some((major, (id as u16) & CALL_MASK))
}

/// The ABI major of discovery calls, which exist whatever majors the hypervisor
/// implements.
pub const DISCOVERY_MAJOR: u16 = 0;

/// Discovery call `version` (major 0, call 0). No arguments. Returns `x0 = 0`,
/// `x1` = guest ABI version, `x2` = control ABI version (both
/// `major << 16 | minor`, see [`crate::Version::pack`]), `x3` = the
/// [`crate::Features`] available to the caller.
pub const VERSION: u32 = function_id(DISCOVERY_MAJOR, 0);

/// Description of [`VERSION`] for `specs/hypercalls.md`.
pub const VERSION_SPEC: crate::spec::CallSpec = crate::spec::CallSpec {
    name: "version",
    major: DISCOVERY_MAJOR,
    call: 0,
    caller: Caller::Any,
    sub_ops: &[crate::spec::SubOpSpec {
        name: "-",
        value: None,
        args: &[],
        returns: &["x1=guest_abi", "x2=control_abi", "x3=features"],
        errors: &[],
    }],
};

abi_enum! {
    /// The calls of guest ABI major 1: one per hypercall family.
    ///
    /// Every call takes its sub-operation number in `x1` and arguments in
    /// `x2`..`x6`; it returns a status in `x0` and values in `x1`..`x3`.
    /// `specs/hypercalls.md` lists the sub-operations of each.
    pub enum Call: u16, unknown = NotImplemented {
        /// `console_io`: the hypervisor console. `x1` = [`crate::console::Op`].
        ConsoleIo = 1 => "console_io",
        /// `sched_op`: the calling vCPU and domain's scheduling. `x1` = [`crate::sched::Op`].
        SchedOp = 2 => "sched_op",
        /// `domctl`: domain control, dom0 only (control ABI). `x1` = [`crate::domctl::Op`].
        Domctl = 3 => "domctl",
        /// `module_op`: the boot modules, dom0 only (control ABI). `x1` = [`crate::module::Op`].
        ModuleOp = 4 => "module_op",
        /// `evtchn_op`: the calling domain's event channels. `x1` = [`crate::evtchn::Op`].
        EvtchnOp = 5 => "evtchn_op",
        /// `vcpu_op`: the calling domain's own vCPUs. `x1` = [`crate::vcpu::Op`].
        VcpuOp = 6 => "vcpu_op",
        /// `time_op`: the one-shot timer and the time page. `x1` = [`crate::time::Op`].
        TimeOp = 7 => "time_op",
        /// `grant_op`: grant tables, mapping and copying grants. `x1` = [`crate::grant::Op`].
        GrantOp = 8 => "grant_op",
    }
}

impl Call {
    /// The ABI major these calls belong to.
    pub const MAJOR: u16 = 1;

    /// This call's function id (`0xC600_1000 | call`).
    pub const fn function_id(self) -> u32 {
        function_id(Self::MAJOR, self as u16)
    }

    /// Decodes a function id of major 1. `None` for other majors, discovery
    /// calls and call numbers not assigned.
    pub const fn from_function_id(id: u32) -> Option<Self> {
        match decode(id) {
            Some((Self::MAJOR, call)) => Self::from_raw(call),
            _ => None,
        }
    }

    /// Who may make this call. Every sub-operation of a call shares it.
    pub const fn caller(self) -> Caller {
        match self {
            Self::ConsoleIo
            | Self::SchedOp
            | Self::EvtchnOp
            | Self::VcpuOp
            | Self::TimeOp
            | Self::GrantOp => Caller::Any,
            Self::Domctl | Self::ModuleOp => Caller::Dom0,
        }
    }
}

/// Function id of [`Call::ConsoleIo`].
pub const CONSOLE_IO: u32 = Call::ConsoleIo.function_id();
/// Function id of [`Call::SchedOp`].
pub const SCHED_OP: u32 = Call::SchedOp.function_id();
/// Function id of [`Call::Domctl`].
pub const DOMCTL: u32 = Call::Domctl.function_id();
/// Function id of [`Call::ModuleOp`].
pub const MODULE_OP: u32 = Call::ModuleOp.function_id();
/// Function id of [`Call::EvtchnOp`].
pub const EVTCHN_OP: u32 = Call::EvtchnOp.function_id();
/// Function id of [`Call::VcpuOp`].
pub const VCPU_OP: u32 = Call::VcpuOp.function_id();
/// Function id of [`Call::TimeOp`].
pub const TIME_OP: u32 = Call::TimeOp.function_id();
/// Function id of [`Call::GrantOp`].
pub const GRANT_OP: u32 = Call::GrantOp.function_id();

/// Who may make a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// Any domain.
    Any,
    /// Only the control domain (dom0); others get [`crate::Error::PermissionDenied`].
    Dom0,
}

impl Caller {
    /// The name used in the `caller` column of `specs/hypercalls.md`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Dom0 => "dom0",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_is_vendor_hyp_smc64_fast() {
        assert_eq!(BASE, 0xC600_0000);
        assert_eq!(VERSION, 0xC600_0000);
        assert_eq!(CONSOLE_IO, 0xC600_1001);
        assert_eq!(MODULE_OP, 0xC600_1004);
    }

    #[test]
    fn decode_round_trips_and_rejects() {
        for major in 0..=MAX_MAJOR {
            for call in [0, 1, 0x123, CALL_MASK] {
                assert_eq!(decode(function_id(major, call)), Some((major, call)));
            }
        }
        assert_eq!(decode(0xC600_1001 | SVE_HINT), Some((1, 1)));
        assert_eq!(decode(0x8600_1001), None, "SMC32");
        assert_eq!(decode(0x4600_1001), None, "yielding call");
        assert_eq!(decode(0xC400_1001), None, "PSCI OEN");
        assert_eq!(decode(0xC602_1001), None, "must-be-zero bit");
        assert_eq!(decode(0xC600_F001), None, "major 15");
        assert_eq!(checked_function_id(15, 0), None);
        assert_eq!(checked_function_id(1, 0x1000), None);
    }

    #[test]
    fn calls_decode() {
        for &c in Call::ALL {
            assert_eq!(Call::from_function_id(c.function_id()), Some(c));
        }
        assert_eq!(Call::from_function_id(VERSION), None);
        assert_eq!(Call::from_function_id(function_id(1, 0)), None);
        assert_eq!(Call::try_from(0), Err(crate::Error::NotImplemented));
    }
}
