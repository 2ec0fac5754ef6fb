//! Host tests of the dispatcher: every path a guest can reach, with a fake
//! physical memory and frame allocator.

use std::string::String;
use std::vec::Vec;

use tern_abi::call::{self, DOMCTL, MODULE_OP, SCHED_OP};
use tern_abi::console::Op as ConsoleOp;
use tern_abi::domctl::{CreateDomain, DomainFlags, DomainId, DomainInfo, DomainState, Op as DomOp};
use tern_abi::module::{ModuleInfo, Op as ModOp};
use tern_abi::sched::{Op as SchedOp, ShutdownReason};
use tern_abi::{CONTROL_ABI, Error, GUEST_ABI, smccc};
use zerocopy::{FromBytes, IntoBytes};

use super::Next;
use crate::addr::GuestPhysAddr;
use crate::domain::DomainConfig;
use crate::hypervisor::{ConsoleSink, Hypervisor, Module};
use crate::physmem::testing::Arena;

/// Console output, shared with the test that reads it back.
#[derive(Default, Clone)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl ConsoleSink for Lines {
    fn domain_line(&mut self, name: &str, line: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push(std::format!("[{name}] {}", String::from_utf8_lossy(line)));
    }
    fn write_raw(&mut self, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push(std::format!("raw {:?}", String::from_utf8_lossy(bytes)));
    }
}

/// Scratch area in dom0's RAM the tests pass structures through.
pub(super) const SCRATCH: u64 = 0x4010_0000;
const RAM_PAGES: u64 = 512;

/// Physical memory for one test (leaked: the hypervisor borrows it for `'static`).
pub(super) struct World {
    pub(super) mem: &'static Arena,
    lines: Lines,
}

pub(super) fn world() -> World {
    World {
        mem: std::boxed::Box::leak(std::boxed::Box::new(Arena::new(0x8000_0000, 8192))),
        lines: Lines::default(),
    }
}

pub(super) fn hyp(
    w: &mut World,
    modules: Vec<Module<'static>>,
) -> Hypervisor<'static, Arena, Arena> {
    let console: &'static mut Lines = std::boxed::Box::leak(std::boxed::Box::new(w.lines.clone()));
    let mut hv = Hypervisor::new(
        w.mem,
        Arena::new(0x8000_0000, 8192),
        modules,
        console,
        1_000_000,
    );
    for (name, flags) in [
        (&b"dom0"[..], DomainFlags::IS_DOM0),
        (b"domu", DomainFlags::from_bits_retain(0)),
    ] {
        let cfg = DomainConfig {
            name,
            pages: RAM_PAGES,
            vcpus: 1,
            cmdline: b"",
            flags,
        };
        hv.domains.create(&cfg, &mut hv.frames, hv.mem).unwrap();
    }
    hv
}

pub(super) fn call(
    hv: &mut Hypervisor<'static, Arena, Arena>,
    who: u32,
    regs: &[u64],
) -> ([u64; 4], Next) {
    let mut x = [0u64; 31];
    x[..regs.len()].copy_from_slice(regs);
    let next = hv.hypercall(DomainId(who), 0, &mut x);
    ([x[0], x[1], x[2], x[3]], next)
}

pub(super) fn err(e: Error) -> u64 {
    e.to_reg()
}

pub(super) fn put<T: IntoBytes + zerocopy::Immutable>(
    hv: &Hypervisor<'static, Arena, Arena>,
    who: u32,
    ipa: u64,
    v: &T,
) {
    hv.domains
        .get(DomainId(who))
        .unwrap()
        .ram
        .write(hv.mem, GuestPhysAddr(ipa), v.as_bytes())
        .unwrap();
}

pub(super) fn get<T: FromBytes>(hv: &Hypervisor<'static, Arena, Arena>, who: u32, ipa: u64) -> T {
    let mut b = std::vec![0u8; size_of::<T>()];
    hv.domains
        .get(DomainId(who))
        .unwrap()
        .ram
        .read(hv.mem, GuestPhysAddr(ipa), &mut b)
        .unwrap();
    T::read_from_bytes(&b).unwrap()
}

