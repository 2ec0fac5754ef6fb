//! dom0, the control domain: lists the boot modules, starts the domains their
//! `*.toml` configurations ask for, and reports when each exits.
//!
//! Command-line flags (hypervisor boot arguments after `--`):
//! `dom0.shell` then runs the interactive shell on the console, and on
//! dom0's own PL011 if the hypervisor gave it one ([`dom0::uart`]; its line
//! speed `dom0.uart-baud=`, its reference clock `dom0.uart-clock=` in Hz)
//! ([`toolstack`]), until its `poweroff`; `scripts/run.sh` passes it.
//! Without it dom0 waits for the domains it started and powers off when none
//! is left, which stops the machine (what the integration tests rely on);
//! `dom0.stay` keeps it running instead. `dom0.cycles=N` replaces all of this
//! with N create → run → destroy cycles of the first configured domain and
//! checks that the hypervisor's free-page count comes back exactly.
//! `dom0.blk-test` / `dom0.net-test` drive the virtio-mmio disk / NIC QEMU
//! attached ([`dom0::virtio::blk_test`], [`dom0::net::net_test`]) and stop.
//! `dom0.start=<name>[,<name>...]` also starts the configurations so named
//! whose `autostart` is false (`scripts/run.sh` starts the echo guest so).
//! `dom0.top=<ms>` prints every `ms` milliseconds what each domain it started
//! got of the CPUs ([`dom0::top`]).
//! `dom0.fs=<disk>` names the disk of the guest library (`none`: no
//! library; default: the first ext2/3/4 disk no boot configuration uses),
//! from which the shell's `create /path` and `fs-ls` read ([`dom0::fs`]).
//!
//! dom0 waits for domains to exit by blocking until the domain-exit event
//! (`Virq::DomExc`, raised by the hypervisor whenever a domain shuts down or
//! crashes), so it uses no CPU while they run. What becomes of a domain that
//! ended is [`dom0::domains::fate`]: a reboot creates it again from its
//! configuration; a crash follows its `on_crash` (destroy; restart after the
//! back-off of [`dom0::restart`], the wait ending at the next restart due;
//! preserve).
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

mod build;
mod toolstack;
mod wake;

use build::{Image, destroy, start, start_from};

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use dom0::blkback::service as blkback;
use dom0::config::{self, DomainConfig};
use dom0::consback::service as consback;
use dom0::domains::{Exit, Fate, Watched, Watchlist, fate};
use dom0::netback::service as netback;
use dom0::store::service as store;
use dom0::top::{Sample, Top};
use dom0::{CONFIG_MAX, is_config_module};
use pv_guest_sdk::abi::CONTROL_ABI;
use pv_guest_sdk::abi::time::ns_to_ticks;
use pv_guest_sdk::events::{self, Port, Virq};
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::{ShutdownReason, StartInfo, domctl, module, println};

mod pirq_test;

pv_guest_sdk::entry!(dom0_main);

