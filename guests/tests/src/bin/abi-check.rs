//! abi-check: a domU that checks the guest ABI's documented answers
//! (specs/hypercalls.md) and prints `abi-check: PASS` or one
//! `abi-check: FAIL <what>` line per broken promise.
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::abi::call::function_id;
use pv_guest_sdk::abi::console::WRITE_MAX;
use pv_guest_sdk::abi::domctl::{CreateDomain, DomainId};
use pv_guest_sdk::abi::version::Features;
use pv_guest_sdk::abi::{CONTROL_ABI, Call, Error, GUEST_ABI, sched, strings};
use pv_guest_sdk::hypercall::{self, console_write_ipa, ipa_of};
use pv_guest_sdk::{StartInfo, domctl, module, println};
use test_guests::Checker;

pv_guest_sdk::entry!(abi_check);

/// The status of a raw hypercall as a `Result`.
fn status(id: u32, args: [u64; 6]) -> Result<(), Error> {
    let [x0, ..] = hypercall::raw(id, args);
    pv_guest_sdk::abi::status_to_result(x0 as i64)
}

fn abi_check(si: &StartInfo) {
    println!("abi-check: domain {} ({})", si.name(), si.domain_id().0);
    let mut c = Checker::new("abi-check");

    // Discovery.
    c.expect_eq("start info ABI version", si.abi_version(), GUEST_ABI);
    match pv_guest_sdk::version() {
        Ok(v) => {
            println!(
                "abi-check: guest ABI {}, control ABI {}",
                v.guest, v.control
            );
            c.expect_eq("version: guest ABI", v.guest, GUEST_ABI);
            c.expect_eq("version: control ABI", v.control, CONTROL_ABI);
            c.check(
                "version: console and sched offered",
                v.features.contains(Features::CONSOLE | Features::SCHED),
            );
            c.check(
                "version: no control features for a domU",
                !v.features.contains(Features::DOMCTL) && !v.features.contains(Features::MODULE),
            );
        }
        Err(e) => c.fail(format_args!("version call failed: {e}")),
    }

    // Unknown calls and sub-operations.
    let ni = Err(Error::NotImplemented);
    c.expect_eq(
        "unknown call 0x7ff",
        status(function_id(1, 0x7ff), [0; 6]),
        ni,
    );
    c.expect_eq(
        "reserved call 0 of major 1",
        status(function_id(1, 0), [0; 6]),
        ni,
    );
    c.expect_eq("unknown major 2", status(function_id(2, 1), [0; 6]), ni);
    c.expect_eq(
        "must-be-zero bit 17 set",
        status(Call::ConsoleIo.function_id() | 1 << 17, [0; 6]),
        ni,
    );
    let sub = |call: Call, op: u64| status(call.function_id(), [op, 0, 0, 0, 0, 0]);
    c.expect_eq("unknown console_io sub-op", sub(Call::ConsoleIo, 0x7ff), ni);
    c.expect_eq("unknown sched_op sub-op", sub(Call::SchedOp, 99), ni);
    c.expect_eq(
        "sched_op sub-op with bit 40 set",
        sub(Call::SchedOp, 1 << 40),
        ni,
    );

    // Control calls are dom0's.
    let denied = Err(Error::PermissionDenied);
    c.expect_eq(
        "domctl get_info from a domU",
        domctl::get_info(DomainId::DOM0).map(|_| ()),
        denied,
    );
    let create = victim();
    c.expect_eq(
        "domctl create from a domU",
        domctl::create(&create).map(|_| ()),
        denied,
    );
    c.expect_eq(
        "domctl destroy of dom0 from a domU",
        domctl::destroy(DomainId::DOM0),
        denied,
    );
    c.expect_eq(
        "module_op count from a domU",
        module::count().map(|_| ()),
        denied,
    );

    // Console buffers must lie in the caller's RAM and respect WRITE_MAX.
    let ram = si.ram();
    let bad = Err(Error::BadAddress);
    let msg = b"abi-check: console write ok\n";
    c.expect_eq(
        "console write from RAM",
        console_write_ipa(ipa_of(msg), msg.len() as u64),
        Ok(msg.len() as u64),
    );
    c.expect_eq(
        "zero-length console write",
        console_write_ipa(ipa_of(msg), 0),
        Ok(0),
    );
    c.expect_eq("console write below RAM", console_write_ipa(0x1000, 4), bad);
    c.expect_eq(
        "console write just below RAM",
        console_write_ipa(ram.start - 2, 4),
        bad,
    );
    c.expect_eq(
        "console write at RAM end",
        console_write_ipa(ram.end, 4),
        bad,
    );
    c.expect_eq(
        "console write across RAM end",
        console_write_ipa(ram.end - 2, 4),
        bad,
    );
    c.expect_eq(
        "console write 1 GiB past RAM",
        console_write_ipa(ram.end + (1 << 30), 4),
        bad,
    );
    c.expect_eq(
        "console write at the top of the IPA space",
        console_write_ipa(u64::MAX - 1, 4),
        bad,
    );
    c.expect_eq(
        "console write longer than WRITE_MAX",
        console_write_ipa(ram.start + 0x8_0000, WRITE_MAX + 1),
        Err(Error::TooBig),
    );
    let huge = console_write_ipa(ipa_of(msg), u64::MAX);
    c.check(
        "console write of u64::MAX bytes is TooBig or BadAddress",
        huge == Err(Error::TooBig) || huge == Err(Error::BadAddress),
    );

    // A shutdown with an unknown reason is refused and returns.
    c.expect_eq(
        "shutdown with unknown reason 99",
        hypercall::call(Call::SchedOp, sched::Op::Shutdown.raw(), [99, 0, 0, 0, 0]).map(|_| ()),
        Err(Error::InvalidArgument),
    );
    pv_guest_sdk::yield_now();

    c.finish();
}

/// A well-formed `CreateDomain`: the refusal must come from the caller not
/// being dom0, not from the argument.
fn victim() -> CreateDomain {
    let mut c = CreateDomain {
        name: [0; 32],
        memory_pages: 256,
        vcpus: 1,
        reserved0: 0,
        cmdline: [0; 256],
    };
    let _ = strings::set_field(&mut c.name, b"abi-check-victim");
    c
}
