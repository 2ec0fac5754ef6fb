//! `domctl` (dom0): domain control.

use alloc::vec::Vec;

use tern_abi::Error;
use tern_abi::domctl::{CreateDomain, DomainFlags, DomainId, DomainInfo, Op, VcpuEntry};
use tern_abi::module::NAME_MAX;
use tern_abi::strings::{field_bytes, is_valid_cmdline_field, is_valid_name_field};

use super::guest_io::{check_out, read_in, read_name, write_out};
use super::{Args, Next};
use crate::addr::GuestPhysAddr;
use crate::domain::{DomainConfig, Lifecycle, loader};
use crate::hypervisor::Hypervisor;
use crate::physmem::{FrameSource, PhysMem};

/// Largest image `load_image_from_memory` copies (it is staged in the heap).
const IMAGE_FROM_MEMORY_MAX: u64 = 16 << 20;

pub(super) fn domctl<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<Next, Error> {
    let op = Op::from_reg(a.arg(1))?;
    match op {
        Op::Create => create(hv, a),
        Op::List => list(hv, a),
        Op::Physinfo => {
            a.ret(1, hv.frames.total_page_count());
            a.ret(2, hv.frames.free_page_count());
            a.ret(3, hv.cpus_online.into());
            Ok(())
        }
        Op::SetWallclock => super::vcpu::set_wallclock(hv, a),
        _ => {
            let target = DomainId::from_reg(a.arg(2))?;
            hv.domains.get(target)?;
            match op {
                Op::SetMaxMem => set_max_mem(hv, target, a.arg(3)),
                Op::LoadImageFromModule => load_from_module(hv, a, target),
                Op::LoadImageFromMemory => load_from_memory(hv, a, target),
                Op::SetVcpuContext => set_vcpu_context(hv, a, target),
                Op::Unpause => unpause(hv, target),
                Op::Pause => pause(hv, target),
                Op::Destroy => {
                    if target == DomainId::DOM0 {
                        return Err(Error::PermissionDenied);
                    }
                    hv.destroy_domain(target)
                }
                Op::GetInfo => {
                    check_out(hv, a.caller, a.arg(3), a.arg(4), DomainInfo::MIN_SIZE)?;
                    let info = info_now(hv, target)?;
                    write_out(hv, a.caller, a.arg(3), a.arg(4), &info)
                }
                Op::SchedGet | Op::SchedSet | Op::VcpuAffinity | Op::VcpuInfo => {
                    super::vcpu::sched_control(hv, a, op, target)
                }
                Op::SetStore => set_store(hv, a, target),
                Op::Create | Op::List | Op::Physinfo | Op::SetWallclock => {
                    unreachable!("handled above")
                }
            }
        }
    }?;
    Ok(Next::Resume)
}

fn create<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<(), Error> {
    let c: CreateDomain = read_in(hv, a.caller, a.arg(2), a.arg(3), CreateDomain::MIN_SIZE)?;
    if !is_valid_name_field(&c.name) || !is_valid_cmdline_field(&c.cmdline) || c.reserved0 != 0 {
        return Err(Error::InvalidArgument);
    }
    let cfg = DomainConfig {
        name: field_bytes(&c.name),
        pages: c.memory_pages,
        vcpus: usize::try_from(c.vcpus).map_err(|_| Error::TooBig)?,
        cmdline: field_bytes(&c.cmdline),
        flags: DomainFlags::from_bits_retain(0),
    };
    let id = hv.domains.create(&cfg, &mut hv.frames, hv.mem)?;
    hv.domain_created(id);
    log::info!(
        "domain {} ({}) created: {} pages, {} vCPUs",
        hv.domains.get(id)?.name(),
        id.0,
        cfg.pages,
        cfg.vcpus
    );
    a.ret(1, id.0.into());
    Ok(())
}

fn set_store<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &Args,
    target: DomainId,
) -> Result<(), Error> {
    let server = DomainId::from_reg(a.arg(3))?;
    hv.domains.get(server)?;
    let gref = u32::try_from(a.arg(4)).map_err(|_| Error::InvalidArgument)?;
    let port = u32::try_from(a.arg(5)).map_err(|_| Error::InvalidArgument)?;
    if port == 0 {
        return Err(Error::InvalidArgument);
    }
    let store = crate::domain::StoreLoc {
        domid: server.0,
        gref,
        port,
    };
    let mem: &dyn PhysMem = hv.mem;
    crate::domain::loader::set_store(hv.domains.get_mut(target)?, mem, store)
}

fn set_max_mem<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    target: DomainId,
    pages: u64,
) -> Result<(), Error> {
    if pages > tern_abi::layout::GUEST_RAM_MAX_SIZE / tern_abi::PAGE_SIZE {
        return Err(Error::TooBig);
    }
    let d = hv.domains.get_mut(target)?;
    if pages < d.ram.pages() {
        return Err(Error::InvalidArgument);
    }
    d.set_max_pages(pages);
    Ok(())
}

