//! `domctl` wrappers: domain control, for dom0 (other domains get
//! [`Error::PermissionDenied`]). Part of the control ABI.

use crate::hypercall::{call, ipa_of, ipa_of_mut};
use tern_abi::domctl::{CreateDomain, DomainId, DomainInfo, Op, VcpuEntry};
use tern_abi::{Call, Error};
use zerocopy::FromZeros;

fn domctl(op: Op, args: [u64; 5]) -> Result<[u64; 3], Error> {
    call(Call::Domctl, op.raw(), args)
}

fn dom(id: DomainId) -> u64 {
    u64::from(id.0)
}

/// Creates a paused domain with zeroed RAM and no image; returns its id.
pub fn create(config: &CreateDomain) -> Result<DomainId, Error> {
    let [id, _, _] = domctl(
        Op::Create,
        [ipa_of(config), size_of_val(config) as u64, 0, 0, 0],
    )?;
    DomainId::from_reg(id)
}

/// Sets the most RAM `domain` may hold, in pages.
pub fn set_max_mem(domain: DomainId, pages: u64) -> Result<(), Error> {
    domctl(Op::SetMaxMem, [dom(domain), pages, 0, 0, 0]).map(|_| ())
}

/// Loads the ELF boot module called `module` into `domain`; returns the entry
/// point (IPA).
pub fn load_image_from_module(domain: DomainId, module: &str) -> Result<u64, Error> {
    let name = module.as_bytes();
    let [entry, _, _] = domctl(
        Op::LoadImageFromModule,
        [dom(domain), ipa_of(name), name.len() as u64, 0, 0],
    )?;
    Ok(entry)
}

/// Loads an ELF image held in this domain's RAM into `domain`; returns the
/// entry point (IPA).
pub fn load_image_from_memory(domain: DomainId, image: &[u8]) -> Result<u64, Error> {
    let [entry, _, _] = domctl(
        Op::LoadImageFromMemory,
        [dom(domain), ipa_of(image), image.len() as u64, 0, 0],
    )?;
    Ok(entry)
}

/// Sets the entry state of vCPU `vcpu` of a paused `domain`.
pub fn set_vcpu_context(domain: DomainId, vcpu: u32, entry: &VcpuEntry) -> Result<(), Error> {
    domctl(
        Op::SetVcpuContext,
        [
            dom(domain),
            u64::from(vcpu),
            ipa_of(entry),
            size_of_val(entry) as u64,
            0,
        ],
    )
    .map(|_| ())
}

/// Lets a paused domain run.
pub fn unpause(domain: DomainId) -> Result<(), Error> {
    domctl(Op::Unpause, [dom(domain), 0, 0, 0, 0]).map(|_| ())
}

/// Stops a domain's vCPUs until [`unpause`].
pub fn pause(domain: DomainId) -> Result<(), Error> {
    domctl(Op::Pause, [dom(domain), 0, 0, 0, 0]).map(|_| ())
}

/// Destroys a domain and frees its memory.
///
/// A domain whose vCPUs are still on CPUs answers `Busy` while the hypervisor
/// takes them off; this retries (yielding) until it is gone.
pub fn destroy(domain: DomainId) -> Result<(), Error> {
    loop {
        match domctl(Op::Destroy, [dom(domain), 0, 0, 0, 0]) {
            Err(Error::Busy) => crate::yield_now(),
            r => return r.map(|_| ()),
        }
    }
}

/// Describes one domain.
pub fn get_info(domain: DomainId) -> Result<DomainInfo, Error> {
    let mut info = DomainInfo::new_zeroed();
    // `info` is borrowed mutably for the call: the hypervisor writes it.
    let ipa = ipa_of_mut(&mut info);
    domctl(
        Op::GetInfo,
        [dom(domain), ipa, size_of::<DomainInfo>() as u64, 0, 0],
    )?;
    Ok(info)
}