fn dom0_main(si: &StartInfo) {
    println!("dom0: tern dom0 v{}", env!("CARGO_PKG_VERSION"));
    match pv_guest_sdk::version() {
        Ok(v) if v.control.satisfies(CONTROL_ABI) => {
            println!("dom0: guest ABI {}, control ABI {}", v.guest, v.control)
        }
        Ok(v) => println!(
            "dom0: control ABI {} does not serve {CONTROL_ABI}; continuing anyway",
            v.control
        ),
        Err(e) => println!("dom0: version call failed: {e}"),
    }

    // Before any domain starts, so that no exit goes unannounced.
    bind_exit_event();
    if si.cmdline().has("dom0.pirq-test") {
        pirq_test::run();
        pv_guest_sdk::shutdown(ShutdownReason::Poweroff);
    }
    // Device tests: drive the virtio-mmio devices QEMU attached, then stop.
    if si.cmdline().has("dom0.blk-test") || si.cmdline().has("dom0.net-test") {
        let mut found = dom0::virtio::bring_up(si);
        if si.cmdline().has("dom0.blk-test") {
            dom0::virtio::blk_test::run(&mut found.blks);
        }
        if si.cmdline().has("dom0.net-test") {
            dom0::net::net_test::run(&mut found.nets);
        }
        pv_guest_sdk::shutdown(ShutdownReason::Poweroff);
    }
    let configs = load_configs();
    // The disks the block back end serves domains' `disk = [...]` from.
    let found = dom0::virtio::bring_up(si);
    dom0::blkback::service::init(found.blks);
    for (i, card) in found.cards.into_iter().enumerate() {
        dom0::blkback::service::add(alloc::format!("mmc{i}"), alloc::boxed::Box::new(card));
    }
    init_library(si, &configs);
    // A PL011 of dom0's own: the shell's second terminal.
    match dom0::virtio::device_list() {
        Ok(list) => dom0::uart::init(si, &list),
        Err(e) => println!("dom0: uart: {e}"),
    }
    if si.cmdline().has("dom0.blk-bench") {
        // `dom0.blk-bench=N` reads N times (scripts/bench.sh); bare, 1000.
        let reads = si.cmdline().get_u64("dom0.blk-bench").unwrap_or(1000);
        dom0::blkback::bench::bench_direct(reads, bench_region);
    }
    // The NIC is the virtual switch's uplink (domains' `vif = [...]`).
    netback::start_uplink(found.nets);
    if let Some(n) = si.cmdline().get_u64("dom0.cycles") {
        match configs.first() {
            Some((_, cfg)) => cycles(cfg, n),
            None => println!("dom0: cycles: FAIL (no domain configuration)"),
        }
        pv_guest_sdk::shutdown(ShutdownReason::Poweroff);
    }
    let mut watch = Watchlist::new();
    for (file, cfg) in configs
        .iter()
        .filter(|(_, c)| c.autostart || asked(si, &c.name))
    {
        match start(cfg) {
            Ok(id) => {
                println!(
                    "dom0: started {} (domain {}) from {}",
                    cfg.name, id.0, cfg.image
                );
                watch.add(Watched::new(id, cfg, file, time::now()));
            }
            Err((step, e)) => println!("dom0: cannot start {}: {step}: {e}", cfg.name),
        }
    }

    if si.cmdline().has("dom0.shell") {
        toolstack::run(watch);
    }
    let period_ms = si.cmdline().get_u64("dom0.top").filter(|&ms| ms > 0);
    let period = period_ms.map(|ms| ns_to_ticks(ms.saturating_mul(1_000_000), time::frequency()));
    let mut top = period.map(|p| {
        let top = Top::new(time::now(), samples(&watch));
        (top, Deadline(time::counter().saturating_add(p)), p)
    });
    while !watch.is_empty() {
        let top_due = top.as_ref().map(|(_, next, _)| next.0);
        wait_for_work(earliest(top_due, restart_deadline(&watch)));
        if let Some((top, next, period)) = top.as_mut()
            && next.passed()
        {
            // Sampled before anything else: the period ends now.
            let now = time::now();
            for line in top.report(now, samples(&watch)) {
                println!("dom0: {line}");
            }
            next.0 = next.0.saturating_add(*period);
        }
        reap_exited(&mut watch);
        restart_due(&mut watch);
    }
    // No wait_for_work follows: the events the back ends marked go now.
    events::send_marked();
    println!("dom0: no domains left");
    if si.cmdline().has("dom0.stay") {
        loop {
            // Consumes stray events (a late domain exit) before blocking, so
            // that a pending one cannot turn this into a busy loop.
            events::wait_until(
                || {
                    store::take_kick()
                        | blkback::take_kick()
                        | netback::take_kick()
                        | consback::take_kick()
                },
                None,
            );
            store::serve();
            blkback::poll();
            netback::poll();
            consback::poll();
        }
    }
    pv_guest_sdk::shutdown(ShutdownReason::Poweroff);
}

/// Opens (`start`) or closes a region that the `tern-bench` QEMU plugin
/// counts instructions in (tools/qemu-plugin/tern-bench.c; the bench guests'
/// `region_start`/`region_stop`): blk-read-4k sets dom0's direct reads
/// against a domain's reads through the back end by instruction count, the
/// virtual time of a disk wait being meaningless under `-icount sleep=off`.
fn bench_region(start: bool) {
    // SAFETY: HINT #0x7c / #0x7d are unallocated hints, which execute as NOPs
    // (Arm ARM C6.2, HINT): no register, flag or memory changes.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        if start {
            core::arch::asm!("hint #0x7c", options(nostack, preserves_flags));
        } else {
            core::arch::asm!("hint #0x7d", options(nostack, preserves_flags));
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    let _ = start;
}

