//! The interactive shell on the console (`dom0.shell`): an `xl`-like toolstack
//! with line editing and history. The line editor, the commands and the
//! output formats are in dom0's library ([`dom0::editor`], [`dom0::shell`],
//! [`dom0::format`]); this file runs them with hypercalls.
//!
//! The shell runs on the hypervisor console and, when dom0 drives a PL011
//! of its own ([`dom0::uart`]), on that one too: each terminal has its own
//! [`Session`] (line, history), and a command's output goes to the terminal
//! it was typed on ([`dom0::shell_io`]); dom0's reports and the other
//! domains' output stay on the hypervisor console, the log. `console
//! <Domain>` works on either; while a command runs (an attached console
//! included) the other terminal waits.
//!
//! dom0 reads both terminals until nothing is left, then blocks until
//! there is work (typed input raises the console-input event or the UART's
//! interrupt; a domain exit, the store and the back ends have theirs; see
//! `crate::wait_for_work`), and on waking checks whether a domain it
//! started has exited (reported and destroyed as without the shell).
//! Output of other domains and hypervisor log lines may land after the
//! console's prompt; dom0 redraws the prompt after its own reports.

use alloc::string::String;
use alloc::vec::Vec;
use dom0::config::DomainConfig;
use dom0::domains::{Watched, Watchlist, exit_of};
use dom0::format::{self, HostInfo};
use dom0::fs::paths;
use dom0::is_config_module;
use dom0::shell::{self, Command, Dom};
use dom0::shell_io::{self, Port, Session};
use dom0::store::service as store;
use dom0::{shell_print as print, shell_println as println};
use pv_guest_sdk::abi::domctl::{DomainId, DomainInfo};
use pv_guest_sdk::abi::store::StoreError;
use pv_guest_sdk::abi::{Error, module::ModuleInfo};
use pv_guest_sdk::store::SHUTDOWN_NODE;
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{ShutdownReason, console, domctl, module};
use zerocopy::FromZeros;

/// What the shell shows before each line.
pub const PROMPT: &str = "tern# ";

/// Domain entries fetched per `domctl list` call.
const LIST_BATCH: usize = 16;

/// Runs the shell until `poweroff`. `watch` holds the domains started so far.
pub fn run(mut watch: Watchlist) -> ! {
    // Our output turns raw now, so the prompt shows without a newline.
    console::go_interactive();
    crate::bind_console_event();
    let ports: Vec<Port> = Port::ALL
        .into_iter()
        .filter(|&p| p == Port::Console || dom0::uart::present())
        .collect();
    let mut sessions: Vec<Session> = ports.iter().map(|_| Session::new(PROMPT)).collect();
    pv_guest_sdk::println!("dom0: shell ready; 'help' lists the verbs");
    if ports.contains(&Port::Uart) {
        pv_guest_sdk::println!("dom0: shell on the UART too");
    }
    for (s, &port) in sessions.iter_mut().zip(&ports) {
        shell_io::with_terminal(port, |t| s.prompt(t));
    }
    let mut input = [0u8; 64];
    loop {
        let mut typed = false;
        for (s, &port) in sessions.iter_mut().zip(&ports) {
            let n = shell_io::with_terminal(port, |t| t.read(&mut input));
            if n == 0 {
                continue;
            }
            typed = true;
            shell_io::with_terminal(port, |t| {
                s.feed(&input[..n], t, |line| {
                    // A verb may run long without waiting: the events the
                    // back ends marked for their front ends go first.
                    pv_guest_sdk::events::send_marked();
                    // Output goes where the line was typed.
                    shell_io::set_current(port);
                    execute(line, &mut watch);
                    shell_io::set_current(Port::Console);
                    crate::reap_exited(&mut watch);
                })
            });
        }
        if typed {
            continue;
        }
        let ended = crate::poll_exits(&mut watch);
        let due = watch
            .next_due()
            .is_some_and(|at| at <= pv_guest_sdk::time::now());
        if !ended.is_empty() || due {
            // Reports go to the console on lines of their own, then its
            // prompt and the line being typed come back.
            let console = &mut sessions[0];
            shell_io::with_terminal(Port::Console, |t| console.hide(t));
            crate::reap(&mut watch, ended);
            crate::restart_due(&mut watch);
            shell_io::with_terminal(Port::Console, |t| console.redraw(t));
        }
        // Nothing typed (this read also re-armed the console-input event):
        // sleeps until input, a domain exit, a store, console, UART or
        // back-end event, the next restart due, or the input deadline;
        // serves the store, the back ends and the UART on waking.
        let deadline = crate::earliest(
            crate::restart_deadline(&watch),
            Some(crate::input_deadline()),
        );
        crate::wait_for_work(deadline);
    }
}

