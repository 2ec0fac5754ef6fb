//! `evtchn_op` and `sched_op poll`: argument checks, then `crate::evtchn`.

use alloc::vec;
use alloc::vec::Vec;

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{Op, Port, Virq};
use tern_abi::sched::POLL_MAX;

use super::{Args, Next};
use crate::addr::{GuestPhysAddr, PAGE_SIZE};
use crate::domain::VcpuState;
use crate::hypervisor::{Hypervisor, PirqRequest};
use crate::physmem::{FrameSource, PhysMem};

/// Bytes per port number in a `poll` array.
const POLL_ENTRY: u64 = size_of::<u32>() as u64;

/// vCPU index `reg` of domain `dom`, or `NotFound`.
pub(super) fn vcpu_index<M: PhysMem, F: FrameSource>(
    hv: &Hypervisor<'_, M, F>,
    dom: DomainId,
    reg: u64,
) -> Result<usize, Error> {
    let n = hv.domains.get(dom)?.vcpus.len();
    match usize::try_from(reg) {
        Ok(v) if v < n => Ok(v),
        _ => Err(Error::NotFound),
    }
}

pub(super) fn evtchn_op<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    let op = Op::from_reg(a.arg(1))?;
    let me = a.caller;
    let mem: &dyn PhysMem = hv.mem;
    match op {
        Op::InitShared => {
            let ipa = GuestPhysAddr(a.arg(2));
            let ram = &hv.domains.get(me)?.ram;
            if !ipa.is_aligned(PAGE_SIZE) || !ram.contains(ipa, PAGE_SIZE) {
                return Err(Error::BadAddress);
            }
            // Chunks of RAM are page-aligned runs, so the page is contiguous.
            let pa = ram.translate(ipa).ok_or(Error::BadAddress)?;
            hv.events.init_shared(me, pa)?;
            let events = &hv.events;
            for (v, vc) in hv.domains.get_mut(me)?.vcpus.iter_mut().enumerate() {
                vc.upcall_word = events.upcall_word(me, v);
            }
        }
        Op::AllocUnbound => {
            let remote = DomainId::from_reg(a.arg(2))?;
            hv.domains.get(remote)?;
            let port = hv.events.alloc_unbound(mem, me, remote)?;
            a.ret(1, port.0.into());
        }
        Op::BindInterdomain => {
            let remote = DomainId::from_reg(a.arg(2))?;
            hv.domains.get(remote)?;
            let remote_port = Port::from_reg(a.arg(3))?;
            let port = hv.events.bind_interdomain(mem, me, remote, remote_port)?;
            a.ret(1, port.0.into());
        }
        Op::BindVirq => {
            let virq = Virq::from_reg(a.arg(2))?;
            let vcpu = vcpu_index(hv, me, a.arg(3))?;
            if virq == Virq::DomExc && !hv.is_dom0(me) {
                return Err(Error::PermissionDenied);
            }
            let port = hv.events.bind_virq(mem, me, virq, vcpu)?;
            a.ret(1, port.0.into());
        }
        Op::BindIpi => {
            let vcpu = vcpu_index(hv, me, a.arg(2))?;
            let port = hv.events.bind_ipi(mem, me, vcpu)?;
            a.ret(1, port.0.into());
        }
        Op::Send => hv.events.send(mem, me, Port::from_reg(a.arg(2))?)?,
        Op::Close => hv.events.close(mem, me, Port::from_reg(a.arg(2))?)?,
        Op::Unmask => hv.events.unmask(mem, me, Port::from_reg(a.arg(2))?)?,
        Op::Status => {
            let s = hv.events.status(me, Port::from_reg(a.arg(2))?);
            a.ret(1, s.state.raw().into());
            a.ret(2, s.vcpu as u64);
            a.ret(3, s.detail);
        }
        Op::BindVcpu => {
            let port = Port::from_reg(a.arg(2))?;
            let vcpu = vcpu_index(hv, me, a.arg(3))?;
            hv.events.bind_vcpu(me, port, vcpu)?;
        }
        // The arch layer recomputes the upcall IRQ's level from
        // `upcall_pending` on every entry, so the trap itself is the ack.
        Op::UpcallDone => {}
        Op::BindPirq => {
            if me != DomainId::DOM0 {
                return Err(Error::PermissionDenied);
            }
            let intid = u32::try_from(a.arg(2)).map_err(|_| Error::InvalidArgument)?;
            if !hv.dom0_irqs.contains(&intid) {
                return Err(Error::InvalidArgument);
            }
            let port = hv.events.bind_pirq(mem, intid)?;
            hv.pirq_requests.push(PirqRequest::Enable(intid));
            a.ret(1, port.0.into());
        }
        Op::PirqEoi => {
            if me != DomainId::DOM0 {
                return Err(Error::PermissionDenied);
            }
            let port = Port::from_reg(a.arg(2))?;
            let intid = hv.events.pirq_of(port).ok_or(Error::NotFound)?;
            hv.pirq_requests.push(PirqRequest::Eoi(intid));
        }
    }
    Ok(Next::Resume)
}

/// `sched_op poll`: x2 = IPA of `u32` ports, x3 = count, x4 = deadline.
pub(super) fn poll<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    let (ipa, count, deadline) = (a.arg(2), a.arg(3), a.arg(4));
    if count == 0 {
        return Err(Error::InvalidArgument);
    }
    if count > POLL_MAX {
        return Err(Error::TooBig);
    }
    if !ipa.is_multiple_of(POLL_ENTRY) {
        return Err(Error::BadAddress);
    }
    let mut raw = vec![0u8; (count * POLL_ENTRY) as usize];
    hv.domains
        .get(a.caller)?
        .ram
        .read(hv.mem, GuestPhysAddr(ipa), &mut raw)?;
    let ports = raw
        .chunks_exact(POLL_ENTRY as usize)
        .map(|b| Port::from_reg(u32::from_le_bytes([b[0], b[1], b[2], b[3]]).into()))
        .collect::<Result<Vec<Port>, Error>>()?;
    let mem: &dyn PhysMem = hv.mem;
    if hv.events.poll(mem, a.caller, a.vcpu, ports, deadline)? {
        let vc = &mut hv.domains.get_mut(a.caller)?.vcpus[a.vcpu];
        vc.state = VcpuState::Blocked;
        vc.polled = true;
        hv.block_vcpu((a.caller, a.vcpu));
        Ok(Next::Block)
    } else {
        Ok(Next::Resume)
    }
}