/// Whether `dom0.start=name[,name...]` asks for domain `name` to be started
/// with the autostarted ones (`scripts/run.sh` starts the echo guest so).
fn asked(si: &StartInfo, name: &str) -> bool {
    si.cmdline()
        .get("dom0.start")
        .is_some_and(|list| list.split(',').any(|n| n == name))
}

/// Set by the domain-exit event's handler, taken by [`poll_exits`].
static EXITED: AtomicBool = AtomicBool::new(false);
/// Set by the console-input event's handler, taken by [`wait_for_work`].
static CONSOLE_INPUT: AtomicBool = AtomicBool::new(false);
/// Whether the console-input event is bound (else the shell wakes every
/// [`INPUT_POLL_MS`] to look for input).
static CONSOLE_EVENT: AtomicBool = AtomicBool::new(false);

/// How often the shell looks for typed input when the hypervisor gives no
/// console-input event: short enough that typing does not lag.
const INPUT_POLL_MS: u64 = 10;
/// With the console-input event, the shell still looks this often, so that
/// input on a console whose receive interrupt the hypervisor does not know
/// is slow rather than lost.
const INPUT_SAFETY_MS: u64 = 250;
/// Whether the domain-exit event is bound (else dom0 polls).
static EXIT_EVENT: AtomicBool = AtomicBool::new(false);

fn on_exit(_: Port) {
    EXITED.store(true, Ordering::Release);
}

/// Binds the domain-exit event to dom0's vCPU 0. Without it (a hypervisor
/// without event channels) dom0 polls `get_info` between yields.
fn bind_exit_event() {
    match events::init().and_then(|()| events::bind_virq(Virq::DomExc, 0)) {
        Ok(port) => {
            events::on(port, on_exit);
            EXIT_EVENT.store(true, Ordering::Release);
        }
        Err(e) => println!("dom0: no domain-exit event ({e}): polling"),
    }
}

fn on_console_input(_: Port) {
    CONSOLE_INPUT.store(true, Ordering::Release);
}

/// Binds the console-input event (`Virq::Console`, raised when input arrives
/// for dom0, the console's input owner) to dom0's vCPU 0, for the shell.
fn bind_console_event() {
    match events::bind_virq(Virq::Console, 0) {
        Ok(port) => {
            events::on(port, on_console_input);
            CONSOLE_EVENT.store(true, Ordering::Release);
        }
        Err(e) => println!("dom0: no console-input event ({e}): polling the console"),
    }
}

/// The latest the shell sleeps before it reads the console again (see
/// [`INPUT_SAFETY_MS`]).
fn input_deadline() -> u64 {
    let ms = if dom0::uart::polled() {
        dom0::uart::POLL_MS
    } else if CONSOLE_EVENT.load(Ordering::Acquire) {
        INPUT_SAFETY_MS
    } else {
        INPUT_POLL_MS
    };
    Deadline::after_ms(ms).0
}

/// Waits until there is work: a domain may have exited (the domain-exit
/// event came; [`poll_exits`] takes it), input was typed, a store or
/// back-end event came (or a back end left work), or the virtual counter
/// reaches `deadline`; then serves the store and the back ends. Blocks in
/// the hypervisor meanwhile, so an idle dom0 uses no CPU and wakes as soon
/// as a front end's event comes. Without the domain-exit event, just
/// yields once.
///
/// Which back ends are polled: [`wake`].
fn wait_for_work(deadline: Option<u64>) {
    let mut kicks = wake::Kicks::default();
    if EXIT_EVENT.load(Ordering::Acquire) {
        // Every flag is looked at (no short cut), so that one wake-up takes
        // them all; `serve`/`poll` below do their work. The wait checks
        // them with upcalls masked before blocking: none is lost.
        let done = || {
            kicks.take()
                | EXITED.load(Ordering::Acquire)
                | CONSOLE_INPUT.swap(false, Ordering::AcqRel)
                | store::take_kick()
                | dom0::uart::take_kick()
        };
        // Sends the events the back ends marked, the last with the block.
        events::wait_until(done, deadline);
    } else {
        pv_guest_sdk::yield_now();
        kicks = wake::Kicks::all();
    }
    store::serve();
    kicks.poll();
    dom0::uart::poll();
}

