//! Host tests of the control sub-operations added for the store, `dmesg`
//! and `vcpu-list`: `domctl set_store`, `console_io read_log`, `domctl
//! vcpu_info`.

use std::string::String;
use std::vec::Vec;

use tern_abi::Error;
use tern_abi::call::{self, DOMCTL};
use tern_abi::console::Op as ConsoleOp;
use tern_abi::domctl::{DomainId, Op as DomOp};

use super::tests::{SCRATCH, call, create_req, err, get, hyp, put, world};
use crate::hypervisor::{Hypervisor, Module};
use crate::physmem::testing::Arena;

#[test]
fn set_store_reaches_the_start_info_page_and_only_dom0_learns_its_ram() {
    use tern_abi::start_info::{NO_RAM_PHYS_BASE, StartInfo};
    let image = crate::domain::loader::test_image(0x4008_0000, &[0x1f, 0x20, 0x03, 0xd5], 64);
    let image: &'static [u8] = std::boxed::Box::leak(image.into_boxed_slice());
    let mut w = world();
    let mut hv = hyp(
        &mut w,
        std::vec![Module {
            name: "g.elf",
            bytes: image
        }],
    );
    let d = |op: DomOp| -> u64 { op.raw().into() };
    let set = |hv: &mut Hypervisor<'static, Arena, Arena>, who, regs: [u64; 4]| {
        let mut r = std::vec![DOMCTL.into(), d(DomOp::SetStore)];
        r.extend(regs);
        call(hv, who, &r).0[0]
    };
    put(&hv, 0, SCRATCH, &create_req(b"g", 256));
    let g = call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Create), SCRATCH, 304]).0[1];
    // Before the image: remembered, written when the image is loaded.
    assert_eq!(set(&mut hv, 0, [g, 0, 7, 3]), 0);
    put(&hv, 0, SCRATCH + 0x1000, b"g.elf");
    let load = [
        DOMCTL.into(),
        d(DomOp::LoadImageFromModule),
        g,
        SCRATCH + 0x1000,
        5,
    ];
    assert_eq!(call(&mut hv, 0, &load).0[0], 0);
    let si: StartInfo = get(&hv, g as u32, 0x4000_0000);
    assert_eq!((si.store_domid, si.store_gref, si.store_port), (0, 7, 3));
    assert_eq!(si.ram_phys_base, NO_RAM_PHYS_BASE, "a domU is not told");
    // After the image: rewritten in place.
    assert_eq!(set(&mut hv, 0, [g, 0, 9, 4]), 0);
    let si: StartInfo = get(&hv, g as u32, 0x4000_0000);
    assert_eq!((si.store_gref, si.store_port), (9, 4));
    // Refusals.
    let bad = [
        (0, [g, 0, 9, 0], Error::InvalidArgument),
        (0, [g, 0, 1 << 32, 4], Error::InvalidArgument),
        (0, [g, 0, 9, 1 << 32], Error::InvalidArgument),
        (0, [g, 99, 9, 4], Error::NoSuchDomain),
        (0, [99, 0, 9, 4], Error::NoSuchDomain),
        (1, [g, 0, 9, 4], Error::PermissionDenied),
    ];
    for (who, regs, e) in bad {
        assert_eq!(set(&mut hv, who, regs), err(e), "{regs:?} from {who}");
    }
    hv.domains.get_mut(DomainId(g as u32)).unwrap().has_run = true;
    assert_eq!(set(&mut hv, 0, [g, 0, 9, 4]), err(Error::InvalidState));
    // dom0's RAM is one run and its start-info page says where.
    let dom0 = hv.domains.get_mut(DomainId::DOM0).unwrap();
    assert_eq!(dom0.ram.chunks().len(), 1);
    let pa = dom0.ram.chunks()[0].pa.0;
    crate::domain::loader::load(dom0, w.mem, image, 0).unwrap();
    let si: StartInfo = get(&hv, 0, 0x4000_0000);
    assert_eq!(si.ram_phys_base, pa);
}

#[test]
fn read_log_pages_through_the_ring_for_dom0_only() {
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    let id = u64::from(call::CONSOLE_IO);
    let op: u64 = ConsoleOp::ReadLog.raw().into();
    crate::logger::report(format_args!("read-log marker 7f3a\n"));
    for (who, ipa, len, e) in [
        (1, SCRATCH, 16, Error::PermissionDenied),
        (0, SCRATCH, 4097, Error::TooBig),
        (0, 0x0900_0000, 16, Error::BadAddress),
    ] {
        assert_eq!(call(&mut hv, who, &[id, op, ipa, len, 0]).0[0], err(e));
    }
    // Small reads, following `next`, until nothing is left.
    let mut text = Vec::new();
    let mut pos = 0;
    loop {
        let (r, _) = call(&mut hv, 0, &[id, op, SCRATCH, 7, pos]);
        assert_eq!(r[0], 0);
        assert!(r[2] >= pos && r[3] <= r[2]);
        if r[1] == 0 {
            break;
        }
        assert!(r[1] <= 7);
        text.extend_from_slice(&get::<[u8; 7]>(&hv, 0, SCRATCH)[..r[1] as usize]);
        pos = r[2];
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("read-log marker 7f3a\n"), "{text}");
}

#[test]
fn vcpu_info_reports_state_cpu_time_and_affinity() {
    use tern_abi::domctl::{VcpuRunState, unpack_state_cpu};
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    let d = |op: DomOp| -> u64 { op.raw().into() };
    let info = |hv: &mut Hypervisor<'static, Arena, Arena>, who, dom, v| {
        call(hv, who, &[DOMCTL.into(), d(DomOp::VcpuInfo), dom, v]).0
    };
    put(&hv, 0, SCRATCH, &create_req(b"g", 256));
    let g = call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Create), SCRATCH, 304]).0[1];
    assert_eq!(info(&mut hv, 0, g, 1)[0], err(Error::NotFound));
    assert_eq!(info(&mut hv, 0, 99, 0)[0], err(Error::NoSuchDomain));
    assert_eq!(info(&mut hv, 1, g, 0)[0], err(Error::PermissionDenied));
    // Created and never started: vCPU 0 is on no CPU and used no time.
    let r = info(&mut hv, 0, g, 0);
    assert_eq!(r[0], 0);
    let (state, cpu) = unpack_state_cpu(r[1]);
    assert_eq!(cpu, None, "on no CPU");
    let state = VcpuRunState::from_reg(state).unwrap();
    assert!(
        matches!(state, VcpuRunState::Down | VcpuRunState::Paused),
        "{state:?}"
    );
    assert_eq!(r[2], 0, "no CPU time yet");
    let pin = [DOMCTL.into(), d(DomOp::VcpuAffinity), g, 0, 0b1];
    assert_eq!(call(&mut hv, 0, &pin).0[0], 0);
    assert_eq!(info(&mut hv, 0, g, 0)[3], 0b1);
}
