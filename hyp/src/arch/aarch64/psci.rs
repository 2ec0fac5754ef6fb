//! PSCI client: the calls the hypervisor makes to firmware (Arm DEN 0022,
//! "Arm Power State Coordination Interface").
//!
//! The conduit (HVC or SMC) comes from the device tree's `/psci` `method`.
//! Under QEMU `virt,virtualization=on` it is SMC and QEMU itself answers as the
//! firmware: it intercepts every SMC (whatever the function id, from any EL,
//! regardless of SCR_EL3.SMD) when its PSCI conduit is SMC, so an SMC can never
//! reach a real EL3 handler there.
//!
//! Calls follow the SMC Calling Convention (Arm DEN 0028): function id in w0,
//! arguments in x1..x3, result in x0; x4..x17 may be clobbered by SMCCC v1.0
//! firmware, so the asm declares them clobbered.

use core::sync::atomic::{AtomicU8, Ordering};

use crate::addr::PhysAddr;
use crate::percpu::Mpidr;

/// PSCI function ids (DEN 0022 §5.1, table 5.1 "PSCI function IDs").
pub mod function {
    /// PSCI_VERSION (§5.1.1).
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    /// CPU_OFF (§5.1.3).
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// CPU_ON, SMC64 form (§5.1.4).
    pub const CPU_ON_64: u32 = 0xC400_0003;
    /// AFFINITY_INFO, SMC64 form (§5.1.5).
    pub const AFFINITY_INFO_64: u32 = 0xC400_0004;
    /// SYSTEM_OFF (§5.1.9).
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// SYSTEM_RESET (§5.1.10).
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// PSCI_FEATURES (§5.1.14).
    pub const PSCI_FEATURES: u32 = 0x8400_000A;
}

/// How PSCI calls reach the firmware.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Conduit {
    /// `hvc #0`: the firmware is a hypervisor below us (not for tern at EL2,
    /// but what a DT written for a guest says).
    Hvc,
    /// `smc #0`: EL3 firmware (or QEMU emulating it).
    Smc,
}

/// PSCI error codes (DEN 0022 §5.2.2, table 5.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PsciError {
    /// NOT_SUPPORTED (-1).
    NotSupported,
    /// INVALID_PARAMETERS (-2).
    InvalidParameters,
    /// DENIED (-3).
    Denied,
    /// ALREADY_ON (-4).
    AlreadyOn,
    /// ON_PENDING (-5).
    OnPending,
    /// INTERNAL_FAILURE (-6).
    InternalFailure,
    /// NOT_PRESENT (-7).
    NotPresent,
    /// DISABLED (-8).
    Disabled,
    /// INVALID_ADDRESS (-9).
    InvalidAddress,
    /// A value the specification does not define.
    Unknown(i32),
    /// No conduit was configured (the platform has no PSCI node).
    NoConduit,
}

impl PsciError {
    /// Decodes a negative status.
    fn from_code(code: i32) -> Self {
        match code {
            -1 => Self::NotSupported,
            -2 => Self::InvalidParameters,
            -3 => Self::Denied,
            -4 => Self::AlreadyOn,
            -5 => Self::OnPending,
            -6 => Self::InternalFailure,
            -7 => Self::NotPresent,
            -8 => Self::Disabled,
            -9 => Self::InvalidAddress,
            other => Self::Unknown(other),
        }
    }
}

/// A PSCI version, major.minor (DEN 0022 §5.1.1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Version {
    /// Bits 31:16 of the PSCI_VERSION result.
    pub major: u16,
    /// Bits 15:0.
    pub minor: u16,
}

const CONDUIT_NONE: u8 = 0;
const CONDUIT_HVC: u8 = 1;
const CONDUIT_SMC: u8 = 2;

static CONDUIT: AtomicU8 = AtomicU8::new(CONDUIT_NONE);

