//! `domctl` (guest ABI major 1, call 3): domain control. dom0 only; part of the
//! control ABI ([`crate::CONTROL_ABI`]).
//!
//! A domain's life: `create` (paused, RAM allocated and zeroed, no image) →
//! `load_image_*` (copies the ELF, writes the start-info page, sets vCPU 0 to the
//! entry state of `specs/memory-map.md`) → optionally `set_vcpu_context` →
//! `unpause` → running/blocked ⇄ `pause` → shutdown or crashed → `destroy`.
//!
//! Structures are passed by IPA in dom0's RAM together with their size in bytes
//! (see "Structures sized by the caller" in `specs/hypercalls.md`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::Error;
use crate::spec::{LayoutDesc, layout_desc};

/// A domain id. dom0 is 0; other domains get ids from 1 up, not reused while the
/// hypervisor runs (until the id space wraps).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
)]
#[repr(transparent)]
pub struct DomainId(pub u32);

impl DomainId {
    /// The control domain.
    pub const DOM0: Self = Self(0);

    /// Decodes an argument register; [`Error::NoSuchDomain`] if bits 63:32 are set.
    pub const fn from_reg(reg: u64) -> Result<Self, Error> {
        if reg > u32::MAX as u64 {
            Err(Error::NoSuchDomain)
        } else {
            Ok(Self(reg as u32))
        }
    }
}

