//! Hypercalls: the raw `hvc` and safe typed wrappers for the calls any guest
//! may make (`version`, `console_io`, `sched_op`).
//!
//! The calling convention (docs/architecture.md, specs/hypercalls.md): function
//! id in `x0`, sub-operation in `x1`, arguments in `x2`..`x6`; status in `x0`
//! (0 or a negative [`Error`]), values in `x1`..`x3`.
//!
//! Buffers are passed by IPA. The SDK runs with the MMU off, so a pointer's
//! value *is* its IPA ([`ipa_of`]); an SDK that turns the MMU on must keep an
//! identity map or translate here.

use tern_abi::{Call, Error, Features, Version, call, console, sched, status_to_result};

/// Issues one hypercall: `x0` = `id`, `x1`..`x6` = `args`; returns `x0`..`x3`.
///
/// Safe: the hypervisor validates every argument and only writes guest memory
/// that an argument names. Callers that pass a buffer's IPA must keep the
/// buffer borrowed (mutably, if the call writes it) for the duration.
#[cfg(target_arch = "aarch64")]
pub fn raw(id: u32, args: [u64; 6]) -> [u64; 4] {
    crate::arch::hvc(u64::from(id), args)
}

/// Host stand-in for [`raw`] so that code built on the SDK compiles and its
/// pure logic can be unit-tested on the host: every call is "not implemented".
#[cfg(not(target_arch = "aarch64"))]
pub fn raw(_id: u32, _args: [u64; 6]) -> [u64; 4] {
    [Error::NotImplemented.to_reg(), 0, 0, 0]
}

/// [`raw`] for a call whose arguments end at `x2` (`args` = `x1`, `x2`):
/// the hypervisor ignores the rest, so they are not zeroed.
#[cfg(target_arch = "aarch64")]
pub fn raw_short(id: u32, args: [u64; 2]) -> [u64; 4] {
    crate::arch::hvc_short(u64::from(id), args)
}

/// Host stand-in for [`raw_short`], as [`raw`]'s.
#[cfg(not(target_arch = "aarch64"))]
pub fn raw_short(_id: u32, _args: [u64; 2]) -> [u64; 4] {
    [Error::NotImplemented.to_reg(), 0, 0, 0]
}

/// The IPA of a value in this guest's memory (VA == IPA: the MMU is off).
pub fn ipa_of<T: ?Sized>(value: &T) -> u64 {
    (value as *const T).cast::<u8>() as usize as u64
}

/// The IPA of a buffer the hypervisor will write (VA == IPA). Taking `&mut`
/// makes the caller hold the only borrow while the call writes it.
pub fn ipa_of_mut<T: ?Sized>(value: &mut T) -> u64 {
    (value as *mut T).cast::<u8>() as usize as u64
}

/// Makes call `call` with sub-operation `op` and arguments `x2`..`x6`.
/// Returns `x1`..`x3` on success.
pub fn call(call: Call, op: u16, args: [u64; 5]) -> Result<[u64; 3], Error> {
    let [a2, a3, a4, a5, a6] = args;
    let [status, r1, r2, r3] = raw(call.function_id(), [u64::from(op), a2, a3, a4, a5, a6]);
    result(status, [r1, r2, r3])
}

/// A call's result from its status and result registers.
#[inline(always)]
fn result(status: u64, values: [u64; 3]) -> Result<[u64; 3], Error> {
    match status {
        0 => Ok(values),
        _ => Err(error(status)),
    }
}

/// The error of a failed call's status: out of line, so that the callers'
/// success path is a compare and branch.
#[cold]
#[inline(never)]
fn error(status: u64) -> Error {
    status_to_result(status as i64)
        .err()
        .unwrap_or(Error::NotImplemented)
}

/// [`call`] with one argument, `x2`, for the calls that take no more (the
/// hot ones: send, block, send_block, send_wait): fewer registers to set.
pub fn call_short(call: Call, op: u16, a2: u64) -> Result<[u64; 3], Error> {
    let [status, r1, r2, r3] = raw_short(call.function_id(), [u64::from(op), a2]);
    result(status, [r1, r2, r3])
}

/// What the `version` discovery call reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// The guest ABI the hypervisor implements.
    pub guest: Version,
    /// The control (dom0) ABI the hypervisor implements.
    pub control: Version,
    /// Families available to this domain.
    pub features: Features,
}

/// Decodes the registers of a successful `version` call.
pub fn decode_version(regs: [u64; 3]) -> Result<VersionInfo, Error> {
    let [guest, control, features] = regs;
    Ok(VersionInfo {
        guest: Version::unpack(guest).ok_or(Error::InvalidArgument)?,
        control: Version::unpack(control).ok_or(Error::InvalidArgument)?,
        features: Features::from_bits_retain(features),
    })
}

/// Asks the hypervisor which ABI versions and features it offers.
pub fn version() -> Result<VersionInfo, Error> {
    let [status, r1, r2, r3] = raw(call::VERSION, [0; 6]);
    status_to_result(status as i64)?;
    decode_version([r1, r2, r3])
}

/// Writes `bytes` to the hypervisor console, in pieces of at most
/// [`console::WRITE_MAX`] bytes. Returns the number of bytes written.
pub fn console_write(bytes: &[u8]) -> Result<usize, Error> {
    let mut written = 0;
    for chunk in bytes.chunks(console::WRITE_MAX as usize) {
        // The borrow of `chunk` lasts across the call, so the bytes stay put.
        let n = console_write_ipa(ipa_of(chunk), chunk.len() as u64)?;
        written += n as usize;
    }
    Ok(written)
}