/// The CPU time of every watched domain, for `dom0.top`.
fn samples(watch: &Watchlist) -> Vec<Sample> {
    watch
        .iter()
        .filter_map(|w| {
            let info = domctl::get_info(w.id).ok()?;
            Some(Sample {
                id: w.id,
                name: w.name.clone(),
                cpu_ns: info.cpu_time_ns,
            })
        })
        .collect()
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The virtual-counter deadline of the next restart due, if one waits.
fn restart_deadline(watch: &Watchlist) -> Option<u64> {
    let at = watch.next_due()?;
    Some(Deadline::after_ns(at.saturating_sub(time::now())).0)
}

/// Reports the watched domains that have exited and deals with each.
fn reap_exited(watch: &mut Watchlist) {
    let ended = poll_exits(watch);
    reap(watch, ended);
}

/// Takes the watched domains that have exited off `watch`. Looks only when
/// the domain-exit event came since the last look (it says that some domain
/// exited, not which), or always without the event.
fn poll_exits(watch: &mut Watchlist) -> Vec<(Watched, Exit)> {
    if !EXITED.swap(false, Ordering::AcqRel) && EXIT_EVENT.load(Ordering::Acquire) {
        return Vec::new();
    }
    watch.poll(|id| domctl::get_info(id).ok())
}

/// Reports how each domain ended and does what its [`fate`] says.
fn reap(watch: &mut Watchlist, ended: Vec<(Watched, Exit)>) {
    if ended.is_empty() {
        return;
    }
    // Their last output comes before the news of their end.
    consback::poll();
    for (w, exit) in ended {
        println!("dom0: domain {} ({}) exited: {exit}", w.name, w.id.0);
        let fate = fate(exit, w.on_crash);
        if matches!(fate, Fate::Destroy | Fate::Recreate | Fate::Restart)
            && let Err(e) = destroy(w.id)
        {
            println!("dom0: destroy {} ({}): {e}", w.name, w.id.0);
        }
        match fate {
            Fate::Destroy | Fate::Forget => {}
            Fate::Preserve => println!(
                "dom0: {} (domain {}) preserved (on_crash = preserve); 'destroy' removes it",
                w.name, w.id.0
            ),
            Fate::Recreate => recreate(watch, &w, "rebooted"),
            Fate::Restart => {
                let (name, id) = (w.name.clone(), w.id.0);
                let delay_ms = watch.crashed(w, time::now()) / 1_000_000;
                println!(
                    "dom0: {name} (domain {id}) crashed: restarting in {delay_ms} ms (on_crash = restart)"
                );
            }
        }
    }
}

/// Creates again the crashed domains whose back-off has passed.
fn restart_due(watch: &mut Watchlist) {
    // Most wakes have no restart waiting: no clock read, no list.
    if watch.next_due().is_none() {
        return;
    }
    for w in watch.due(time::now()) {
        recreate(watch, &w, "restarted");
    }
}

/// Creates the domain `w` was again, from its configuration, and watches
/// it; `how` says why in the report.
fn recreate(watch: &mut Watchlist, w: &Watched, how: &str) {
    let loaded = if dom0::fs::paths::is_library_path(&w.config) {
        dom0::fs::disk::open()
            .map_err(|e| alloc::string::ToString::to_string(&e))
            .and_then(|lib| lib.domain(&w.config))
            .map(|(cfg, image)| (cfg, Some(image)))
    } else {
        config_module(&w.config).map(|cfg| (cfg, None))
    };
    let (cfg, image) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return println!("dom0: cannot make {} again: {}: {e}", w.name, w.config),
    };
    let built = match &image {
        Some(bytes) => start_from(&cfg, Image::Bytes(bytes)),
        None => start(&cfg),
    };
    match built {
        Ok(id) => {
            println!("dom0: {how} {} as domain {}", cfg.name, id.0);
            watch.add(Watched::new(id, &cfg, &w.config, time::now()));
        }
        Err((step, e)) => println!("dom0: cannot make {} again: {step}: {e}", cfg.name),
    }
}

