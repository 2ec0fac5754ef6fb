//! `evtchn_op` (guest ABI major 1, call 5): event channels.
//!
//! The model is Xen's two-level event-channel ABI. Each domain has
//! [`NR_PORTS`] ports (port 0 is never allocated). A port is free, reserved
//! for one remote domain ([`PortState::Unbound`]), connected to a port of
//! another domain ([`PortState::Interdomain`]), bound to a virtual IRQ
//! ([`Virq`]) or used for IPIs between the domain's own vCPUs. Each bound port
//! notifies one vCPU of its domain (vCPU 0 unless `bind_vcpu` says otherwise).
//!
//! Pending and mask bits live in an [`EventPage`]: one page of the guest's own
//! RAM that it registers with [`Op::InitShared`]. When a port becomes pending
//! the hypervisor, with atomic read-modify-write operations on that page:
//!
//! 1. sets the port's bit in `pending`; if it was already set, stops (events
//!    coalesce while pending);
//! 2. if the port's bit in `mask` is set, stops;
//! 3. sets bit `port / 64` in the notified vCPU's `pending_sel`;
//! 4. sets that vCPU's `upcall_pending` to 1 and, if it was 0, raises the
//!    upcall virtual interrupt on that vCPU (and wakes it if it is blocked).
//!
//! The guest's upcall handler clears `upcall_pending`, swaps `pending_sel`
//! with 0, and for each set selector bit handles the words
//! `pending[w] & !mask[w]`, clearing each pending bit (atomically) before
//! handling its port. It then makes `evtchn_op upcall_done` so the
//! hypervisor can lower the interrupt. The interrupt also follows
//! `upcall_pending` on every return from another hypercall (not the
//! discovery calls) and whenever the vCPU is put on a CPU, so a guest that
//! scanned with IRQs masked and then blocks needs no `upcall_done`
//! (specs/hypercalls.md, `evtchn_op`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::Error;
use crate::call::Call;
use crate::spec::{CallSpec, LayoutDesc, SubOpSpec, layout_desc};

/// Ports per domain: numbers `1..NR_PORTS` can be allocated; 0 means "no
/// port".
pub const NR_PORTS: u32 = 4096;
/// Bits per word of the [`EventPage`] bitmaps.
pub const BITS_PER_WORD: u32 = 64;
/// 64-bit words in each [`EventPage`] bitmap.
pub const PORT_WORDS: usize = (NR_PORTS / BITS_PER_WORD) as usize;
/// vCPUs described by an [`EventPage`]: domains have at most this many.
pub const EVENT_VCPUS: usize = 8;

/// An event-channel port number of the caller's domain.
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
pub struct Port(pub u32);

impl Port {
    /// Decodes an argument register: [`Error::InvalidArgument`] unless
    /// `1 <= reg < NR_PORTS`.
    pub const fn from_reg(reg: u64) -> Result<Self, Error> {
        if reg == 0 || reg >= NR_PORTS as u64 {
            Err(Error::InvalidArgument)
        } else {
            Ok(Self(reg as u32))
        }
    }

    /// The index of the 64-bit word of a bitmap that holds this port's bit.
    pub const fn word(self) -> usize {
        (self.0 / BITS_PER_WORD) as usize
    }

    /// This port's bit within its word.
    pub const fn bit(self) -> u64 {
        1 << (self.0 % BITS_PER_WORD)
    }
}