fn load_from_module<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
    target: DomainId,
) -> Result<(), Error> {
    let mut buf = [0u8; NAME_MAX];
    let name = read_name(hv, a.caller, a.arg(3), a.arg(4), &mut buf)?;
    let module = *hv
        .modules
        .iter()
        .find(|m| m.name.as_bytes() == name)
        .ok_or(Error::NotFound)?;
    load(hv, a, target, module.bytes)
}

fn load_from_memory<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
    target: DomainId,
) -> Result<(), Error> {
    let (ipa, len) = (a.arg(3), a.arg(4));
    let ram = &hv.domains.get(a.caller)?.ram;
    if !ram.contains(GuestPhysAddr(ipa), len) {
        return Err(Error::BadAddress);
    }
    if len > IMAGE_FROM_MEMORY_MAX {
        return Err(Error::InvalidImage);
    }
    // Staged in a private copy: dom0 could change its memory while we parse.
    let mut image = Vec::new();
    image
        .try_reserve_exact(len as usize)
        .map_err(|_| Error::NoMemory)?;
    image.resize(len as usize, 0);
    ram.read(hv.mem, GuestPhysAddr(ipa), &mut image)?;
    load(hv, a, target, &image)
}

fn load<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
    target: DomainId,
    image: &[u8],
) -> Result<(), Error> {
    let modules = if target == DomainId::DOM0 {
        hv.modules.len() as u32
    } else {
        0
    };
    let d = hv.domains.get_mut(target)?;
    let entry = loader::load(d, hv.mem, image, modules)?;
    a.ret(1, entry);
    Ok(())
}

fn set_vcpu_context<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
    target: DomainId,
) -> Result<(), Error> {
    let e: VcpuEntry = read_in(hv, a.caller, a.arg(4), a.arg(5), VcpuEntry::MIN_SIZE)?;
    let d = hv.domains.get_mut(target)?;
    let v = usize::try_from(a.arg(3)).map_err(|_| Error::NotFound)?;
    if v >= d.vcpus.len() {
        return Err(Error::NotFound);
    }
    d.check_entry(&e)?;
    // Paused, and the vCPU off every CPU (a pause takes effect at each
    // vCPU's next switch): its context is not in use.
    if d.life != Lifecycle::Paused || d.vcpus[v].on_cpu.is_some() {
        return Err(Error::InvalidState);
    }
    d.set_vcpu_entry(v, &e, loader::SCTLR_EL1_RESET);
    Ok(())
}

fn unpause<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    target: DomainId,
) -> Result<(), Error> {
    let d = hv.domains.get_mut(target)?;
    if d.life != Lifecycle::Paused || !d.image_loaded {
        return Err(Error::InvalidState);
    }
    hv.unpause_domain(target);
    Ok(())
}

fn pause<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    target: DomainId,
) -> Result<(), Error> {
    if target == DomainId::DOM0 {
        return Err(Error::PermissionDenied);
    }
    let d = hv.domains.get_mut(target)?;
    if d.life != Lifecycle::Active {
        return Err(Error::InvalidState);
    }
    d.life = Lifecycle::Paused;
    // Its vCPUs stop at the next exception on their CPUs: make that now.
    hv.stop_scheduling(target);
    Ok(())
}

fn list<M: PhysMem, F: FrameSource>(
    hv: &mut Hypervisor<'_, M, F>,
    a: &mut Args,
) -> Result<(), Error> {
    let (ipa, cap, stride, from) = (a.arg(2), a.arg(3), a.arg(4), a.arg(5));
    let from = u32::try_from(from).unwrap_or(u32::MAX);
    if stride < DomainInfo::MIN_SIZE as u64 {
        return Err(Error::InvalidArgument);
    }
    let total = cap.checked_mul(stride).ok_or(Error::BadAddress)?;
    check_out(hv, a.caller, ipa, total, 0)?;
    if cap > 0 && !ipa.is_multiple_of(8) {
        return Err(Error::BadAddress);
    }
    let infos: Vec<DomainInfo> = hv
        .domains
        .iter_from(from)
        .take(cap as usize)
        .filter_map(|d| info_now(hv, d.id()).ok())
        .collect();
    for (i, info) in infos.iter().enumerate() {
        write_out(hv, a.caller, ipa + i as u64 * stride, stride, info)?;
    }
    a.ret(1, infos.len() as u64);
    a.ret(2, hv.domains.iter_from(from).count() as u64);
    Ok(())
}

/// A domain's `DomainInfo` as of now, with its CPU time from the scheduler
/// and its sent events from the event channels.
fn info_now<M: PhysMem, F: FrameSource>(
    hv: &Hypervisor<'_, M, F>,
    id: DomainId,
) -> Result<DomainInfo, Error> {
    let ticks = hv.sched.domain_time(id, (hv.clock)()).unwrap_or(0);
    let ns = tern_abi::time::ticks_to_ns(ticks, hv.ticks_per_s.max(1));
    Ok(hv.domains.get(id)?.info(ns, hv.events.sent(id)))
}
