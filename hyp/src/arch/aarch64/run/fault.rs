//! A trap's rarer outcomes: a guest's fault (its domain crashes), a trap
//! that should not have come (the hypervisor stops), a write to a trapped
//! stage-1 control done on the guest's behalf, and dom0's end (the machine
//! follows).

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HPFAR_EL2, Readable};
use tern_abi::domctl::DomainId;
use tern_abi::sched::ShutdownReason;

use super::State;
use crate::addr::PAGE_SIZE;
use crate::arch::aarch64::vectors::{TrapFrame, ec_name};
use crate::arch::aarch64::{halt_this_cpu, trap, vmctl};
use crate::domain::Lifecycle;
use crate::sched::VcpuRef;
use crate::vcpu::GuestRegs;

/// [`vmctl::write`] for `(dom, v)`, the vCPU on this CPU, whose
/// general registers are `x`.
pub(super) fn vm_control_write(st: &mut State, (dom, v): VcpuRef, iss: u64, x: &[u64; 31]) -> bool {
    let value = vmctl::value(iss, x);
    st.hv
        .domains
        .get_mut(dom)
        .ok()
        .and_then(|d| d.vcpus.get_mut(v))
        .is_some_and(|vc| vmctl::write(iss, value, &mut vc.ctx.el1))
}

/// [`trap::unexpected_guest`], with the syndrome and fault address
/// it reports.
#[cold]
pub(super) fn unexpected_guest(frame: &GuestRegs, esr: u64) -> ! {
    trap::unexpected_guest(&TrapFrame::of_guest(frame, esr, FAR_EL2.get()))
}

/// Crashes `dom` for the fault with syndrome `esr` (class `ec`) at `pc`.
pub(super) fn crash(
    st: &mut State,
    dom: DomainId,
    pc: u64,
    esr: u64,
    ec: Option<ESR_EL2::EC::Value>,
) {
    let far = FAR_EL2.get();
    // For stage-2 aborts HPFAR_EL2 holds the faulting IPA's page (D13.2.50).
    let ipa = HPFAR_EL2.read(HPFAR_EL2::FIPA) << 12 | (far & (PAGE_SIZE - 1));
    let class = ec_name(ec);
    st.hv.crash_domain(
        dom,
        format_args!("{class} at pc {pc:#x}, far {far:#x}, ipa {ipa:#x} (esr {esr:#x})"),
    );
}

/// dom0 ended: the machine follows (poweroff, reboot), or stops if it crashed.
pub(super) fn dom0_stopped(st: &State) {
    let life = st.hv.domains.get(DomainId::DOM0).map(|d| d.life);
    match life {
        Ok(Lifecycle::Shutdown(ShutdownReason::Poweroff)) => {
            log::info!("dom0 powered off: system off");
            let e = crate::power::system_off();
            log::error!("SYSTEM_OFF failed: {e:?}");
        }
        Ok(Lifecycle::Shutdown(ShutdownReason::Reboot)) => {
            log::info!("dom0 rebooted: system reset");
            let e = crate::power::system_reset();
            log::error!("SYSTEM_RESET failed: {e:?}");
        }
        Ok(life) => log::error!("dom0 stopped ({}); the system cannot go on", life.label()),
        Err(_) => log::error!("dom0 is gone; the system cannot go on"),
    }
    halt_this_cpu()
}