abi_enum! {
    /// Sub-operations of `evtchn_op`, in `x1`. Every sub-operation acts on
    /// the calling domain's ports; ports are numbers in `1..NR_PORTS`
    /// (`InvalidArgument` otherwise).
    pub enum Op: u16, unknown = NotImplemented {
        /// Register the [`EventPage`]: `x2` = IPA of a page-aligned page of
        /// the caller's RAM. Required before any port is allocated.
        /// Errors: `BadAddress`, `Exists` (already registered).
        InitShared = 0 => "init_shared",
        /// Reserve a port that domain `x2` may connect to with
        /// `bind_interdomain`. Returns `x1` = the port.
        /// Errors: `NoSuchDomain`, `InvalidState` (no event page), `NoMemory`
        /// (every port in use).
        AllocUnbound = 1 => "alloc_unbound",
        /// Connect a new port to port `x3` of domain `x2`, which that domain
        /// reserved for the caller. Returns `x1` = the new local port.
        /// Errors: `NoSuchDomain`, `InvalidArgument`, `NotFound` (remote port
        /// free), `PermissionDenied` (reserved for another domain),
        /// `InvalidState` (remote port not unbound, or no event page),
        /// `NoMemory`.
        BindInterdomain = 2 => "bind_interdomain",
        /// Bind virtual IRQ `x2` ([`Virq`]) to a new port notifying vCPU
        /// `x3`. Returns `x1` = the port.
        /// Errors: `InvalidArgument` (unknown virq), `NotFound` (no such
        /// vCPU), `PermissionDenied` (`dom_exc` outside dom0), `Exists`
        /// (already bound), `InvalidState` (no event page), `NoMemory`.
        BindVirq = 3 => "bind_virq",
        /// Allocate an IPI port notifying vCPU `x2`. Returns `x1` = the port.
        /// Errors: `NotFound` (no such vCPU), `InvalidState`, `NoMemory`.
        BindIpi = 4 => "bind_ipi",
        /// Make the other end of port `x2` pending: the remote port of an
        /// interdomain channel, or the port itself for an IPI port.
        /// Errors: `InvalidArgument`, `NotFound` (port free),
        /// `InvalidState` (unbound or virq port).
        Send = 5 => "send",
        /// Free port `x2`. The remote end of an interdomain channel becomes
        /// unbound (reserved for the caller) again.
        /// Errors: `InvalidArgument`, `NotFound` (port free).
        Close = 6 => "close",
        /// Clear port `x2`'s mask bit and, if it is pending, deliver it again
        /// (selector bit, `upcall_pending`, upcall).
        /// Errors: `InvalidArgument`, `NotFound` (port free).
        Unmask = 7 => "unmask",
        /// Describe port `x2`: `x1` = [`PortState`], `x2` = notified vCPU,
        /// `x3` = detail (see [`status_detail`]).
        /// Errors: `InvalidArgument`.
        Status = 8 => "status",
        /// Notify vCPU `x3` for port `x2` from now on.
        /// Errors: `InvalidArgument`, `NotFound` (port free or no such
        /// vCPU), `InvalidState` (IPI or per-vCPU virq port).
        BindVcpu = 9 => "bind_vcpu",
        /// The calling vCPU consumed its `upcall_pending`: the hypervisor
        /// lowers the upcall interrupt unless `upcall_pending` is set again.
        /// No arguments, no results, no errors.
        UpcallDone = 10 => "upcall_done",
        /// dom0 only: bind physical interrupt `x2` (the INTID of an SPI of a
        /// device the hypervisor gave dom0) to a new port notifying vCPU 0.
        /// After it fires the interrupt stays masked at the GIC until
        /// `pirq_eoi`. Returns `x1` = the port. Errors: `PermissionDenied`
        /// (not dom0), `InvalidArgument` (not an interrupt of dom0's
        /// devices), `Exists` (already bound), `InvalidState` (no event
        /// page), `NoMemory`.
        BindPirq = 11 => "bind_pirq",
        /// dom0 only: the physical interrupt of port `x2` was handled at its
        /// device; the hypervisor deactivates it so it can fire again.
        /// Errors: `PermissionDenied`, `InvalidArgument`, `NotFound` (not a
        /// pirq port).
        PirqEoi = 12 => "pirq_eoi",
    }
}

abi_enum! {
    /// What a port is (`x1` of [`Op::Status`]).
    pub enum PortState: u32, unknown = InvalidArgument {
        /// Not allocated.
        Free = 0 => "free",
        /// Reserved for a remote domain to connect (`alloc_unbound`).
        Unbound = 1 => "unbound",
        /// Connected to a port of a domain (`bind_interdomain`).
        Interdomain = 2 => "interdomain",
        /// Bound to a virtual IRQ (`bind_virq`).
        Virq = 3 => "virq",
        /// An IPI port (`bind_ipi`).
        Ipi = 4 => "ipi",
        /// Bound to a physical interrupt of a device dom0 owns (`bind_pirq`).
        Pirq = 5 => "pirq",
    }
}