#[test]
fn version_and_features() {
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    let (r, n) = call(&mut hv, 1, &[call::VERSION.into()]);
    assert_eq!(n, Next::Resume);
    assert_eq!(r, [0, GUEST_ABI.pack(), CONTROL_ABI.pack(), 0b1111_0011]);
    let (r, _) = call(&mut hv, 0, &[call::VERSION.into()]);
    assert_eq!(r[3], 0b1111_1111);
}

#[test]
fn unknown_calls_and_sub_ops_are_not_implemented() {
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    let ni = [err(Error::NotImplemented), 0, 0, 0];
    for id in [
        call::function_id(1, 0),
        call::function_id(1, 99),
        call::function_id(2, 1),
        call::function_id(0, 1),
        0x8400_0000, // PSCI_VERSION: not offered to PV guests
        0xC500_0000,
        0,
    ] {
        assert_eq!(call(&mut hv, 1, &[id.into(), 7, 7, 7]).0, ni, "{id:#x}");
    }
    assert_eq!(call(&mut hv, 1, &[SCHED_OP.into(), 77]).0, ni);
    assert_eq!(call(&mut hv, 0, &[DOMCTL.into(), 1 << 20]).0, ni);
    // Unknown beats permission (specs/hypercalls.md, "Order of checks").
    assert_eq!(
        call(&mut hv, 1, &[DOMCTL.into(), 1000]).0[0],
        err(Error::PermissionDenied)
    );
}

#[test]
fn domu_may_not_use_control_calls() {
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    for op in DomOp::ALL {
        let (r, _) = call(
            &mut hv,
            1,
            &[DOMCTL.into(), op.raw().into(), 0, SCRATCH, 304],
        );
        assert_eq!(r, [err(Error::PermissionDenied), 0, 0, 0], "{op:?}");
    }
    let (r, _) = call(&mut hv, 1, &[MODULE_OP.into(), ModOp::Count.raw().into()]);
    assert_eq!(r[0], err(Error::PermissionDenied));
}

#[test]
fn smccc_queries() {
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    let (r, _) = call(&mut hv, 1, &[smccc::VENDOR_HYP_CALL_UID.into()]);
    assert_eq!(r, smccc::TERN_UID_REGS.map(u64::from));
    let (r, _) = call(&mut hv, 1, &[smccc::VENDOR_HYP_REVISION.into()]);
    assert_eq!(r[..2], [1, 0]);
    let (r, _) = call(&mut hv, 1, &[smccc::VENDOR_HYP_CALL_COUNT.into()]);
    assert_eq!(r[0], smccc::VENDOR_HYP_CALL_COUNT_VALUE);
    let (r, _) = call(&mut hv, 1, &[smccc::SMCCC_VERSION.into()]);
    assert_eq!(r[0], smccc::SMCCC_VERSION_1_1);
}

#[test]
fn console_write_checks_the_buffer() {
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    let id = u64::from(call::CONSOLE_IO);
    let write = ConsoleOp::Write.raw().into();
    let end = 0x4000_0000 + RAM_PAGES * 4096;
    for (ipa, len, e) in [
        (0x3fff_fff0, 32, Error::BadAddress),
        (end - 4, 8, Error::BadAddress),
        (0x0900_0000, 4, Error::BadAddress),
        (u64::MAX - 2, 8, Error::BadAddress),
        (SCRATCH, 4097, Error::TooBig),
    ] {
        assert_eq!(
            call(&mut hv, 1, &[id, write, ipa, len]).0,
            [err(e), 0, 0, 0]
        );
    }
    hv.domains
        .get(DomainId(1))
        .unwrap()
        .ram
        .write(hv.mem, GuestPhysAddr(end - 6), b"hi\nyo\n")
        .unwrap();
    assert_eq!(call(&mut hv, 1, &[id, write, end - 6, 6]).0, [0, 6, 0, 0]);
    assert_eq!(
        *w.lines.0.lock().unwrap(),
        ["[domu] hi", "[domu] yo"],
        "refused writes printed nothing"
    );
}