/// The configuration in boot module `file`.
fn config_module(file: &str) -> Result<DomainConfig, alloc::string::String> {
    let count = module::count().map_err(|e| alloc::format!("{e}"))?;
    for index in 0..count {
        if let Ok(info) = module::info(index)
            && module::name(&info) == file
        {
            return read_config(index, info.size);
        }
    }
    Err("no such boot module".into())
}

/// Runs `n` create → run → destroy cycles of `cfg` and reports whether the
/// hypervisor's free-page count returned exactly to where it started.
fn cycles(cfg: &DomainConfig, n: u64) {
    let before = match domctl::physinfo() {
        Ok(p) => p,
        Err(e) => return println!("dom0: cycles: FAIL (physinfo: {e})"),
    };
    println!(
        "dom0: cycles: {n} x {}, free pages before: {}",
        cfg.name, before.free_pages
    );
    for i in 0..n {
        let id = match start(cfg) {
            Ok(id) => id,
            Err((step, e)) => return println!("dom0: cycles: FAIL (cycle {i}: {step}: {e})"),
        };
        let mut watch = Watchlist::new();
        watch.add(Watched::new(id, cfg, "", time::now()));
        while !watch.is_empty() {
            wait_for_work(None);
            let _ = poll_exits(&mut watch);
        }
        if let Err(e) = destroy(id) {
            return println!("dom0: cycles: FAIL (cycle {i}: destroy: {e})");
        }
    }
    match domctl::physinfo() {
        Ok(after) if after.free_pages == before.free_pages => println!(
            "dom0: cycles: PASS {n} cycles, free pages before {} after {}",
            before.free_pages, after.free_pages
        ),
        Ok(after) => println!(
            "dom0: cycles: FAIL free pages before {} after {}",
            before.free_pages, after.free_pages
        ),
        Err(e) => println!("dom0: cycles: FAIL (physinfo: {e})"),
    }
}

/// Chooses the disk of the guest library (`create /path`, `fs-ls`):
/// `dom0.fs=<disk>`, else the first disk with an ext2/3/4 filesystem that no
/// boot configuration gives a domain ([`dom0::fs::disk`]).
fn init_library(si: &StartInfo, configs: &[(alloc::string::String, DomainConfig)]) {
    let targets: Vec<&str> = configs
        .iter()
        .flat_map(|(_, c)| c.disks.iter().map(|d| d.target.as_str()))
        .collect();
    dom0::fs::disk::init(si.cmdline().get("dom0.fs"), &targets);
}

/// Lists the boot modules and parses every configuration among them (with
/// its module's name).
fn load_configs() -> Vec<(alloc::string::String, DomainConfig)> {
    let count = match module::count() {
        Ok(n) => n,
        Err(e) => {
            println!("dom0: cannot count boot modules: {e}");
            return Vec::new();
        }
    };
    println!("dom0: {count} boot module(s)");
    let mut configs = Vec::new();
    for index in 0..count {
        let info = match module::info(index) {
            Ok(i) => i,
            Err(e) => {
                println!("dom0: module {index}: {e}");
                continue;
            }
        };
        let name = module::name(&info);
        println!("dom0: module {index}: {name} ({} bytes)", info.size);
        if !is_config_module(name) {
            continue;
        }
        match read_config(index, info.size) {
            Ok(cfg) => configs.push((name.into(), cfg)),
            Err(msg) => println!("dom0: {name}: {msg}"),
        }
    }
    configs
}

/// Reads module `index` and parses it as a configuration.
fn read_config(index: u32, size: u64) -> Result<DomainConfig, alloc::string::String> {
    use alloc::string::ToString;
    if size > CONFIG_MAX {
        return Err(alloc::format!("larger than {CONFIG_MAX} bytes"));
    }
    let mut buf = vec![0u8; size as usize];
    let n = module::read(index, 0, &mut buf).map_err(|e| e.to_string())?;
    buf.truncate(n);
    let text = core::str::from_utf8(&buf).map_err(|_| "not UTF-8".to_string())?;
    config::parse(text).map_err(|e| e.to_string())
}
