//! Discovery calls: tern's `version` and the standard SMCCC queries (DEN0028
//! §7). They read only constants and whether the caller is dom0, so the trap
//! path answers them without taking the hypervisor lock.

use tern_abi::call::VERSION;
use tern_abi::{CONTROL_ABI, Features, GUEST_ABI, smccc};

/// The result registers `x0`..`x3` of discovery call `id` (with `x1` its
/// first argument), or `None` if `id` is not a discovery call.
#[inline]
pub fn discovery(id: u32, x1: u64, caller_is_dom0: bool) -> Option<[u64; 4]> {
    // `version` first: it is the call guests make most (and the null hypercall).
    if id == VERSION {
        return Some(version_regs(caller_is_dom0));
    }
    smccc_query(id, x1)
}

/// The result registers `x0`..`x3` of `version`. A `const fn` so that the
/// exception entry can answer the null hypercall from a table built at
/// compile time (`arch::aarch64::run::VERSION_REGS`) without calling Rust.
pub const fn version_regs(caller_is_dom0: bool) -> [u64; 4] {
    let mut features = Features::CONSOLE
        .union(Features::SCHED)
        .union(Features::EVTCHN)
        .union(Features::VCPU)
        .union(Features::TIME)
        .union(Features::GRANT);
    if caller_is_dom0 {
        features = features.union(Features::DOMCTL).union(Features::MODULE);
    }
    [0, GUEST_ABI.pack(), CONTROL_ABI.pack(), features.bits()]
}

/// The standard SMCCC queries; out of line so that `version` stays a single
/// compare on the trap path.
#[inline(never)]
fn smccc_query(id: u32, x1: u64) -> Option<[u64; 4]> {
    Some(match id {
        smccc::SMCCC_VERSION => [smccc::SMCCC_VERSION_1_1, 0, 0, 0],
        smccc::SMCCC_ARCH_FEATURES => {
            let known = matches!(x1 as u32, smccc::SMCCC_VERSION | smccc::SMCCC_ARCH_FEATURES);
            [
                if known {
                    0
                } else {
                    smccc::NOT_SUPPORTED as u64
                },
                0,
                0,
                0,
            ]
        }
        smccc::VENDOR_HYP_CALL_COUNT => [smccc::VENDOR_HYP_CALL_COUNT_VALUE, 0, 0, 0],
        smccc::VENDOR_HYP_CALL_UID => smccc::TERN_UID_REGS.map(u64::from),
        smccc::VENDOR_HYP_REVISION => [GUEST_ABI.major.into(), GUEST_ABI.minor.into(), 0, 0],
        _ => return None,
    })
}
