//! `grant_op`: argument checks, then `crate::grant`.

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::grant::{
    COPY_BATCH_MAX, CopyFlags, CopyPtr, GRANT_TABLE_MAX_PAGES, GrantCopy, GrantRef, MapFlags, Op,
};
use zerocopy::IntoBytes;

use super::{Args, Next};
use crate::addr::GuestPhysAddr;
use crate::grant::{CopyEnd, CopyOp};
use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};

/// Alignment of the `GrantCopy` array.
const COPY_ALIGN: u64 = 8;
/// Byte offset of `status` in a `GrantCopy`.
const STATUS_OFFSET: u64 = core::mem::offset_of!(GrantCopy, status) as u64;

pub(super) fn grant_op<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    let op = Op::from_reg(a.arg(1))?;
    let me = a.caller;
    let mem: &dyn PhysMem = hv.mem;
    match op {
        Op::SetupTable => {
            hv.grants
                .setup_table(&hv.domains, me, GuestPhysAddr(a.arg(2)), a.arg(3))?;
        }
        Op::QuerySize => {
            a.ret(1, hv.grants.table_pages(me));
            a.ret(2, GRANT_TABLE_MAX_PAGES);
        }
        Op::Map => {
            let granter = DomainId::from_reg(a.arg(2))?;
            let gref = GrantRef::from_reg(a.arg(3))?;
            let flags = MapFlags::from_bits(a.arg(4)).ok_or(Error::InvalidArgument)?;
            let writable = !flags.contains(MapFlags::READONLY);
            let (handle, ipa, pa) = hv.grants.map(
                &mut hv.domains,
                &mut hv.frames,
                mem,
                me,
                granter,
                gref,
                writable,
            )?;
            a.ret(1, handle);
            a.ret(2, ipa.0);
            // dom0 drives the devices: it may point DMA at the frame.
            let dom0 = hv.domains.get(me).is_ok_and(|d| d.is_dom0());
            a.ret(3, if dom0 { pa.0 } else { 0 });
        }
        Op::Unmap => {
            hv.grants
                .unmap(&mut hv.domains, &mut hv.frames, mem, me, a.arg(2))?;
        }
        Op::Copy => {
            let failed = copy(hv, me, a.arg(2), a.arg(3))?;
            a.ret(1, failed);
        }
    }
    Ok(Next::Resume)
}

/// Decodes one end of a copy.
fn end(p: &CopyPtr, is_grant: bool) -> CopyEnd {
    if is_grant {
        CopyEnd::Grant {
            granter: DomainId(p.domid),
            gref: GrantRef(p.gref),
            offset: p.offset,
        }
    } else {
        CopyEnd::Own(GuestPhysAddr(p.offset))
    }
}

/// `copy`: runs the batch at `ipa`, writes each status, returns how many
/// failed.
fn copy<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    me: DomainId,
    ipa: u64,
    count: u64,
) -> Result<u64, Error> {
    if count == 0 {
        return Err(Error::InvalidArgument);
    }
    if count > COPY_BATCH_MAX {
        return Err(Error::TooBig);
    }
    let size = size_of::<GrantCopy>() as u64;
    if !ipa.is_multiple_of(COPY_ALIGN) {
        return Err(Error::BadAddress);
    }
    let mem: &dyn PhysMem = hv.mem;
    let ram = &hv.domains.get(me)?.ram;
    if !ram.contains(GuestPhysAddr(ipa), count * size) {
        return Err(Error::BadAddress);
    }
    let mut failed = 0;
    for i in 0..count {
        // Each operation is read just before it runs (specs/hypercalls.md):
        // one that copies into the array changes those after it.
        let at = ipa + i * size;
        let mut c = GrantCopy::default();
        ram.read(mem, GuestPhysAddr(at), c.as_mut_bytes())?;
        let status = match CopyFlags::from_bits(c.flags) {
            None => Err(Error::InvalidArgument),
            Some(f) => {
                let op = CopyOp {
                    src: end(&c.src, f.contains(CopyFlags::SRC_GREF)),
                    dst: end(&c.dst, f.contains(CopyFlags::DST_GREF)),
                    len: c.len.into(),
                };
                hv.grants.copy(&hv.domains, mem, me, &op)
            }
        };
        let code: i32 = match status {
            Ok(()) => 0,
            Err(e) => {
                failed += 1;
                e.raw() as i32
            }
        };
        // Inside the array checked above, and RAM does not move.
        ram.write(mem, GuestPhysAddr(at + STATUS_OFFSET), code.as_bytes())?;
    }
    Ok(failed)
}