/// Fills `out` with the domains whose id is `>= first`, in id order.
/// Returns `(written, total)`: `total > written` means call again from the
/// last id written + 1.
pub fn list(first: DomainId, out: &mut [DomainInfo]) -> Result<(usize, u64), Error> {
    let [written, total, _] = domctl(
        Op::List,
        [
            ipa_of_mut(out),
            out.len() as u64,
            size_of::<DomainInfo>() as u64,
            dom(first),
            0,
        ],
    )?;
    Ok((written.min(out.len() as u64) as usize, total))
}

/// A domain's scheduling parameters (`sched_get` / `sched_set`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedParams {
    /// Share of contended CPU time, relative to other domains' weights
    /// (`1..=tern_abi::domctl::SCHED_WEIGHT_MAX`).
    pub weight: u64,
    /// Ceiling in percent of one CPU, even when CPUs idle; 0 for none.
    pub cap: u64,
}

/// Reads `domain`'s weight and cap.
pub fn sched_get(domain: DomainId) -> Result<SchedParams, Error> {
    let [weight, cap, _] = domctl(Op::SchedGet, [dom(domain), 0, 0, 0, 0])?;
    Ok(SchedParams { weight, cap })
}

/// Sets `domain`'s weight and cap (`InvalidArgument` if out of range).
pub fn sched_set(domain: DomainId, params: SchedParams) -> Result<(), Error> {
    domctl(Op::SchedSet, [dom(domain), params.weight, params.cap, 0, 0]).map(|_| ())
}

/// Lets vCPU `vcpu` of `domain` run only on the physical CPUs whose bits are
/// set in `cpus`; returns the mask in force before.
pub fn vcpu_affinity(domain: DomainId, vcpu: u32, cpus: u64) -> Result<u64, Error> {
    let [old, _, _] = domctl(Op::VcpuAffinity, [dom(domain), u64::from(vcpu), cpus, 0, 0])?;
    Ok(old)
}

/// Tells `domain` (created, not yet run) where its configuration store is:
/// `gref` in `server`'s grant table and `server`'s unbound `port`. The
/// values appear in its start-info page ([`crate::start_info::StoreRef`]).
pub fn set_store(domain: DomainId, server: DomainId, gref: u32, port: u32) -> Result<(), Error> {
    let args = [dom(domain), dom(server), gref.into(), port.into(), 0];
    domctl(Op::SetStore, args).map(|_| ())
}

/// One vCPU as `vcpu_info` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInfo {
    /// What it is doing.
    pub state: tern_abi::domctl::VcpuRunState,
    /// The physical CPU it is on, if any.
    pub cpu: Option<u32>,
    /// CPU time used, in nanoseconds.
    pub time_ns: u64,
    /// The physical CPUs it may run on (bit n = CPU n).
    pub affinity: u64,
}

/// Describes vCPU `vcpu` of `domain` (`NotFound` past its last vCPU).
pub fn vcpu_info(domain: DomainId, vcpu: u32) -> Result<VcpuInfo, Error> {
    let [state_cpu, time_ns, affinity] =
        domctl(Op::VcpuInfo, [dom(domain), u64::from(vcpu), 0, 0, 0])?;
    let (state, cpu) = tern_abi::domctl::unpack_state_cpu(state_cpu);
    Ok(VcpuInfo {
        state: tern_abi::domctl::VcpuRunState::from_reg(state)?,
        cpu,
        time_ns,
        affinity,
    })
}

/// The machine's memory and CPUs, as `physinfo` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysInfo {
    /// Pages the hypervisor manages for domains.
    pub total_pages: u64,
    /// Pages no domain holds now.
    pub free_pages: u64,
    /// Physical CPUs online.
    pub cpus: u64,
}

/// Describes the machine's memory and CPUs.
pub fn physinfo() -> Result<PhysInfo, Error> {
    let [total_pages, free_pages, cpus] = domctl(Op::Physinfo, [0; 5])?;
    Ok(PhysInfo {
        total_pages,
        free_pages,
        cpus,
    })
}