#[test]
fn console_lines_are_prefixed_and_flushed_on_shutdown() {
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    hv.console_write(DomainId(1), b"hello\nwor");
    hv.console_write(DomainId(0), b"dom0 line\n");
    let (r, n) = call(
        &mut hv,
        1,
        &[
            SCHED_OP.into(),
            SchedOp::Shutdown.raw().into(),
            ShutdownReason::Crash.raw().into(),
        ],
    );
    assert_eq!((r[0], n), (0, Next::Stop));
    assert_eq!(
        hv.domains.get(DomainId(1)).unwrap().state(),
        DomainState::Shutdown
    );
    assert_eq!(
        *w.lines.0.lock().unwrap(),
        ["[domu] hello", "[dom0] dom0 line", "[domu] wor"]
    );
}

#[test]
fn write_as_prints_for_another_domain_and_only_for_dom0() {
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    let id = u64::from(call::CONSOLE_IO);
    let (write, write_as) = (
        u64::from(ConsoleOp::Write.raw()),
        u64::from(ConsoleOp::WriteAs.raw()),
    );
    put(&hv, 1, SCRATCH, b"par");
    put(&hv, 0, SCRATCH, b"tial\nnext\n");
    for (who, dom, ipa, len, e) in [
        (1, 1, SCRATCH, 3, Error::PermissionDenied),
        (0, 99, SCRATCH, 3, Error::NoSuchDomain),
        (0, 1 << 32, SCRATCH, 3, Error::NoSuchDomain),
        (0, 1, SCRATCH, 4097, Error::TooBig),
        (0, 1, 0x0900_0000, 3, Error::BadAddress),
    ] {
        assert_eq!(
            call(&mut hv, who, &[id, write_as, dom, ipa, len]).0[0],
            err(e)
        );
    }
    assert_eq!(
        w.lines.0.lock().unwrap().len(),
        0,
        "refused: nothing printed"
    );
    // The domain's own partial line is continued by what dom0 passes on.
    assert_eq!(call(&mut hv, 1, &[id, write, SCRATCH, 3]).0, [0, 3, 0, 0]);
    assert_eq!(
        call(&mut hv, 0, &[id, write_as, 1, SCRATCH, 10]).0,
        [0, 10, 0, 0]
    );
    assert_eq!(
        *w.lines.0.lock().unwrap(),
        ["[domu] partial", "[domu] next"]
    );
}