/// Prints a command's one-line error.
macro_rules! error {
    ($($arg:tt)*) => { println!("error: {}", format_args!($($arg)*)) };
}

/// `create <path>` and `fs-ls`: the guest library.
mod library;
/// `top`, `block-list`, `network-list` (after `error!`, which they use).
mod verbs;

fn execute(line: &str, watch: &mut Watchlist) {
    let cmd = match shell::parse(line) {
        Ok(cmd) => cmd,
        Err(e) => return error!("{e}"),
    };
    match cmd {
        Command::Empty => {}
        Command::Help(None) => print!("{}", shell::help_text()),
        Command::Help(Some(verb)) => print!("{}", shell::verb_help(verb)),
        Command::List(doms) => list(&doms),
        Command::Create(name) => create(&name, watch),
        Command::Destroy(Dom::Name(name)) if watch.cancel_restart(&name) => {
            // Crashed and waiting for its restart: destroyed already.
            println!("Cancelled the restart of {name}");
        }
        Command::Destroy(dom) => {
            if let Some(d) = lookup("destroy", &dom) {
                if format::is_dom0(&d) {
                    return error!(
                        "destroy: {} cannot be destroyed (use 'poweroff')",
                        format::DOM0_NAME
                    );
                }
                let id = DomainId(d.domain_id);
                match crate::destroy(id) {
                    Ok(()) => {
                        watch.remove(id);
                    }
                    Err(e) => error!("destroy: {}: {e}", format::name(&d)),
                }
            }
        }
        Command::Shutdown {
            dom,
            reason,
            wait,
            force,
        } => shutdown(&dom, reason, wait, force, watch),
        Command::Console(dom) => console_attach(&dom),
        Command::Pause(dom) => on_domain("pause", &dom, domctl::pause),
        Command::Unpause(dom) => on_domain("unpause", &dom, domctl::unpause),
        Command::SchedCredit { dom, weight, cap } => sched_credit(dom.as_ref(), weight, cap),
        Command::VcpuPin { dom, vcpu, cpus } => {
            if let Some(d) = lookup("vcpu-pin", &dom)
                && let Err(e) = domctl::vcpu_affinity(DomainId(d.domain_id), vcpu, cpus)
            {
                error!("vcpu-pin: {} vCPU {vcpu}: {e}", format::name(&d));
            }
        }
        Command::VcpuList(doms) => vcpu_list(&doms),
        Command::Dmesg => dmesg(),
        Command::Top => verbs::top(),
        Command::BlockList(doms) => verbs::block_list(&doms),
        Command::NetworkList(doms) => verbs::network_list(&doms),
        Command::StoreLs(path) => store::verb_ls(path.as_deref()),
        Command::StoreRead(path) => store::verb_read(&path),
        Command::StoreWrite { path, value } => store::verb_write(&path, &value),
        Command::FsLs(path) => library::fs_ls(path.as_deref()),
        Command::Info => info(),
        Command::Poweroff => poweroff(),
        Command::NotYet { verb, why } => error!("{verb}: not supported yet (needs {why})"),
    }
}

/// Every domain, in id order.
fn all_domains() -> Result<Vec<DomainInfo>, Error> {
    let mut all = Vec::new();
    let mut first = DomainId(0);
    loop {
        let mut batch = [DomainInfo::new_zeroed(); LIST_BATCH];
        let (n, total) = domctl::list(first, &mut batch)?;
        all.extend_from_slice(&batch[..n]);
        match batch[..n].last() {
            Some(last) if total > n as u64 => first = DomainId(last.domain_id + 1),
            _ => return Ok(all),
        }
    }
}

/// The domain `dom` names, or `None` after printing why not.
fn lookup(verb: &str, dom: &Dom) -> Option<DomainInfo> {
    match all_domains() {
        Ok(all) => match format::find(&all, dom) {
            Some(d) => Some(*d),
            None => {
                error!("{verb}: no domain '{dom}'");
                None
            }
        },
        Err(e) => {
            error!("{verb}: cannot list domains: {e}");
            None
        }
    }
}

