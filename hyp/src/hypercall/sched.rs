//! `sched_op`: yield, block, shutdown.

use tern_abi::Error;
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
        Op::Yield => Ok(Next::Yield),
        Op::Block => {
            hv.domains.get_mut(a.caller)?.vcpus[a.vcpu].state = VcpuState::Blocked;
            Ok(Next::Block)
        }
        Op::Shutdown => {
            let reason = ShutdownReason::from_reg(a.arg(2))?;
            hv.shutdown_domain(a.caller, reason);
            Ok(Next::Stop)
        }
    }
}
