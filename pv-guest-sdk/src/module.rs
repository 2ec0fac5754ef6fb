//! `module_op` wrappers: the boot modules, for dom0 (other domains get
//! [`Error::PermissionDenied`]). Part of the control ABI.

use crate::hypercall::{call, ipa_of_mut};
use tern_abi::module::{ModuleInfo, Op, READ_MAX};
use tern_abi::{Call, Error, strings};
use zerocopy::FromZeros;

/// Number of boot modules.
pub fn count() -> Result<u32, Error> {
    let [n, _, _] = call(Call::ModuleOp, Op::Count.raw(), [0; 5])?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Describes module `index`.
pub fn info(index: u32) -> Result<ModuleInfo, Error> {
    let mut info = ModuleInfo::new_zeroed();
    // `info` is borrowed mutably for the call: the hypervisor writes it.
    let ipa = ipa_of_mut(&mut info);
    call(
        Call::ModuleOp,
        Op::GetInfo.raw(),
        [u64::from(index), ipa, size_of::<ModuleInfo>() as u64, 0, 0],
    )?;
    Ok(info)
}

/// The name of a module, as text (`"?"` if it is not UTF-8).
pub fn name(info: &ModuleInfo) -> &str {
    strings::field_str(&info.name).unwrap_or("?")
}

/// Copies bytes of module `index` from `offset` into `buf` (several calls if
/// `buf` is longer than [`READ_MAX`]). Returns the number of bytes copied,
/// less than `buf.len()` only at the module's end.
pub fn read(index: u32, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
    let mut done = 0;
    while done < buf.len() {
        let chunk = &mut buf[done..];
        let len = chunk.len().min(READ_MAX as usize);
        // `chunk` is borrowed mutably for the call: the hypervisor writes it.
        let [n, _, _] = call(
            Call::ModuleOp,
            Op::Read.raw(),
            [
                u64::from(index),
                offset + done as u64,
                ipa_of_mut(&mut chunk[..len]),
                len as u64,
                0,
            ],
        )?;
        let n = (n as usize).min(len);
        done += n;
        if n < len {
            break;
        }
    }
    Ok(done)
}