abi_enum! {
    /// Sub-operations of `domctl`, in `x1`. All return
    /// [`Error::PermissionDenied`] when the caller is not dom0.
    pub enum Op: u16, unknown = NotImplemented {
        /// Create a paused domain with zeroed RAM and no image.
        ///
        /// - `x2` = IPA of a [`CreateDomain`] (IN), 8-byte aligned.
        /// - `x3` = its size in bytes (at least [`CreateDomain::MIN_SIZE`]).
        ///
        /// Returns `x1` = the new domain id. Errors: `BadAddress`,
        /// `InvalidArgument` (bad name, zero vCPUs or pages, reserved field or
        /// command line malformed, short size), `TooBig` (more vCPUs than the
        /// hypervisor supports, RAM above `GUEST_RAM_MAX_SIZE`), `NoMemory`,
        /// `Exists` (a domain of that name exists).
        Create = 0 => "create",
        /// Set the most RAM a domain may hold (the ballooning ceiling). The
        /// default is the RAM given at `create`.
        ///
        /// - `x2` = domain id. `x3` = limit in pages.
        ///
        /// Errors: `NoSuchDomain`, `InvalidArgument` (below the RAM it holds),
        /// `TooBig` (above `GUEST_RAM_MAX_SIZE`).
        SetMaxMem = 1 => "set_max_mem",
        /// Load an ELF image from a boot module into a domain that has never run.
        ///
        /// - `x2` = domain id. `x3` = IPA of the module name (bytes, no NUL) in
        ///   dom0's RAM. `x4` = name length, `1..=`[`crate::module::NAME_MAX`].
        ///
        /// Returns `x1` = the entry point (IPA). Errors: `NoSuchDomain`,
        /// `BadAddress`, `InvalidArgument` (name length), `NotFound` (no such
        /// module), `InvalidImage`, `InvalidState` (the domain has run).
        LoadImageFromModule = 2 => "load_image_from_module",
        /// Load an ELF image from dom0's RAM into a domain that has never run.
        ///
        /// - `x2` = domain id. `x3` = IPA of the image in dom0's RAM. `x4` = its
        ///   length in bytes.
        ///
        /// Returns `x1` = the entry point (IPA). Errors: `NoSuchDomain`,
        /// `BadAddress`, `InvalidImage`, `InvalidState` (the domain has run).
        LoadImageFromMemory = 3 => "load_image_from_memory",
        /// Set the entry state of one vCPU of a paused domain (used for vCPUs
        /// other than 0, or to override what `load_image_*` set).
        ///
        /// - `x2` = domain id. `x3` = vCPU index. `x4` = IPA of a
        ///   [`VcpuEntry`] (IN), 8-byte aligned. `x5` = its size in bytes.
        ///
        /// Errors: `NoSuchDomain`, `BadAddress`, `InvalidArgument` (PC or SP
        /// outside the domain's RAM, short size), `NotFound` (no such vCPU),
        /// `InvalidState` (the domain is not paused).
        SetVcpuContext = 4 => "set_vcpu_context",
        /// Let a paused domain run.
        ///
        /// - `x2` = domain id.
        ///
        /// Errors: `NoSuchDomain`, `InvalidState` (not paused, or no image).
        Unpause = 5 => "unpause",
        /// Stop a domain's vCPUs until `unpause`.
        ///
        /// - `x2` = domain id.
        ///
        /// Errors: `NoSuchDomain`, `PermissionDenied` (dom0 itself),
        /// `InvalidState` (already paused, shut down, crashed or dying).
        Pause = 6 => "pause",
        /// Destroy a domain and free its memory. Any state is allowed.
        ///
        /// - `x2` = domain id.
        ///
        /// Errors: `NoSuchDomain`, `PermissionDenied` (dom0 itself), `Busy`
        /// (its memory is still mapped elsewhere; retry).
        Destroy = 7 => "destroy",
        /// Describe one domain.
        ///
        /// - `x2` = domain id. `x3` = IPA of a [`DomainInfo`] (OUT), 8-byte
        ///   aligned. `x4` = its size in bytes.
        ///
        /// Errors: `NoSuchDomain`, `BadAddress`, `InvalidArgument` (short size).
        GetInfo = 8 => "get_info",
        /// Describe many domains, in increasing id order.
        ///
        /// - `x2` = IPA of an array of [`DomainInfo`] (OUT), 8-byte aligned.
        /// - `x3` = capacity, in entries (0 is allowed: counts only).
        /// - `x4` = entry size in bytes (the array stride).
        /// - `x5` = the first domain id to consider.
        ///
        /// Returns `x1` = entries written, `x2` = number of domains with an id
        /// `>= x5` (more than `x1` means: call again from the last id + 1).
        /// Errors: `BadAddress`, `InvalidArgument` (short entry size).
        List = 9 => "list",
        /// Describe the machine's memory and CPUs (what `xl info` shows).
        ///
        /// Returns `x1` = total pages the hypervisor manages for domains,
        /// `x2` = free pages now, `x3` = physical CPUs online. `free` counts
        /// every page not held by a domain (RAM or stage-2 tables), so it
        /// returns to the same value when a domain is destroyed.
        Physinfo = 10 => "physinfo",
        /// Read a domain's scheduling parameters.
        ///
        /// - `x2` = domain id.
        ///
        /// Returns `x1` = weight, `x2` = cap (percent of one CPU, 0 = none).
        /// Errors: `NoSuchDomain`.
        SchedGet = 11 => "sched_get",
        /// Set a domain's scheduling parameters.
        ///
        /// - `x2` = domain id. `x3` = weight, `1..=`[`SCHED_WEIGHT_MAX`].
        ///   `x4` = cap in percent of one CPU: 0 (none) or
        ///   `1..=100 *` the domain's vCPUs.
        ///
        /// Errors: `NoSuchDomain`, `InvalidArgument`.
        SchedSet = 12 => "sched_set",
        /// Restrict one vCPU of a domain to a set of physical CPUs.
        ///
        /// - `x2` = domain id. `x3` = vCPU index. `x4` = CPU mask: bit `n`
        ///   allows physical CPU `n`; at least one online CPU.
        ///
        /// Returns `x1` = the mask in force before. Errors: `NoSuchDomain`,
        /// `NotFound` (no such vCPU), `InvalidArgument` (no online CPU in
        /// the mask).
        VcpuAffinity = 13 => "vcpu_affinity",
        /// Set the wall clock every domain's time page publishes.
        ///
        /// - `x2` = seconds since 1970-01-01T00:00:00Z. `x3` = nanoseconds,
        ///   below 1,000,000,000. `x4` = the value of dom0's virtual counter
        ///   at which that was the time.
        ///
        /// Errors: `InvalidArgument` (nanoseconds out of range).
        SetWallclock = 14 => "set_wallclock",
        /// Tell a domain that has not run yet where its configuration store
        /// is: the hypervisor writes the three values into its start-info
        /// page (`store_domid`, `store_gref`, `store_port`), now and again if
        /// an image is loaded later.
        ///
        /// - `x2` = domain id. `x3` = the serving domain. `x4` = grant
        ///   reference of the store page in the serving domain's table.
        ///   `x5` = the serving domain's unbound port (1..).
        ///
        /// Errors: `NoSuchDomain` (either domain), `InvalidArgument` (port 0,
        /// or a grant reference or port above 32 bits), `InvalidState` (the
        /// domain has run).
        SetStore = 15 => "set_store",
        /// Describe one vCPU of a domain (what `xl vcpu-list` shows).
        ///
        /// - `x2` = domain id. `x3` = vCPU index.
        ///
        /// Returns `x1` = [`VcpuRunState`] in bits 31:0 and the physical CPU
        /// it is on in bits 63:32 ([`NO_CPU`] when on none), `x2` = CPU time
        /// used, in nanoseconds, `x3` = its CPU affinity mask.
        /// Errors: `NoSuchDomain`, `NotFound` (no such vCPU).
        VcpuInfo = 16 => "vcpu_info",
    }
}