#[test]
fn console_read_goes_to_the_owner_and_makes_its_output_raw() {
    use crate::console_in::{ConsoleInput, testing::FakeUart};
    let mut w = world();
    let mut hv = hyp(&mut w, Vec::new());
    let uart: &'static FakeUart =
        std::boxed::Box::leak(std::boxed::Box::new(FakeUart::new(b"list\r\x1b[A")));
    hv.console_in = ConsoleInput::new(Some(uart));
    let id = u64::from(call::CONSOLE_IO);
    let (read, write) = (ConsoleOp::Read.raw().into(), ConsoleOp::Write.raw().into());
    let end = 0x4000_0000 + RAM_PAGES * 4096;
    // Bad buffers fail before anything is taken from the UART.
    for (who, ipa, len, e) in [
        (0, end - 2, 4, Error::BadAddress),
        (0, 0x0900_0000, 1, Error::BadAddress),
        (0, u64::MAX - 1, 4, Error::BadAddress),
        (0, SCRATCH, 4097, Error::TooBig),
        (1, SCRATCH, 4097, Error::TooBig),
    ] {
        assert_eq!(
            call(&mut hv, who, &[id, read, ipa, len]).0,
            [err(e), 0, 0, 0]
        );
    }
    assert_eq!(uart.left(), 8);
    // dom0 says something before it reads: prefixed, held until the newline.
    put(&hv, 0, SCRATCH, b"boot\ntern# ");
    assert_eq!(call(&mut hv, 0, &[id, write, SCRATCH, 11]).0, [0, 11, 0, 0]);
    // A domU is not the input owner: it reads nothing and takes nothing.
    assert_eq!(call(&mut hv, 1, &[id, read, SCRATCH, 64]).0, [0, 0, 0, 0]);
    assert_eq!(uart.left(), 8);
    // dom0 reads in pieces; the rest waits in the hypervisor's ring.
    assert_eq!(call(&mut hv, 0, &[id, read, SCRATCH, 3]).0, [0, 3, 0, 0]);
    assert_eq!(get::<[u8; 3]>(&hv, 0, SCRATCH), *b"lis");
    assert_eq!(call(&mut hv, 0, &[id, read, end - 5, 5]).0, [0, 5, 0, 0]);
    assert_eq!(get::<[u8; 5]>(&hv, 0, end - 5), *b"t\r\x1b[A");
    assert_eq!(call(&mut hv, 0, &[id, read, SCRATCH, 64]).0, [0, 0, 0, 0]);
    assert_eq!(call(&mut hv, 0, &[id, read, SCRATCH, 0]).0, [0, 0, 0, 0]);
    // dom0's output is now raw; the domU's stays prefixed and line-buffered.
    put(&hv, 0, SCRATCH, b"x\x08");
    assert_eq!(call(&mut hv, 0, &[id, write, SCRATCH, 2]).0, [0, 2, 0, 0]);
    put(&hv, 1, SCRATCH, b"hi\n");
    assert_eq!(call(&mut hv, 1, &[id, write, SCRATCH, 3]).0, [0, 3, 0, 0]);
    assert_eq!(
        *w.lines.0.lock().unwrap(),
        [
            "[dom0] boot",
            "[dom0] tern# ",
            "raw \"x\\u{8}\"",
            "[domu] hi"
        ]
    );
}

pub(super) fn create_req(name: &[u8], pages: u64) -> CreateDomain {
    let mut c = CreateDomain {
        name: [0; 32],
        memory_pages: pages,
        vcpus: 1,
        reserved0: 0,
        cmdline: [0; 256],
    };
    c.name[..name.len()].copy_from_slice(name);
    c
}