abi_enum! {
    /// Virtual IRQs: events the hypervisor raises (`x2` of [`Op::BindVirq`]).
    pub enum Virq: u32, unknown = InvalidArgument {
        /// Per vCPU: the one-shot timer of `time_op set_timer` expired. Each
        /// vCPU binds its own.
        Timer = 0 => "timer",
        /// Per domain: console input is available.
        Console = 1 => "console",
        /// Per domain, dom0 only: a domain shut down or crashed.
        DomExc = 2 => "dom_exc",
    }
}

impl Virq {
    /// Whether each vCPU binds this virq separately (else one binding per
    /// domain, which `bind_vcpu` may move).
    pub const fn is_per_vcpu(self) -> bool {
        matches!(self, Self::Timer)
    }
}

/// `x3` of [`Op::Status`]: for an unbound port the domain it is reserved for;
/// for an interdomain port the remote domain in bits 31:0 and the remote port
/// in bits 63:32; for a virq port the [`Virq`] number; otherwise 0.
pub const fn status_detail(remote_dom: u32, remote_port: u32) -> u64 {
    (remote_port as u64) << 32 | remote_dom as u64
}

/// Splits a [`status_detail`] into `(remote domain, remote port)`.
pub const fn split_status_detail(detail: u64) -> (u32, u32) {
    (detail as u32, (detail >> 32) as u32)
}

/// The per-vCPU part of an [`EventPage`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct VcpuEvents {
    /// OUT: 1 when the hypervisor raised the upcall for this vCPU; the guest
    /// sets it to 0 when its handler starts.
    pub upcall_pending: u64,
    /// OUT: bit `w` set when word `w` of `pending` may hold unmasked pending
    /// ports for this vCPU; the guest swaps it with 0.
    pub pending_sel: u64,
}
const _: () = assert!(size_of::<VcpuEvents>() == 16);

/// The event page a guest registers with [`Op::InitShared`]. Words are
/// updated with atomic read-modify-write operations by both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct EventPage {
    /// OUT: bit `p % 64` of word `p / 64` is set when port `p` is pending.
    /// The hypervisor sets bits; the guest clears them.
    pub pending: [u64; PORT_WORDS],
    /// IN: a set bit masks the port: it becomes pending but raises no upcall.
    pub mask: [u64; PORT_WORDS],
    /// OUT: per-vCPU upcall state, indexed by vCPU.
    pub vcpu: [VcpuEvents; EVENT_VCPUS],
    /// Reserved, zero.
    pub reserved: [u8; 2944],
}
const _: () = assert!(size_of::<EventPage>() as u64 == crate::PAGE_SIZE);

impl EventPage {
    /// Byte offset of `pending` word `w`.
    pub const fn pending_offset(w: usize) -> u64 {
        (core::mem::offset_of!(Self, pending) + w * 8) as u64
    }
    /// Byte offset of `mask` word `w`.
    pub const fn mask_offset(w: usize) -> u64 {
        (core::mem::offset_of!(Self, mask) + w * 8) as u64
    }
    /// Byte offset of vCPU `v`'s `upcall_pending`.
    pub const fn upcall_pending_offset(v: usize) -> u64 {
        (core::mem::offset_of!(Self, vcpu)
            + v * size_of::<VcpuEvents>()
            + core::mem::offset_of!(VcpuEvents, upcall_pending)) as u64
    }
    /// Byte offset of vCPU `v`'s `pending_sel`.
    pub const fn pending_sel_offset(v: usize) -> u64 {
        (core::mem::offset_of!(Self, vcpu)
            + v * size_of::<VcpuEvents>()
            + core::mem::offset_of!(VcpuEvents, pending_sel)) as u64
    }
}

/// Field table of [`VcpuEvents`].
pub const VCPU_EVENTS_LAYOUT: LayoutDesc = layout_desc!(VcpuEvents {
    upcall_pending: u64 => Out,
    pending_sel: u64 => Out,
});

/// Field table of [`EventPage`].
pub const EVENT_PAGE_LAYOUT: LayoutDesc = layout_desc!(EventPage {
    pending: [u64; PORT_WORDS] => Out,
    mask: [u64; PORT_WORDS] => In,
    vcpu: [VcpuEvents; EVENT_VCPUS] => Out,
    reserved: [u8; 2944] => Reserved,
});

