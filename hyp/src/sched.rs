//! Which vCPU runs next. Round robin over every runnable vCPU of every
//! domain, in (domain id, vCPU index) order, starting after the one that just
//! ran. (The credit scheduler of the scheduling issue replaces this policy.)

use tern_abi::domctl::DomainId;

use crate::domain::table::DomainTable;

/// A vCPU, by domain and index.
pub type VcpuRef = (DomainId, usize);

/// The next runnable vCPU after `current` (which is itself chosen again if it
/// is the only runnable one), or `None` if nothing can run.
pub fn pick_next(domains: &DomainTable, cpu: usize, current: Option<VcpuRef>) -> Option<VcpuRef> {
    let mut all = domains.iter_from(0).flat_map(|d| {
        (0..d.vcpus.len())
            .filter(|&v| d.vcpu_runnable(v) && d.vcpus[v].on_cpu.is_none_or(|c| c == cpu))
            .map(move |v| (d.id(), v))
    });
    let Some((cd, cv)) = current else {
        return all.next();
    };
    let mut first = None;
    for r in all {
        first.get_or_insert(r);
        if (r.0.0, r.1) > (cd.0, cv) {
            return Some(r);
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DomainConfig, Lifecycle, VcpuState};
    use crate::physmem::testing::Arena;
    use tern_abi::domctl::DomainFlags;

    #[test]
    fn round_robin_skips_what_cannot_run() {
        let mem = Arena::new(0x8000_0000, 4096);
        let mut frames = Arena::new(0x8000_0000, 4096);
        let mut t = DomainTable::new();
        for (name, vcpus) in [(&b"a"[..], 1), (b"b", 2), (b"c", 1)] {
            let cfg = DomainConfig {
                name,
                pages: 256,
                vcpus,
                cmdline: b"",
                flags: DomainFlags::from_bits_retain(0),
            };
            let id = t.create(&cfg, &mut frames, &mem).unwrap();
            let d = t.get_mut(id).unwrap();
            d.life = Lifecycle::Active;
            for v in &mut d.vcpus {
                v.state = VcpuState::Runnable;
            }
        }
        let (a, b, c) = (DomainId(0), DomainId(1), DomainId(2));
        assert_eq!(pick_next(&t, 0, None), Some((a, 0)));
        assert_eq!(pick_next(&t, 0, Some((a, 0))), Some((b, 0)));
        assert_eq!(pick_next(&t, 0, Some((b, 0))), Some((b, 1)));
        assert_eq!(pick_next(&t, 0, Some((b, 1))), Some((c, 0)));
        assert_eq!(pick_next(&t, 0, Some((c, 0))), Some((a, 0)));
        t.get_mut(b).unwrap().vcpus[0].state = VcpuState::Blocked;
        t.get_mut(c).unwrap().life = Lifecycle::Crashed;
        t.get_mut(a).unwrap().life = Lifecycle::Paused;
        assert_eq!(
            pick_next(&t, 0, Some((b, 1))),
            Some((b, 1)),
            "alone: runs again"
        );
        t.get_mut(b).unwrap().life = Lifecycle::Shutdown(tern_abi::sched::ShutdownReason::Poweroff);
        assert_eq!(pick_next(&t, 0, Some((b, 1))), None);
    }
}
