//! Copying structures and names in and out of the caller's RAM, with the rules
//! of `specs/hypercalls.md` ("Pointers", "Structures sized by the caller").

use alloc::vec;

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use zerocopy::{FromBytes, IntoBytes};

use crate::addr::GuestPhysAddr;
use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};

/// Structures passed by address must be aligned to this.
const STRUCT_ALIGN: u64 = 8;

/// Reads an IN structure of `size` bytes at `ipa` in `caller`'s RAM. Fields past
/// `size` read as zero; bytes past the known structure must be zero.
pub fn read_in<T: FromBytes + IntoBytes, M: PhysMem, F: FrameSource>(
    hv: &Hypervisor<'_, M, F>,
    caller: DomainId,
    ipa: u64,
    size: u64,
    min_size: usize,
) -> Result<T, Error> {
    let ram = &hv.domains.get(caller)?.ram;
    if !ram.contains(GuestPhysAddr(ipa), size) || !ipa.is_multiple_of(STRUCT_ALIGN) {
        return Err(Error::BadAddress);
    }
    if size < min_size as u64 {
        return Err(Error::InvalidArgument);
    }
    let mut v = T::new_zeroed();
    let known = size_of::<T>() as u64;
    let n = size.min(known) as usize;
    ram.read(hv.mem, GuestPhysAddr(ipa), &mut v.as_mut_bytes()[..n])?;
    if size > known {
        let mut extra = vec![0u8; (size - known) as usize];
        ram.read(hv.mem, GuestPhysAddr(ipa + known), &mut extra)?;
        if extra.iter().any(|&b| b != 0) {
            return Err(Error::InvalidArgument);
        }
    }
    Ok(v)
}

/// Checks that an OUT structure of `size` bytes fits at `ipa` in `caller`'s RAM.
pub fn check_out<M: PhysMem, F: FrameSource>(
    hv: &Hypervisor<'_, M, F>,
    caller: DomainId,
    ipa: u64,
    size: u64,
    min_size: usize,
) -> Result<(), Error> {
    let ram = &hv.domains.get(caller)?.ram;
    if !ram.contains(GuestPhysAddr(ipa), size) || !ipa.is_multiple_of(STRUCT_ALIGN) {
        return Err(Error::BadAddress);
    }
    if size < min_size as u64 {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

/// Writes an OUT structure into a `size`-byte slot at `ipa` checked with
/// [`check_out`]: the fields that fit, then zeroes.
pub fn write_out<T: IntoBytes + zerocopy::Immutable, M: PhysMem, F: FrameSource>(
    hv: &Hypervisor<'_, M, F>,
    caller: DomainId,
    ipa: u64,
    size: u64,
    v: &T,
) -> Result<(), Error> {
    let ram = &hv.domains.get(caller)?.ram;
    let bytes = v.as_bytes();
    let n = (size as usize).min(bytes.len());
    ram.write(hv.mem, GuestPhysAddr(ipa), &bytes[..n])?;
    ram.zero(hv.mem, GuestPhysAddr(ipa + n as u64), size - n as u64)
}

/// Reads a `(address, length)` name of at most `max` bytes into `buf`.
pub fn read_name<'b, M: PhysMem, F: FrameSource>(
    hv: &Hypervisor<'_, M, F>,
    caller: DomainId,
    ipa: u64,
    len: u64,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Error> {
    if len == 0 || len > buf.len() as u64 {
        return Err(Error::InvalidArgument);
    }
    let out = &mut buf[..len as usize];
    hv.domains
        .get(caller)?
        .ram
        .read(hv.mem, GuestPhysAddr(ipa), out)?;
    Ok(out)
}
