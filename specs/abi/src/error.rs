//! Status codes returned in `x0`.
//!
//! `x0 = 0` is success; a negative value is an [`Error`]. The numbers are part of
//! the ABI: they never change within a major version, and a call only returns the
//! errors listed for it in `specs/hypercalls.md` (plus [`Error::NotImplemented`]
//! for an unknown call or sub-operation), so a guest never meets a code that its
//! ABI version does not define.

use core::fmt;

/// A hypercall failure, as the negative status in `x0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i64)]
pub enum Error {
    /// The function id, sub-operation or query is not implemented by this
    /// hypervisor (or not in the caller's ABI major). Equal to SMCCC
    /// `NOT_SUPPORTED` (-1), which is what SMCCC callers expect for unknown ids.
    NotImplemented = -1,
    /// An argument is out of range or malformed: an unknown enum value, a
    /// reserved field or flag that is not zero, a name with bad characters, a
    /// size smaller than the structure's first version.
    InvalidArgument = -2,
    /// The caller may not make this call (a control call from a domain other
    /// than dom0), or may not apply it to that target (dom0 destroying itself).
    PermissionDenied = -3,
    /// The hypervisor ran out of memory for the request (frames for guest RAM,
    /// page tables or bookkeeping). Retrying after freeing memory may succeed.
    NoMemory = -4,
    /// No domain has the given domain id (or it is being destroyed and can no
    /// longer be named).
    NoSuchDomain = -5,
    /// A guest-physical range passed by the caller is not entirely inside the
    /// caller's RAM, is not mapped, overflows, or is misaligned for the
    /// structure it must hold.
    BadAddress = -6,
    /// The object is in use and the operation cannot proceed now (for
    /// example a domain still being torn down). Retrying later may succeed.
    Busy = -7,
    /// The operation would have to wait and the caller asked not to.
    WouldBlock = -8,
    /// A length or count exceeds the documented maximum (console buffer,
    /// module read, vCPU count, domain memory above its limit or the ABI
    /// maximum).
    TooBig = -9,
    /// The object to create already exists (a domain with the same name).
    Exists = -10,
    /// The target is not in a state that allows the operation: loading an
    /// image into a domain that has run, unpausing a domain with no image,
    /// setting the context of a running vCPU, acting on a dying domain.
    InvalidState = -11,
    /// A named object does not exist: a boot module name or index, a vCPU
    /// index beyond the domain's vCPUs.
    NotFound = -12,
    /// An image is not a loadable AArch64 ELF64 executable, or one of its
    /// segments does not fit in the target domain's RAM.
    InvalidImage = -13,
}

impl Error {
    /// Every error code, from -1 downwards.
    pub const ALL: &'static [Self] = &[
        Self::NotImplemented,
        Self::InvalidArgument,
        Self::PermissionDenied,
        Self::NoMemory,
        Self::NoSuchDomain,
        Self::BadAddress,
        Self::Busy,
        Self::WouldBlock,
        Self::TooBig,
        Self::Exists,
        Self::InvalidState,
        Self::NotFound,
        Self::InvalidImage,
    ];

    /// The status value (negative).
    pub const fn raw(self) -> i64 {
        self as i64
    }

    /// The value the hypervisor writes to `x0` (the two's-complement `u64`).
    pub const fn to_reg(self) -> u64 {
        self as i64 as u64
    }

    /// Decodes a status value; `None` for 0, positive values and unknown codes.
    pub const fn from_raw(raw: i64) -> Option<Self> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i] as i64 == raw {
                return Some(Self::ALL[i]);
            }
            i += 1;
        }
        None
    }

    /// The variant name, as written in `specs/errors.md`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::NotImplemented => "NotImplemented",
            Self::InvalidArgument => "InvalidArgument",
            Self::PermissionDenied => "PermissionDenied",
            Self::NoMemory => "NoMemory",
            Self::NoSuchDomain => "NoSuchDomain",
            Self::BadAddress => "BadAddress",
            Self::Busy => "Busy",
            Self::WouldBlock => "WouldBlock",
            Self::TooBig => "TooBig",
            Self::Exists => "Exists",
            Self::InvalidState => "InvalidState",
            Self::NotFound => "NotFound",
            Self::InvalidImage => "InvalidImage",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.raw())
    }
}

impl From<Error> for i64 {
    fn from(e: Error) -> i64 {
        e.raw()
    }
}

/// Interprets the status in `x0` (read the register as `i64`).
///
/// `0` is `Ok(())`. A known negative code is that error. Any other value cannot
/// come from a conforming hypervisor; it is reported as
/// [`Error::NotImplemented`], so the caller treats the call as unavailable.
pub const fn status_to_result(status: i64) -> Result<(), Error> {
    if status == 0 {
        return Ok(());
    }
    match Error::from_raw(status) {
        Some(e) => Err(e),
        None => Err(Error::NotImplemented),
    }
}

/// The status register value for a result: 0 or the error code.
pub const fn result_to_status(result: Result<(), Error>) -> u64 {
    match result {
        Ok(()) => 0,
        Err(e) => e.to_reg(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_negative_and_round_trip() {
        for (i, &e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.raw(), -(i as i64) - 1);
            assert_eq!(Error::from_raw(e.raw()), Some(e));
            assert_eq!(status_to_result(e.to_reg() as i64), Err(e));
            assert_eq!(result_to_status(Err(e)), e.to_reg());
        }
        assert_eq!(status_to_result(0), Ok(()));
        assert_eq!(status_to_result(5), Err(Error::NotImplemented));
        assert_eq!(status_to_result(-1000), Err(Error::NotImplemented));
        assert_eq!(Error::NotImplemented.to_reg(), u64::MAX);
    }
}