/// Weight of a domain that was never given one (`sched_get`).
pub const SCHED_WEIGHT_DEFAULT: u64 = 256;
/// Largest weight `sched_set` accepts.
pub const SCHED_WEIGHT_MAX: u64 = 65535;

/// `vcpu_info`: bits 63:32 of `x1` when the vCPU is on no physical CPU.
pub const NO_CPU: u64 = 0xFFFF_FFFF;

/// `vcpu_info`'s `x1`: the [`VcpuRunState`] in bits 31:0, the physical CPU
/// (or [`NO_CPU`]) in bits 63:32.
pub const fn pack_state_cpu(state: VcpuRunState, cpu: Option<u32>) -> u64 {
    let cpu = match cpu {
        Some(c) => c as u64,
        None => NO_CPU,
    };
    state.raw() as u64 | cpu << 32
}

/// Splits `vcpu_info`'s `x1` ([`pack_state_cpu`]) into the raw state and
/// the CPU, `None` for [`NO_CPU`].
pub const fn unpack_state_cpu(x1: u64) -> (u64, Option<u32>) {
    let cpu = x1 >> 32;
    let cpu = if cpu == NO_CPU {
        None
    } else {
        Some(cpu as u32)
    };
    (x1 & NO_CPU, cpu)
}

abi_enum! {
    /// The state of one vCPU (`vcpu_info`).
    pub enum VcpuRunState: u32, unknown = InvalidArgument {
        /// Not brought up (`vcpu_op up` not called yet) or taken down.
        Down = 0 => "down",
        /// On a physical CPU now.
        Running = 1 => "running",
        /// Wants a CPU and waits for one.
        Runnable = 2 => "runnable",
        /// Waiting for an event (`sched_op block`).
        Blocked = 3 => "blocked",
        /// Its domain is paused, shut down, crashed or dying.
        Paused = 4 => "paused",
    }
}

abi_enum! {
    /// The state of a domain (`DomainInfo::state`).
    pub enum DomainState: u32, unknown = InvalidArgument {
        /// At least one vCPU is runnable.
        Running = 0 => "running",
        /// Paused by dom0 (or created and not yet unpaused).
        Paused = 1 => "paused",
        /// Every vCPU is blocked in `sched_op block`.
        Blocked = 2 => "blocked",
        /// The guest called `sched_op shutdown`; `shutdown_reason` says why.
        Shutdown = 3 => "shutdown",
        /// The hypervisor stopped the guest after a fault it could not
        /// deliver (for example a stage-2 abort outside its memory).
        Crashed = 4 => "crashed",
        /// `destroy` has begun; the id is about to disappear.
        Dying = 5 => "dying",
    }
}

abi_flags! {
    /// Properties of a domain (`DomainInfo::flags`, `StartInfo::flags`).
    pub struct DomainFlags: u32 {
        /// The domain is dom0, the control domain.
        const IS_DOM0 = 0 => "is_dom0";
    }
}

/// Argument of [`Op::Create`]. Every field is IN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct CreateDomain {
    /// IN: the domain's name, NUL-padded (see [`crate::strings`]); unique.
    pub name: [u8; 32],
    /// IN: RAM in pages, at least `GUEST_RAM_MIN_SIZE` / `PAGE_SIZE`. It is
    /// mapped at `GUEST_RAM_BASE` and zeroed.
    pub memory_pages: u64,
    /// IN: number of vCPUs, at least 1.
    pub vcpus: u32,
    /// Reserved, must be zero.
    pub reserved0: u32,
    /// IN: the command line placed in the start-info page, NUL-padded.
    pub cmdline: [u8; 256],
}
const _: () = assert!(size_of::<CreateDomain>() == 304);

impl CreateDomain {
    /// The smallest `size` argument accepted (the size in control ABI 1.0).
    pub const MIN_SIZE: usize = 304;
}

/// Argument of [`Op::SetVcpuContext`]: a vCPU's entry state. Every field is IN.
/// The vCPU enters at EL1h with MMU and caches off and `DAIF` masked; registers
/// not named here are zero.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct VcpuEntry {
    /// IN: the first instruction (IPA), 4-byte aligned, in the domain's RAM.
    pub pc: u64,
    /// IN: `SP_EL1`; 0, or 16-byte aligned and in the domain's RAM.
    pub sp: u64,
    /// IN: `x0`..`x3`.
    pub x: [u64; 4],
}
const _: () = assert!(size_of::<VcpuEntry>() == 48);

impl VcpuEntry {
    /// The smallest `size` argument accepted (the size in control ABI 1.0).
    pub const MIN_SIZE: usize = 48;
}

