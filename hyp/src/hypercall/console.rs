//! `console_io`: console output, line-buffered per domain (raw for the
//! interactive input owner), and console input (`crate::console_in`).

use tern_abi::Error;
use tern_abi::console::{Op, READ_MAX, WRITE_MAX};
use tern_abi::domctl::DomainId;

use super::{Args, Next};
use crate::addr::GuestPhysAddr;

use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};

/// Bytes copied out of the guest per step: keeps the stack frame small.
const CHUNK: usize = 256;

/// Copies `len` bytes at `ipa` in the caller's RAM to the console as
/// `target`'s output: prefixed lines, or raw for the interactive input owner.
fn write<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
    target: DomainId,
    ipa: u64,
    len: u64,
) -> Result<Next, Error> {
    if len > WRITE_MAX {
        return Err(Error::TooBig);
    }
    // Check the whole buffer first so a bad one writes nothing.
    if !hv
        .domains
        .get(a.caller)?
        .ram
        .contains(GuestPhysAddr(ipa), len)
    {
        return Err(Error::BadAddress);
    }
    let mut buf = [0u8; CHUNK];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        hv.domains
            .get(a.caller)?
            .ram
            .read(hv.mem, GuestPhysAddr(ipa + done), &mut buf[..n])?;
        if hv.console_in.is_interactive(target) {
            hv.console.write_raw(&buf[..n]);
        } else {
            hv.console_write(target, &buf[..n]);
        }
        done += n as u64;
    }
    a.ret(1, len);
    Ok(Next::Resume)
}

pub(super) fn console_io<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    match Op::from_reg(a.arg(1))? {
        op @ (Op::Write | Op::WriteAs) => {
            // One call site for both, so the copy loop exists once.
            let (target, ipa, len) = if op == Op::WriteAs {
                if !hv.domains.get(a.caller)?.is_dom0() {
                    return Err(Error::PermissionDenied);
                }
                let target = DomainId::from_reg(a.arg(2))?;
                hv.domains.get(target)?;
                (target, a.arg(3), a.arg(4))
            } else {
                (a.caller, a.arg(2), a.arg(3))
            };
            write(hv, a, target, ipa, len)
        }
        Op::Read => {
            let (ipa, len) = (a.arg(2), a.arg(3));
            if len > READ_MAX {
                return Err(Error::TooBig);
            }
            let ram = &hv.domains.get(a.caller)?.ram;
            if !ram.contains(GuestPhysAddr(ipa), len) {
                return Err(Error::BadAddress);
            }
            let was_interactive = hv.console_in.is_interactive(a.caller);
            // At most one chunk per call: the rest stays buffered for the next.
            let mut buf = [0u8; CHUNK];
            let n = hv
                .console_in
                .read(a.caller, &mut buf[..(len as usize).min(CHUNK)]);
            if !was_interactive && hv.console_in.is_interactive(a.caller) {
                // Its output turns raw from now on: emit the buffered part
                // of a line first, so it does not come out after later text.
                hv.console_flush(a.caller);
            }
            hv.domains
                .get(a.caller)?
                .ram
                .write(hv.mem, GuestPhysAddr(ipa), &buf[..n])?;
            a.ret(1, n as u64);
            Ok(Next::Resume)
        }
        Op::ReadLog => {
            let (ipa, len, pos) = (a.arg(2), a.arg(3), a.arg(4));
            let d = hv.domains.get(a.caller)?;
            if !d.is_dom0() {
                return Err(Error::PermissionDenied);
            }
            if len > READ_MAX {
                return Err(Error::TooBig);
            }
            if !d.ram.contains(GuestPhysAddr(ipa), len) {
                return Err(Error::BadAddress);
            }
            // One chunk per call, like `read`: dom0 loops on `next`.
            let mut buf = [0u8; CHUNK];
            let got = crate::logger::read_log(pos, &mut buf[..(len as usize).min(CHUNK)]);
            d.ram
                .write(hv.mem, GuestPhysAddr(ipa), &buf[..got.copied])?;
            a.ret(1, got.copied as u64);
            a.ret(2, got.next);
            a.ret(3, got.oldest);
            Ok(Next::Resume)
        }
    }
}