/// Runs `op` on the domain `dom` names.
/// `sched-credit`: xl's table (Name, ID, Weight, Cap), or sets a domain's.
fn sched_credit(dom: Option<&Dom>, weight: Option<u32>, cap: Option<u32>) {
    let domains = match dom {
        Some(dom) => match lookup("sched-credit", dom) {
            Some(d) => alloc::vec![d],
            None => return,
        },
        None => match all_domains() {
            Ok(all) => all,
            Err(e) => return error!("sched-credit: {e}"),
        },
    };
    if let (Some(d), true) = (domains.first(), weight.is_some() || cap.is_some()) {
        let id = DomainId(d.domain_id);
        let set = domctl::sched_get(id).and_then(|old| {
            let new = domctl::SchedParams {
                weight: weight.map_or(old.weight, u64::from),
                cap: cap.map_or(old.cap, u64::from),
            };
            domctl::sched_set(id, new)
        });
        if let Err(e) = set {
            error!("sched-credit: {}: {e}", format::name(d));
        }
        return;
    }
    println!("{:<40}{:>5}{:>7}{:>5}", "Name", "ID", "Weight", "Cap");
    for d in &domains {
        match domctl::sched_get(DomainId(d.domain_id)) {
            Ok(p) => println!(
                "{:<40}{:>5}{:>7}{:>5}",
                format::name(d),
                d.domain_id,
                p.weight,
                p.cap
            ),
            Err(e) => error!("sched-credit: {}: {e}", format::name(d)),
        }
    }
}

fn on_domain(verb: &str, dom: &Dom, op: fn(DomainId) -> Result<(), Error>) {
    if let Some(d) = lookup(verb, dom)
        && let Err(e) = op(DomainId(d.domain_id))
    {
        error!("{verb}: {}: {e}", format::name(&d));
    }
}

/// The domains named (all when none is): `None` after an error line.
fn select(verb: &str, doms: &[Dom]) -> Option<Vec<DomainInfo>> {
    let all = match all_domains() {
        Ok(all) => all,
        Err(e) => {
            error!("{verb}: cannot list domains: {e}");
            return None;
        }
    };
    if doms.is_empty() {
        return Some(all);
    }
    let mut shown = Vec::new();
    for dom in doms {
        match format::find(&all, dom) {
            Some(d) => shown.push(*d),
            None => {
                error!("{verb}: no domain '{dom}'");
                return None;
            }
        }
    }
    Some(shown)
}

fn vcpu_list(doms: &[Dom]) {
    let Some(shown) = select("vcpu-list", doms) else {
        return;
    };
    let cpus = domctl::physinfo().map_or(1, |p| p.cpus);
    println!("{}", format::vcpu_list_header());
    for d in &shown {
        for v in 0..d.vcpus {
            match domctl::vcpu_info(DomainId(d.domain_id), v) {
                Ok(info) => println!("{}", format::vcpu_list_row(d, v, &info, cpus)),
                // Destroyed while we looked: the table goes on without it.
                Err(Error::NoSuchDomain) => break,
                Err(e) => return error!("vcpu-list: {} vCPU {v}: {e}", format::name(d)),
            }
        }
    }
}

/// Prints the hypervisor's log ring, oldest first, up to where it ended when
/// the command started: what dmesg prints goes into the ring too, and must
/// not be read back.
fn dmesg() {
    let mut buf = [0u8; 1024];
    // A position past the end reads nothing and says where the end is.
    let end = match console::read_log(u64::MAX, &mut buf[..0]) {
        Ok(c) => c.next,
        Err(e) => return error!("dmesg: {e}"),
    };
    let mut pos = 0;
    while pos < end {
        let want = buf.len().min((end - pos) as usize);
        let chunk = match console::read_log(pos, &mut buf[..want]) {
            Ok(c) => c,
            Err(e) => return error!("dmesg: {e}"),
        };
        if pos == 0 && chunk.oldest > 0 {
            println!("({} bytes of older log overwritten)", chunk.oldest);
        }
        if chunk.copied == 0 {
            return;
        }
        // The log is text; print whatever came, lossily.
        for piece in buf[..chunk.copied].utf8_chunks() {
            print!("{}", piece.valid());
        }
        pos = chunk.next;
    }
}

