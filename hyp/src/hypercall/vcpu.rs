//! `vcpu_op`, `time_op`, and the scheduling and wall-clock sub-operations of
//! `domctl` (`sched_get`, `sched_set`, `vcpu_affinity`, `vcpu_info`,
//! `set_wallclock`).

use tern_abi::Error;
use tern_abi::domctl::{
    DomainId, Op as DomctlOp, SCHED_WEIGHT_MAX, VcpuEntry, VcpuRunState, pack_state_cpu,
};
use tern_abi::time::{Op as TimeOp, TimeInfo};
use tern_abi::vcpu::Op;

use super::evtchn::vcpu_index;
use super::guest_io::read_in;
use super::{Args, Next};
use crate::addr::GuestPhysAddr;
use crate::domain::{VcpuState, loader};
use crate::evtchn::Notify;
use crate::evtchn::sched_ctl::{SchedControl, SchedParams};
use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};

/// Cap percentage per vCPU: 100 is one whole physical CPU.
const CAP_PER_VCPU: u64 = 100;

pub(super) fn vcpu_op<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    let op = Op::from_reg(a.arg(1))?;
    let me = a.caller;
    let v = vcpu_index(hv, me, a.arg(2))?;
    match op {
        Op::Up => {
            let e: VcpuEntry = read_in(hv, me, a.arg(3), a.arg(4), VcpuEntry::MIN_SIZE)?;
            let d = hv.domains.get_mut(me)?;
            d.check_entry(&e)?;
            // A vCPU downed from another one may still be on its CPU until
            // the kick switches it away: its context is in use there (the
            // exit path enters from it, the switch saves into it).
            let vc = &d.vcpus[v];
            if vc.state != VcpuState::Down || vc.on_cpu.is_some() {
                return Err(Error::InvalidState);
            }
            d.set_vcpu_entry(v, &e, loader::SCTLR_EL1_RESET);
            hv.events.notify(Notify::new(me, v));
            Ok(Next::Resume)
        }
        Op::Down => {
            let d = hv.domains.get_mut(me)?;
            if d.vcpus[v].state == VcpuState::Down {
                return Err(Error::InvalidState);
            }
            d.vcpus[v].state = VcpuState::Down;
            hv.events.vcpu_down(me, v);
            hv.block_vcpu((me, v));
            if v == a.vcpu {
                // Not runnable any more: the caller is switched away and
                // only `up` starts it again, afresh.
                return Ok(Next::Block);
            }
            // It may be running elsewhere: the arch layer kicks it.
            hv.events.notify(Notify::new(me, v));
            Ok(Next::Resume)
        }
        Op::IsUp => {
            let up = hv.domains.get(me)?.vcpus[v].state != VcpuState::Down;
            a.ret(1, up.into());
            Ok(Next::Resume)
        }
    }
}

pub(super) fn time_op<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    match TimeOp::from_reg(a.arg(1))? {
        TimeOp::SetTimer => hv.events.set_timer(a.caller, a.vcpu, a.arg(2)),
        TimeOp::InitTimePage => {
            let ipa = GuestPhysAddr(a.arg(2));
            let ram = &hv.domains.get(a.caller)?.ram;
            // 64-byte aligned: the page never crosses a frame boundary.
            if !ipa.is_aligned(TimeInfo::SIZE) || !ram.contains(ipa, TimeInfo::SIZE) {
                return Err(Error::BadAddress);
            }
            let pa = ram.translate(ipa).ok_or(Error::BadAddress)?;
            let mem: &dyn PhysMem = hv.mem;
            hv.events.init_time_page(mem, a.caller, pa, hv.ticks_per_s);
        }
    }
    Ok(Next::Resume)
}

/// `domctl set_wallclock` (no target domain).
pub(super) fn set_wallclock<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<(), Error> {
    let mem: &dyn PhysMem = hv.mem;
    hv.events
        .set_wallclock(mem, a.caller, a.arg(2), a.arg(3), a.arg(4), hv.ticks_per_s)
}

/// `domctl sched_get`, `sched_set`, `vcpu_affinity` on `target` (which
/// exists).
pub(super) fn sched_control<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
    op: DomctlOp,
    target: DomainId,
) -> Result<(), Error> {
    match op {
        DomctlOp::SchedGet => {
            let p = SchedControl::params(&hv.sched, target);
            a.ret(1, p.weight.into());
            a.ret(2, p.cap.into());
        }
        DomctlOp::SchedSet => {
            let (weight, cap) = (a.arg(3), a.arg(4));
            let vcpus = hv.domains.get(target)?.vcpus.len() as u64;
            if !(1..=SCHED_WEIGHT_MAX).contains(&weight) || cap > CAP_PER_VCPU * vcpus {
                return Err(Error::InvalidArgument);
            }
            let params = SchedParams {
                weight: weight as u32,
                cap: cap as u32,
            };
            SchedControl::set_params(&mut hv.sched, target, params);
        }
        DomctlOp::VcpuAffinity => {
            let v = vcpu_index(hv, target, a.arg(3))?;
            let cpus = a.arg(4);
            let online = match hv.cpus_online {
                n @ 0..64 => (1u64 << n) - 1,
                _ => u64::MAX,
            };
            if cpus & online == 0 {
                return Err(Error::InvalidArgument);
            }
            let old = SchedControl::affinity(&hv.sched, target, v);
            SchedControl::set_affinity(&mut hv.sched, target, v, cpus);
            a.ret(1, old);
        }
        DomctlOp::VcpuInfo => {
            let v = vcpu_index(hv, target, a.arg(3))?;
            let d = hv.domains.get(target)?;
            let vcpu = &d.vcpus[v];
            let state = match vcpu.state {
                VcpuState::Down => VcpuRunState::Down,
                _ if vcpu.on_cpu.is_some() => VcpuRunState::Running,
                VcpuState::Blocked => VcpuRunState::Blocked,
                VcpuState::Runnable if d.vcpu_runnable(v) => VcpuRunState::Runnable,
                VcpuState::Runnable => VcpuRunState::Paused,
            };
            let ticks = hv.sched.vcpu_time((target, v), (hv.clock)()).unwrap_or(0);
            a.ret(1, pack_state_cpu(state, vcpu.on_cpu.map(|c| c as u32)));
            a.ret(2, tern_abi::time::ticks_to_ns(ticks, hv.ticks_per_s.max(1)));
            a.ret(3, SchedControl::affinity(&hv.sched, target, v));
        }
        _ => unreachable!("only scheduling sub-operations come here"),
    }
    Ok(())
}