/// dom0: writes `bytes` to the hypervisor console as domain `dom`'s output
/// (`console_io write_as`: its `[name] ` prefix, its line buffer), in
/// pieces of at most [`console::WRITE_MAX`] bytes. Returns the number of
/// bytes written.
pub fn console_write_as(dom: tern_abi::domctl::DomainId, bytes: &[u8]) -> Result<usize, Error> {
    let mut written = 0;
    for chunk in bytes.chunks(console::WRITE_MAX as usize) {
        // The borrow of `chunk` lasts across the call, so the bytes stay put.
        let [n, _, _] = call(
            Call::ConsoleIo,
            console::Op::WriteAs.raw(),
            [u64::from(dom.0), ipa_of(chunk), chunk.len() as u64, 0, 0],
        )?;
        written += n as usize;
    }
    Ok(written)
}

/// `console_io write` with an arbitrary IPA and length, unchecked on our side:
/// for tests that probe the hypervisor's validation. Safe because only the
/// hypervisor dereferences the address, and it checks it against our RAM.
pub fn console_write_ipa(ipa: u64, len: u64) -> Result<u64, Error> {
    call(
        Call::ConsoleIo,
        console::Op::Write.raw(),
        [ipa, len, 0, 0, 0],
    )
    .map(|[n, _, _]| n)
}

/// Gives up the rest of this vCPU's time slice; it stays runnable. First
/// sends the events marked with [`crate::events::send_later`].
pub fn yield_now() {
    crate::events::send_marked();
    // No errors are defined for yield.
    let _ = call_short(Call::SchedOp, sched::Op::Yield.raw(), 0);
}

/// Stops this vCPU until an interrupt is pending for it. First sends the
/// events marked with [`crate::events::send_later`].
pub fn block() {
    crate::events::send_marked();
    // No errors are defined for block.
    let _ = call_short(Call::SchedOp, sched::Op::Block.raw(), 0);
}

/// Makes the other end of event-channel `port` pending, then [`block`]s:
/// one hypercall (`sched_op send_block`). Errors are those of the send,
/// which does not block when it fails. Most callers want
/// [`crate::events::send_and_wait`].
pub fn send_block(port: crate::events::Port) -> Result<(), Error> {
    call_short(Call::SchedOp, sched::Op::SendBlock.raw(), port.0.into()).map(|_| ())
}

/// [`send_block`] that may take the answer in a register (`sched_op
/// send_wait`): `Some(port)` when the event that woke this vCPU was handed
/// over instead of made pending, which the caller must handle as if it had
/// found and cleared that port's pending bit; `None` when events are in
/// the event page as usual. Most callers want
/// [`crate::events::send_and_wait`].
pub fn send_wait(port: crate::events::Port) -> Result<Option<crate::events::Port>, Error> {
    // 0 (none) and anything out of range alike: not a port.
    send_wait_raw(port).map(|handed| crate::events::Port::from_reg(handed).ok())
}

/// [`send_wait`] with `x1` as it came back (0: no port handed over).
pub(crate) fn send_wait_raw(port: crate::events::Port) -> Result<u64, Error> {
    let [handed, ..] = call_short(Call::SchedOp, sched::Op::SendWait.raw(), port.0.into())?;
    Ok(handed)
}

/// Asks the hypervisor to stop the whole domain. Returns only on failure.
pub fn try_shutdown(reason: sched::ShutdownReason) -> Result<(), Error> {
    call(
        Call::SchedOp,
        sched::Op::Shutdown.raw(),
        [u64::from(reason.raw()), 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Stops the whole domain with `reason`. If the hypervisor refuses (it should
/// not), the vCPU parks itself.
///
/// Console output goes out first: the partial line, and what is still in
/// the console ring (waiting, bounded, for dom0 to print it), so a
/// domain's last words come before the hypervisor's report of its end.
pub fn shutdown(reason: sched::ShutdownReason) -> ! {
    crate::console::try_flush();
    crate::console::settle();
    let _ = try_shutdown(reason);
    crate::halt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_decodes() {
        let v = decode_version([
            Version::new(1, 2).pack(),
            Version::new(1, 0).pack(),
            Features::CONSOLE.bits() | Features::SCHED.bits(),
        ])
        .unwrap();
        assert_eq!(v.guest, Version::new(1, 2));
        assert!(v.features.contains(Features::SCHED));
        assert!(!v.features.contains(Features::DOMCTL));
        assert_eq!(decode_version([1 << 40, 0, 0]), Err(Error::InvalidArgument));
    }

    #[test]
    fn results_decode() {
        assert_eq!(result(0, [1, 2, 3]), Ok([1, 2, 3]));
        assert_eq!(result(Error::Busy.to_reg(), [1, 2, 3]), Err(Error::Busy));
        assert_eq!(
            result(12_345, [0; 3]),
            Err(Error::NotImplemented),
            "unknown code"
        );
        assert_eq!(call_short(Call::SchedOp, 0, 0), Err(Error::NotImplemented));
    }

    #[test]
    fn host_fake_reports_not_implemented() {
        assert_eq!(version(), Err(Error::NotImplemented));
        assert_eq!(console_write(b"x"), Err(Error::NotImplemented));
        assert_eq!(console_write(b""), Ok(0));
    }

    #[test]
    fn ipa_of_is_address() {
        let x = [1u8, 2, 3];
        assert_eq!(ipa_of(&x[1..]), x.as_ptr() as usize as u64 + 1);
    }
}
