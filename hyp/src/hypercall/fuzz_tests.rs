//! Hostile callers at the dispatcher: random sequences of hypercalls, with
//! real and made-up call numbers, sub-operations, pointers and sizes, from
//! dom0 and from domUs. Whatever they do, the hypervisor must not panic, no
//! domain may end up holding another's pages, and every page must stay
//! accounted for once the domains are gone.

use proptest::prelude::*;
use std::boxed::Box;
use std::vec::Vec;

use tern_abi::call::{self, Call};
use tern_abi::domctl::{DomainFlags, DomainId};

use crate::domain::DomainConfig;
use crate::hypervisor::{ConsoleSink, Hypervisor, Module};
use crate::physmem::FrameSource;
use crate::physmem::testing::Arena;

struct Quiet;
impl ConsoleSink for Quiet {
    fn domain_line(&mut self, _: &str, _: &[u8]) {}
}

const RAM_PAGES: u64 = 256;
const RAM_BASE: u64 = 0x4000_0000;

/// Arguments a hostile guest would pick: inside its RAM, just outside it,
/// huge, unaligned, zero, or any value.
fn arg() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0..RAM_PAGES * 4096).prop_map(|o| RAM_BASE + o),
        Just(RAM_BASE - 8),
        Just(RAM_BASE + RAM_PAGES * 4096 - 4),
        Just(u64::MAX),
        Just(0u64),
        0u64..64,
        // Lengths and counts around the ABI's limits (4 KiB, 64 KiB).
        0u64..0x2_0000,
        any::<u64>(),
    ]
}

/// A function id: a real call of major 1 (most of the time) or anything.
fn function_id() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0..Call::ALL.len()).prop_map(|i| u64::from(Call::ALL[i].function_id())),
        1 => Just(u64::from(call::VERSION)),
        1 => any::<u32>().prop_map(u64::from),
    ]
}

fn hypercall() -> impl Strategy<Value = (u32, [u64; 7])> {
    (
        0u32..3,
        function_id(),
        0u64..16,
        proptest::array::uniform5(arg()),
    )
        .prop_map(|(who, id, sub, a)| (who, [id, sub, a[0], a[1], a[2], a[3], a[4]]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn random_hypercalls_never_panic_and_leak_nothing(calls in proptest::collection::vec(hypercall(), 1..200)) {
        let mem: &'static Arena = Box::leak(Box::new(Arena::new(0x8000_0000, 2048)));
        let console: &'static mut Quiet = Box::leak(Box::new(Quiet));
        let image = crate::domain::loader::test_image(0x4008_0000, &[0x1f, 0x20, 0x03, 0xd5], 0);
        let image: &'static [u8] = Box::leak(image.into_boxed_slice());
        let modules = std::vec![Module { name: "g", bytes: image }];
        let mut hv = Hypervisor::new(mem, Arena::new(0x8000_0000, 2048), modules, console, 1_000_000);
        let free_at_start = hv.frames.free_page_count();
        for (name, flags) in [(&b"dom0"[..], DomainFlags::IS_DOM0), (b"u1", DomainFlags::from_bits_retain(0)), (b"u2", DomainFlags::from_bits_retain(0))] {
            let cfg = DomainConfig { name, pages: RAM_PAGES, vcpus: 2, cmdline: b"", flags };
            let id = hv.domains.create(&cfg, &mut hv.frames, hv.mem).unwrap();
            hv.domain_created(id);
        }
        for (who, regs) in calls {
            let mut x = [0u64; 31];
            x[..7].copy_from_slice(&regs);
            // Callers that do not exist (any more) are not asked: the arch
            // layer only traps from live vCPUs.
            if hv.domains.get(DomainId(who)).is_err() {
                continue;
            }
            let vcpu = (regs[1] % 2) as usize;
            let _ = hv.hypercall(DomainId(who), vcpu, &mut x);
            hv.apply_notifies();
            hv.domains.recycle_vmids(|_| {});
            hv.complete_grant_flushes(|_| {});
            // No two domains ever share a frame.
            let mut owned: Vec<(u64, u64)> = hv
                .domains
                .iter_from(0)
                .flat_map(|d| d.ram.chunks().iter().map(|c| (c.pa.0, c.pa.0 + c.size())).collect::<Vec<_>>())
                .collect();
            owned.sort_unstable();
            prop_assert!(owned.windows(2).all(|w| w[0].1 <= w[1].0), "frames shared between domains");
        }
        // Tear everything down: every page must come back (grant frames
        // held for a TLB flush included).
        let ids: Vec<DomainId> = hv.domains.iter_from(0).map(|d| d.id()).collect();
        for id in ids {
            for v in hv.domains.get_mut(id).unwrap().vcpus.iter_mut() {
                v.on_cpu = None;
            }
            hv.destroy_domain(id).unwrap();
        }
        hv.complete_grant_flushes(|_| {});
        prop_assert_eq!(hv.frames.free_page_count(), free_at_start);
    }
}