fn list(doms: &[Dom]) {
    let Some(shown) = select("list", doms) else {
        return;
    };
    println!("{}", format::list_header());
    for d in &shown {
        println!("{}", format::list_row(d));
    }
}

/// The boot module called `name`, or `name.toml`.
fn find_module(name: &str) -> Option<(u32, ModuleInfo, String)> {
    let count = module::count().ok()?;
    let with_ext = alloc::format!("{name}.toml");
    for want in [name, with_ext.as_str()] {
        for index in 0..count {
            if let Ok(info) = module::info(index)
                && module::name(&info) == want
            {
                return Some((index, info, want.into()));
            }
        }
    }
    None
}

fn create(name: &str, watch: &mut Watchlist) {
    if paths::is_library_path(name) {
        return library::create(&paths::absolute(name), watch);
    }
    let Some((index, info, file)) = find_module(name) else {
        return error!(
            "create: no boot module '{name}' (library files go by path: fs-ls lists them)"
        );
    };
    if !is_config_module(&file) {
        return error!("create: {file} is not a domain configuration (*.toml)");
    }
    println!("Parsing config from {file}");
    let cfg = match crate::read_config(index, info.size) {
        Ok(cfg) => cfg,
        Err(msg) => return error!("create: {file}: {msg}"),
    };
    started(crate::start(&cfg), &cfg, &file, watch);
}