/// Result of [`Op::GetInfo`] and entry of [`Op::List`]. Every field is OUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct DomainInfo {
    /// OUT: the domain id.
    pub domain_id: u32,
    /// OUT: a [`DomainState`].
    pub state: u32,
    /// OUT: a [`crate::sched::ShutdownReason`] when `state` is `shutdown`, else 0.
    pub shutdown_reason: u32,
    /// OUT: number of vCPUs.
    pub vcpus: u32,
    /// OUT: [`DomainFlags`].
    pub flags: u32,
    /// Reserved, written as zero.
    pub reserved0: u32,
    /// OUT: RAM the domain holds now, in pages.
    pub memory_pages: u64,
    /// OUT: the most RAM it may hold, in pages (`set_max_mem`).
    pub max_memory_pages: u64,
    /// OUT: CPU time consumed by all its vCPUs, in nanoseconds.
    pub cpu_time_ns: u64,
    /// OUT: its name, NUL-padded.
    pub name: [u8; 32],
    /// OUT: hypercalls its vCPUs made that reached the dispatcher (the
    /// discovery calls answered on the trap fast path, `version` and the
    /// SMCCC queries, are not counted). Appended after control ABI 1.0: a
    /// caller passing the 1.0 size ([`Self::MIN_SIZE`]) does not get it.
    pub hypercalls: u64,
    /// OUT: events it sent (`evtchn_op send` calls that succeeded).
    /// Appended after control ABI 1.0, like `hypercalls`.
    pub events_sent: u64,
}
const _: () = assert!(size_of::<DomainInfo>() == 96);

impl DomainInfo {
    /// The smallest `size` argument accepted (the size in control ABI 1.0,
    /// before `hypercalls` and `events_sent` were appended).
    pub const MIN_SIZE: usize = 80;
}

/// Field table of [`CreateDomain`].
pub const CREATE_DOMAIN_LAYOUT: LayoutDesc = layout_desc!(CreateDomain {
    name: [u8; 32] => In,
    memory_pages: u64 => In,
    vcpus: u32 => In,
    reserved0: u32 => Reserved,
    cmdline: [u8; 256] => In,
});

/// Field table of [`VcpuEntry`].
pub const VCPU_ENTRY_LAYOUT: LayoutDesc = layout_desc!(VcpuEntry {
    pc: u64 => In,
    sp: u64 => In,
    x: [u64; 4] => In,
});

/// Field table of [`DomainInfo`].
pub const DOMAIN_INFO_LAYOUT: LayoutDesc = layout_desc!(DomainInfo {
    domain_id: u32 => Out,
    state: u32 => Out,
    shutdown_reason: u32 => Out,
    vcpus: u32 => Out,
    flags: u32 => Out,
    reserved0: u32 => Reserved,
    memory_pages: u64 => Out,
    max_memory_pages: u64 => Out,
    cpu_time_ns: u64 => Out,
    name: [u8; 32] => Out,
    hypercalls: u64 => Out,
    events_sent: u64 => Out,
});

/// Every `domctl` layout.
pub const LAYOUTS: &[LayoutDesc] = &[CREATE_DOMAIN_LAYOUT, VCPU_ENTRY_LAYOUT, DOMAIN_INFO_LAYOUT];

mod spec_table;
pub use spec_table::SPEC;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_cpu_pack_and_unpack() {
        let x = pack_state_cpu(VcpuRunState::Blocked, Some(3));
        assert_eq!(x, 3 << 32 | 3);
        assert_eq!(unpack_state_cpu(x), (3, Some(3)));
        let x = pack_state_cpu(VcpuRunState::Runnable, None);
        assert_eq!(
            unpack_state_cpu(x),
            (VcpuRunState::Runnable.raw().into(), None)
        );
    }

    #[test]
    fn spec_matches_enum() {
        let all: std::vec::Vec<_> = Op::ALL.iter().map(|o| (o.name(), o.raw())).collect();
        crate::spec::assert_sub_ops_match(&SPEC, &all);
        assert_eq!(CreateDomain::MIN_SIZE, size_of::<CreateDomain>());
        assert_eq!(VcpuEntry::MIN_SIZE, size_of::<VcpuEntry>());
        // The control ABI 1.0 size: where the fields appended since begin.
        assert_eq!(
            DomainInfo::MIN_SIZE,
            core::mem::offset_of!(DomainInfo, hypercalls)
        );
        assert!(DomainInfo::MIN_SIZE < size_of::<DomainInfo>());
    }

    #[test]
    fn zerocopy_round_trip() {
        let mut c = CreateDomain::new_zeroed();
        crate::strings::set_field(&mut c.name, b"demo").unwrap();
        c.memory_pages = 256;
        c.vcpus = 1;
        let bytes = c.as_bytes();
        assert_eq!(&bytes[..4], b"demo");
        assert_eq!(bytes[32], 0);
        assert_eq!(bytes[33], 1);
        assert_eq!(CreateDomain::read_from_bytes(bytes).unwrap(), c);
    }

    use zerocopy::FromZeros;
}