#[test]
fn domctl_lifecycle_and_exact_accounting() {
    let image = crate::domain::loader::test_image(0x4008_0000, &[0x1f, 0x20, 0x03, 0xd5], 64);
    let image: &'static [u8] = std::boxed::Box::leak(image.into_boxed_slice());
    let mut w = world();
    let mut hv = hyp(
        &mut w,
        std::vec![Module {
            name: "guest.elf",
            bytes: image
        }],
    );
    let d = |op: DomOp| -> u64 { op.raw().into() };
    put(&hv, 0, SCRATCH + 0x1000, b"guest.elf");
    let live = hv.frames.live_runs();
    let (info, _) = call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Physinfo)]);
    assert_eq!(info[..2], [0, 8192]);
    for i in 0..200 {
        put(&hv, 0, SCRATCH, &create_req(b"g", 256));
        let (r, _) = call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Create), SCRATCH, 304]);
        assert_eq!(r[0], 0, "cycle {i}");
        let g = r[1];
        let (r, _) = call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Unpause), g]);
        assert_eq!(r[0], err(Error::InvalidState), "no image yet");
        let (r, _) = call(
            &mut hv,
            0,
            &[
                DOMCTL.into(),
                d(DomOp::LoadImageFromModule),
                g,
                SCRATCH + 0x1000,
                9,
            ],
        );
        assert_eq!(r, [0, 0x4008_0000, 0, 0]);
        let (r, _) = call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Unpause), g]);
        assert_eq!(r[0], 0);
        let (r, _) = call(
            &mut hv,
            0,
            &[DOMCTL.into(), d(DomOp::GetInfo), g, SCRATCH, 80],
        );
        assert_eq!(r[0], 0);
        let info: DomainInfo = get(&hv, 0, SCRATCH);
        assert_eq!(
            (info.domain_id as u64, info.state, info.memory_pages),
            (g, DomainState::Running.raw(), 256)
        );
        let (r, _) = call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Destroy), g]);
        assert_eq!(r[0], 0);
    }
    assert_eq!(hv.frames.live_runs(), live, "every page came back");
    assert_eq!(
        call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Physinfo)]).0,
        info,
        "free count exactly as before"
    );
    // Destroyed ids are gone; dom0 cannot be destroyed or paused.
    assert_eq!(
        call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Destroy), 5]).0[0],
        err(Error::NoSuchDomain)
    );
    assert_eq!(
        call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Destroy), 0]).0[0],
        err(Error::PermissionDenied)
    );
    assert_eq!(
        call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Pause), 0]).0[0],
        err(Error::PermissionDenied)
    );
    // Bad create requests.
    put(&hv, 0, SCRATCH, &create_req(b"bad name", 256));
    assert_eq!(
        call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Create), SCRATCH, 304]).0[0],
        err(Error::InvalidArgument)
    );
    put(&hv, 0, SCRATCH, &create_req(b"big", 1 << 40));
    assert_eq!(
        call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Create), SCRATCH, 304]).0[0],
        err(Error::TooBig)
    );
    assert_eq!(
        call(
            &mut hv,
            0,
            &[DOMCTL.into(), d(DomOp::Create), SCRATCH + 4, 304]
        )
        .0[0],
        err(Error::BadAddress)
    );
    assert_eq!(
        call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Create), SCRATCH, 100]).0[0],
        err(Error::InvalidArgument)
    );
    assert_eq!(
        call(&mut hv, 0, &[DOMCTL.into(), d(DomOp::Create), 0x1000, 304]).0[0],
        err(Error::BadAddress)
    );
    // List: both boot domains, in id order.
    let (r, _) = call(
        &mut hv,
        0,
        &[DOMCTL.into(), d(DomOp::List), SCRATCH, 4, 80, 0],
    );
    assert_eq!(r, [0, 2, 2, 0]);
    let second: DomainInfo = get(&hv, 0, SCRATCH + 80);
    assert_eq!(tern_abi::strings::field_str(&second.name), Some("domu"));
}

#[test]
fn modules_are_listed_and_read() {
    let mut w = world();
    let mut hv = hyp(
        &mut w,
        std::vec![Module {
            name: "demo.toml",
            bytes: b"name = \"demo\"\n"
        }],
    );
    let m = |op: ModOp| -> u64 { op.raw().into() };
    assert_eq!(
        call(&mut hv, 0, &[MODULE_OP.into(), m(ModOp::Count)]).0,
        [0, 1, 0, 0]
    );
    assert_eq!(
        call(
            &mut hv,
            0,
            &[MODULE_OP.into(), m(ModOp::GetInfo), 0, SCRATCH, 72]
        )
        .0[0],
        0
    );
    let info: ModuleInfo = get(&hv, 0, SCRATCH);
    assert_eq!(
        (tern_abi::strings::field_str(&info.name), info.size),
        (Some("demo.toml"), 14)
    );
    assert_eq!(
        call(
            &mut hv,
            0,
            &[MODULE_OP.into(), m(ModOp::Read), 0, 7, SCRATCH, 100]
        )
        .0,
        [0, 7, 0, 0]
    );
    let mut b = [0u8; 7];
    hv.domains
        .get(DomainId(0))
        .unwrap()
        .ram
        .read(hv.mem, GuestPhysAddr(SCRATCH), &mut b)
        .unwrap();
    assert_eq!(&b, b"\"demo\"\n");
    assert_eq!(
        call(
            &mut hv,
            0,
            &[MODULE_OP.into(), m(ModOp::GetInfo), 1, SCRATCH, 72]
        )
        .0[0],
        err(Error::NotFound)
    );
    assert_eq!(
        call(
            &mut hv,
            0,
            &[MODULE_OP.into(), m(ModOp::Read), 0, 0, 0x10, 4]
        )
        .0[0],
        err(Error::BadAddress)
    );
}