/// Reports how building the domain `cfg` describes (from `file`) went, and
/// watches it if it runs.
fn started(
    built: Result<DomainId, (&'static str, Error)>,
    cfg: &DomainConfig,
    file: &str,
    watch: &mut Watchlist,
) {
    match built {
        Ok(id) => {
            println!("Started domain {} (id {})", cfg.name, id.0);
            // Made by hand: a restart still pending for it is moot.
            watch.cancel_config(file);
            let now = pv_guest_sdk::time::now();
            watch.add(Watched::new(id, cfg, file, now));
        }
        Err((step, e)) => error!("create: {}: {step}: {e}", cfg.name),
    }
}

/// Asks domain `id` to shut down for `reason` (xl's `control/shutdown`).
fn ask_shutdown(id: DomainId, reason: ShutdownReason) -> Result<(), StoreError> {
    let path = alloc::format!("/local/domain/{}/{}", id.0, SHUTDOWN_NODE);
    store::write(&path, reason.name().as_bytes())
}

/// How long `shutdown -w` / `reboot -w` wait for the guest.
const SHUTDOWN_WAIT_MS: u64 = 10_000;

/// `shutdown` / `reboot`: asks the guest through the store (xl's
/// `control/shutdown`); with `wait`, waits until it has shut down (what
/// becomes of it is then [`crate::reap`]'s); with `force`, destroys it if
/// it has not in time (and, for a reboot, creates it again).
fn shutdown(dom: &Dom, reason: ShutdownReason, wait: bool, force: bool, watch: &mut Watchlist) {
    let verb = if reason == ShutdownReason::Reboot {
        "reboot"
    } else {
        "shutdown"
    };
    let Some(d) = lookup(verb, dom) else { return };
    if format::is_dom0(&d) {
        return error!(
            "{verb}: {} cannot be asked (use 'poweroff')",
            format::DOM0_NAME
        );
    }
    let id = DomainId(d.domain_id);
    if let Err(e) = ask_shutdown(id, reason) {
        return error!("{verb}: {}: {SHUTDOWN_NODE}: {e}", format::name(&d));
    }
    let doing = if reason == ShutdownReason::Reboot {
        "Rebooting"
    } else {
        "Shutting down"
    };
    println!("{doing} domain {}", id.0);
    if !wait {
        return;
    }
    let deadline = Deadline::after_ms(SHUTDOWN_WAIT_MS);
    loop {
        match domctl::get_info(id) {
            Ok(info) if exit_of(&info).is_none() => {}
            // Shut down (or gone): the reaper reports and deals with it.
            _ => return println!("Domain {} has shut down", id.0),
        }
        if deadline.passed() {
            break;
        }
        // The guest needs its store answered to see the request; its
        // exit (the domain-exit event) ends the wait early.
        crate::wait_for_work(Some(deadline.0));
    }
    let secs = SHUTDOWN_WAIT_MS / 1000;
    if !force {
        return error!(
            "{verb}: {}: still running after {secs} s (-F destroys it)",
            format::name(&d)
        );
    }
    println!(
        "Domain {} ignored the request for {secs} s: destroying it",
        id.0
    );
    if let Err(e) = crate::destroy(id) {
        return error!("{verb}: destroy {}: {e}", format::name(&d));
    }
    if let Some(w) = watch.remove(id)
        && reason == ShutdownReason::Reboot
    {
        crate::recreate(watch, &w, "rebooted");
    }
}

fn info() {
    let version = match pv_guest_sdk::version() {
        Ok(v) => v,
        Err(e) => return error!("info: version call failed: {e}"),
    };
    let phys = match domctl::physinfo() {
        Ok(p) => p,
        Err(e) => return error!("info: physinfo failed: {e}"),
    };
    let host = HostInfo {
        guest_abi: version.guest,
        control_abi: version.control,
        features: version.features,
        cpus: phys.cpus,
        total_pages: phys.total_pages,
        free_pages: phys.free_pages,
    };
    print!("{}", format::info_text(&host, env!("CARGO_PKG_VERSION")));
}

/// How long `poweroff` waits for the domains it asked to shut down.
const POWEROFF_WAIT_MS: u64 = 3_000;

/// Asks every domain but dom0 to shut down, waits for them a little,
/// destroys them all, then powers off (the hypervisor turns the machine off
/// when dom0 shuts down).
fn poweroff() -> ! {
    match all_domains() {
        Ok(all) => {
            let others: Vec<&DomainInfo> = all.iter().filter(|d| !format::is_dom0(d)).collect();
            let mut asked = 0;
            for d in others.iter().filter(|d| exit_of(d).is_none()) {
                if ask_shutdown(DomainId(d.domain_id), ShutdownReason::Poweroff).is_ok() {
                    asked += 1;
                }
            }
            if asked > 0 {
                println!("Asked {asked} domain(s) to shut down");
                let deadline = Deadline::after_ms(POWEROFF_WAIT_MS);
                let running = || {
                    others.iter().any(|d| {
                        domctl::get_info(DomainId(d.domain_id)).is_ok_and(|i| exit_of(&i).is_none())
                    })
                };
                while running() && !deadline.passed() {
                    crate::wait_for_work(Some(deadline.0));
                }
            }
            for d in others {
                let id = DomainId(d.domain_id);
                match domctl::get_info(id) {
                    Ok(i) if exit_of(&i).is_some() => {
                        println!("Domain {} ({}) has shut down", format::name(d), d.domain_id);
                    }
                    _ => println!("Destroying domain {} ({})", format::name(d), d.domain_id),
                }
                if let Err(e) = crate::destroy(id) {
                    error!("poweroff: destroy {}: {e}", format::name(d));
                }
            }
        }
        Err(e) => error!("poweroff: cannot list domains: {e}"),
    }
    println!("dom0: powering off");
    // The machine stops with dom0: the UART's last bytes go out first.
    dom0::uart::flush();
    pv_guest_sdk::shutdown(ShutdownReason::Poweroff)
}

/// `console <Domain>`: shows the domain's recent and live output and sends
/// it what is typed, until Ctrl-] (or the domain goes away).
fn console_attach(dom: &Dom) {
    use dom0::consback::{service as consback, split_escape};
    let Some(d) = lookup("console", dom) else {
        return;
    };
    if format::is_dom0(&d) {
        return error!("console: {} has no console device", format::DOM0_NAME);
    }
    let id = DomainId(d.domain_id);
    let Some(history) = consback::open_terminal(id) else {
        return error!("console: {}: no console device", format::name(&d));
    };
    println!(
        "Connected to {} (escape character is '^]')",
        format::name(&d)
    );
    shell_io::write(&history);
    shell_io::flush();
    let mut input = [0u8; 64];
    loop {
        let n = shell_io::read(&mut input);
        let (typed, escaped) = split_escape(&input[..n]);
        if !typed.is_empty() {
            consback::send_input(typed);
        }
        if escaped {
            break;
        }
        store::serve();
        dom0::blkback::service::poll();
        dom0::netback::service::poll();
        consback::poll();
        dom0::uart::poll();
        if !consback::has_console(id) || domctl::get_info(id).is_err() {
            println!();
            println!("{} has gone", format::name(&d));
            break;
        }
        if n == 0 {
            // ABI-PENDING: block on the console-input and console events.
            pv_guest_sdk::yield_now();
        }
    }
    consback::close_terminal();
    println!();
}
