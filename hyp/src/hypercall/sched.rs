//! `sched_op`: yield, block, shutdown, poll, send_block.

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::sched::{Op, ShutdownReason};

use super::{Args, Next};
use crate::domain::VcpuState;
use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};

pub(super) fn sched_op<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    match Op::from_reg(a.arg(1))? {
        // `hot_call` takes every yield, block and send_block before the
        // table: these arms are for completeness.
        Op::Yield => {
            hv.yield_vcpu((a.caller, a.vcpu));
            Ok(Next::Yield)
        }
        Op::Block => block(hv, a.caller, a.vcpu, false, false, false),
        Op::Shutdown => {
            let reason = ShutdownReason::from_reg(a.arg(2))?;
            hv.shutdown_domain(a.caller, reason);
            Ok(Next::Stop)
        }
        Op::Poll => super::evtchn::poll(hv, a),
        Op::SendBlock => {
            let port = tern_abi::evtchn::Port::from_reg(a.arg(2))?;
            hv.events.send(hv.mem, a.caller, port)?;
            block(hv, a.caller, a.vcpu, false, false, false)
        }
        // Never hands a port over from here (`x1` = 0 is always a valid
        // answer): `hot_call` takes these.
        Op::SendWait => {
            let port = tern_abi::evtchn::Port::from_reg(a.arg(2))?;
            hv.events.send(hv.mem, a.caller, port)?;
            block(hv, a.caller, a.vcpu, false, false, false)
        }
    }
}

/// `sched_op block` of `caller`'s vCPU `vcpu` (called straight from
/// `hot_call`, the round trip's fast path); `count`: counts the call in
/// `DomainInfo::hypercalls` with its lookup of the caller. `direct`: the
/// vCPU waits in `send_wait` and may take the event that wakes it in `x1`
/// ([`crate::domain::Vcpu::direct_wait`]); if it does not block after all,
/// that wait ends here. `switching`: the
/// caller's CPU deschedules the vCPU in this same trap, not runnable, which
/// does all `Scheduler::block` does to a running vCPU (it stops being awake
/// and loses its boost): the scheduler is not told separately.
pub(super) fn block<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    caller: DomainId,
    vcpu: usize,
    count: bool,
    direct: bool,
    switching: bool,
) -> Result<Next, Error> {
    // The round trip's case, with no call (so no registers to save): the
    // CPU switches, no guest timer latch is set anywhere, and the caller's
    // vCPU exists. What `block_general` does then.
    let mem: &dyn PhysMem = hv.mem;
    if switching
        && !hv.events.timer_latched()
        && let Ok(d) = hv.domains.get_mut(caller)
        && let Some(vc) = d.vcpus.get_mut(vcpu)
    {
        let next = if vc.upcall_word.is_some_and(|pa| mem.load_u64(pa) != 0) {
            if direct {
                hv.events.end_direct(caller, vcpu);
            }
            Next::Resume
        } else {
            vc.state = VcpuState::Blocked;
            vc.direct_wait = direct;
            Next::Block
        };
        d.hypercalls += u64::from(count);
        return Ok(next);
    }
    block_general(hv, caller, vcpu, count, direct, switching)
}

/// [`block`], every case.
#[inline(never)]
fn block_general<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    caller: DomainId,
    vcpu: usize,
    count: bool,
    direct: bool,
    switching: bool,
) -> Result<Next, Error> {
    // An upcall already pending ends the block at once; checked here,
    // under the hypervisor lock, so an event cannot slip in between.
    // So does a guest timer that fired since it last blocked (set in
    // one call, blocked on in the next: the expiry may fall between).
    let timer_fired = hv.events.take_timer_fired(caller, vcpu);
    let mem: &dyn PhysMem = hv.mem;
    let d = hv.domains.get_mut(caller)?;
    d.hypercalls += u64::from(count);
    let vc = &mut d.vcpus[vcpu];
    if timer_fired || vc.upcall_word.is_some_and(|pa| mem.load_u64(pa) != 0) {
        if direct {
            hv.events.end_direct(caller, vcpu);
        }
        return Ok(Next::Resume);
    }
    vc.state = VcpuState::Blocked;
    vc.direct_wait = direct;
    if !switching {
        hv.block_vcpu((caller, vcpu));
    }
    Ok(Next::Block)
}