const fn row(
    op: Op,
    args: &'static [&'static str],
    returns: &'static [&'static str],
    errors: &'static [Error],
) -> SubOpSpec {
    SubOpSpec {
        name: op.name(),
        value: Some(op.raw()),
        args,
        returns,
        errors,
    }
}

/// Description of `evtchn_op` for `specs/hypercalls.md`.
pub const SPEC: CallSpec = CallSpec {
    name: Call::EvtchnOp.name(),
    major: Call::MAJOR,
    call: Call::EvtchnOp.raw(),
    caller: Call::EvtchnOp.caller(),
    sub_ops: &[
        row(
            Op::InitShared,
            &["x2=page"],
            &[],
            &[Error::BadAddress, Error::Exists],
        ),
        row(
            Op::AllocUnbound,
            &["x2=remote_domid"],
            &["x1=port"],
            &[Error::NoSuchDomain, Error::InvalidState, Error::NoMemory],
        ),
        row(
            Op::BindInterdomain,
            &["x2=remote_domid", "x3=remote_port"],
            &["x1=port"],
            &[
                Error::NoSuchDomain,
                Error::InvalidArgument,
                Error::NotFound,
                Error::PermissionDenied,
                Error::InvalidState,
                Error::NoMemory,
            ],
        ),
        row(
            Op::BindVirq,
            &["x2=virq", "x3=vcpu"],
            &["x1=port"],
            &[
                Error::InvalidArgument,
                Error::NotFound,
                Error::PermissionDenied,
                Error::Exists,
                Error::InvalidState,
                Error::NoMemory,
            ],
        ),
        row(
            Op::BindIpi,
            &["x2=vcpu"],
            &["x1=port"],
            &[Error::NotFound, Error::InvalidState, Error::NoMemory],
        ),
        row(
            Op::Send,
            &["x2=port"],
            &[],
            &[Error::InvalidArgument, Error::NotFound, Error::InvalidState],
        ),
        row(
            Op::Close,
            &["x2=port"],
            &[],
            &[Error::InvalidArgument, Error::NotFound],
        ),
        row(
            Op::Unmask,
            &["x2=port"],
            &[],
            &[Error::InvalidArgument, Error::NotFound],
        ),
        row(
            Op::Status,
            &["x2=port"],
            &["x1=state", "x2=vcpu", "x3=detail"],
            &[Error::InvalidArgument],
        ),
        row(
            Op::BindVcpu,
            &["x2=port", "x3=vcpu"],
            &[],
            &[Error::InvalidArgument, Error::NotFound, Error::InvalidState],
        ),
        row(Op::UpcallDone, &[], &[], &[]),
        row(
            Op::BindPirq,
            &["x2=intid"],
            &["x1=port"],
            &[
                Error::PermissionDenied,
                Error::InvalidArgument,
                Error::Exists,
                Error::InvalidState,
                Error::NoMemory,
            ],
        ),
        row(
            Op::PirqEoi,
            &["x2=port"],
            &[],
            &[
                Error::PermissionDenied,
                Error::InvalidArgument,
                Error::NotFound,
            ],
        ),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_matches_enum() {
        let all: std::vec::Vec<_> = Op::ALL.iter().map(|o| (o.name(), o.raw())).collect();
        crate::spec::assert_sub_ops_match(&SPEC, &all);
    }

    #[test]
    fn ports_and_offsets() {
        assert_eq!(Port::from_reg(0), Err(Error::InvalidArgument));
        assert_eq!(Port::from_reg(4096), Err(Error::InvalidArgument));
        assert_eq!(Port::from_reg(1 << 40), Err(Error::InvalidArgument));
        let p = Port::from_reg(4095).unwrap();
        assert_eq!((p.word(), p.bit()), (63, 1 << 63));
        assert_eq!(Port(65).word(), 1);
        assert_eq!(Port(65).bit(), 2);
        assert_eq!(EventPage::pending_offset(1), 8);
        assert_eq!(EventPage::mask_offset(0), 512);
        assert_eq!(EventPage::upcall_pending_offset(0), 1024);
        assert_eq!(EventPage::pending_sel_offset(7), 1024 + 7 * 16 + 8);
        assert_eq!(split_status_detail(status_detail(7, 4095)), (7, 4095));
        assert!(Virq::Timer.is_per_vcpu() && !Virq::DomExc.is_per_vcpu());
    }
}
