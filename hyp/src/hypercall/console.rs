//! `console_io`: early console output, line-buffered per domain.

use tern_abi::Error;
use tern_abi::console::{Op, WRITE_MAX};

use super::{Args, Next};
use crate::addr::GuestPhysAddr;
use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};

/// Bytes copied out of the guest per step: keeps the stack frame small.
const CHUNK: usize = 256;

pub(super) fn console_io<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    match Op::from_reg(a.arg(1))? {
        Op::Write => {
            let (ipa, len) = (a.arg(2), a.arg(3));
            if len > WRITE_MAX {
                return Err(Error::TooBig);
            }
            let d = hv.domains.get(a.caller)?;
            // Check the whole buffer first so a bad one writes nothing.
            if !d.ram.contains(GuestPhysAddr(ipa), len) {
                return Err(Error::BadAddress);
            }
            let mut buf = [0u8; CHUNK];
            let mut done = 0;
            while done < len {
                let n = (len - done).min(CHUNK as u64) as usize;
                hv.domains.get(a.caller)?.ram.read(
                    hv.mem,
                    GuestPhysAddr(ipa + done),
                    &mut buf[..n],
                )?;
                hv.console_write(a.caller, &buf[..n]);
                done += n as u64;
            }
            a.ret(1, len);
            Ok(Next::Resume)
        }
    }
}