/// Sets the conduit every later call uses (from the platform description).
pub fn set_conduit(conduit: Conduit) {
    let value = match conduit {
        Conduit::Hvc => CONDUIT_HVC,
        Conduit::Smc => CONDUIT_SMC,
    };
    CONDUIT.store(value, Ordering::Release);
}

/// The configured conduit, if any.
pub fn conduit() -> Option<Conduit> {
    match CONDUIT.load(Ordering::Acquire) {
        CONDUIT_HVC => Some(Conduit::Hvc),
        CONDUIT_SMC => Some(Conduit::Smc),
        _ => None,
    }
}

/// Issues one call; returns x0.
fn call(function: u32, arg1: u64, arg2: u64, arg3: u64) -> Result<u64, PsciError> {
    let conduit = conduit().ok_or(PsciError::NoConduit)?;
    let mut x0 = u64::from(function);
    match conduit {
        // SAFETY: an SMCCC call changes no memory the compiler knows about; the
        // registers the convention may clobber are declared so.
        Conduit::Hvc => unsafe {
            core::arch::asm!(
                "hvc #0",
                inout("x0") x0,
                inout("x1") arg1 => _, inout("x2") arg2 => _, inout("x3") arg3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _,
                options(nostack),
            );
        },
        // SAFETY: as above, for the SMC conduit.
        Conduit::Smc => unsafe {
            core::arch::asm!(
                "smc #0",
                inout("x0") x0,
                inout("x1") arg1 => _, inout("x2") arg2 => _, inout("x3") arg3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _,
                options(nostack),
            );
        },
    }
    Ok(x0)
}

/// Decodes x0: PSCI results are 32-bit signed (DEN 0022 §5.2.1); negative
/// values are errors, others are SUCCESS (0) or a result.
fn result(x0: u64) -> Result<u32, PsciError> {
    let status = x0 as u32 as i32;
    u32::try_from(status).map_err(|_| PsciError::from_code(status))
}

/// The error of a call that returns only on failure.
fn failure(outcome: Result<u64, PsciError>) -> PsciError {
    match outcome.and_then(result) {
        Ok(value) => PsciError::Unknown(value as i32),
        Err(e) => e,
    }
}

/// PSCI_VERSION.
pub fn version() -> Result<Version, PsciError> {
    let v = result(call(function::PSCI_VERSION, 0, 0, 0)?)?;
    Ok(Version {
        major: (v >> 16) as u16,
        minor: v as u16,
    })
}

/// CPU_ON: starts CPU `target` at physical address `entry` (MMU off, at the
/// highest non-secure EL the firmware provides), with `context_id` in x0.
pub fn cpu_on(target: Mpidr, entry: PhysAddr, context_id: u64) -> Result<(), PsciError> {
    result(call(
        function::CPU_ON_64,
        target.get(),
        entry.get(),
        context_id,
    )?)
    .map(|_| ())
}

/// AFFINITY_INFO for one CPU (affinity level 0): 0 on, 1 off, 2 on pending.
pub fn affinity_info(target: Mpidr) -> Result<u32, PsciError> {
    result(call(function::AFFINITY_INFO_64, target.get(), 0, 0)?)
}

/// PSCI_FEATURES: whether `function` is implemented.
pub fn has_feature(function: u32) -> bool {
    call(function::PSCI_FEATURES, u64::from(function), 0, 0)
        .and_then(result)
        .is_ok()
}

/// CPU_OFF: powers this CPU down. Returns only on failure.
pub fn cpu_off() -> PsciError {
    failure(call(function::CPU_OFF, 0, 0, 0))
}

/// SYSTEM_OFF. Returns only when the call failed (no conduit, or firmware
/// without the call); the caller then parks the CPU.
pub fn system_off() -> PsciError {
    failure(call(function::SYSTEM_OFF, 0, 0, 0))
}

/// SYSTEM_RESET. Returns only when the call failed.
pub fn system_reset() -> PsciError {
    failure(call(function::SYSTEM_RESET, 0, 0, 0))
}
