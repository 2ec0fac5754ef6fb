//! `module_op` (dom0): the boot modules from the initrd.

use tern_abi::Error;
use tern_abi::module::{ModuleInfo, NAME_MAX, Op, READ_MAX};
use tern_abi::strings::set_field;

use super::guest_io::{check_out, write_out};
use super::{Args, Next};
use crate::addr::GuestPhysAddr;
use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};

pub(super) fn module_op<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    match Op::from_reg(a.arg(1))? {
        Op::Count => a.ret(1, hv.modules.len() as u64),
        Op::GetInfo => {
            let m = *hv.modules.get(a.arg(2) as usize).ok_or(Error::NotFound)?;
            check_out(hv, a.caller, a.arg(3), a.arg(4), ModuleInfo::MIN_SIZE)?;
            let mut info = ModuleInfo {
                name: [0; 64],
                size: m.bytes.len() as u64,
            };
            // Longer names are cut (`ModuleInfo::name`).
            let name = m.name.as_bytes();
            set_field(&mut info.name, &name[..name.len().min(NAME_MAX)])
                .map_err(|_| Error::InvalidState)?;
            write_out(hv, a.caller, a.arg(3), a.arg(4), &info)?;
        }
        Op::Read => {
            let m = *hv.modules.get(a.arg(2) as usize).ok_or(Error::NotFound)?;
            let (offset, ipa, len) = (a.arg(3), a.arg(4), a.arg(5));
            if len > READ_MAX {
                return Err(Error::TooBig);
            }
            let ram = &hv.domains.get(a.caller)?.ram;
            if !ram.contains(GuestPhysAddr(ipa), len) {
                return Err(Error::BadAddress);
            }
            let start = offset.min(m.bytes.len() as u64) as usize;
            let n = (len as usize).min(m.bytes.len() - start);
            ram.write(hv.mem, GuestPhysAddr(ipa), &m.bytes[start..start + n])?;
            a.ret(1, n as u64);
        }
    }
    Ok(Next::Resume)
}
