//! The dom0 shell's commands: verbs with `xl`'s names, their usage and help
//! texts, and parsing of an entered line into a [`Command`].
//!
//! Every verb takes `--help` (or `-h`). A line that does not parse gives one
//! [`ParseError`], shown as one line.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write};
use tern_abi::sched::ShutdownReason;

mod args;
pub use args::parse_cpus;
use args::{parse_sched_credit, parse_shutdown, parse_store};

/// A domain named on the command line: by id (all digits) or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dom {
    /// A domain id.
    Id(u32),
    /// A domain name.
    Name(String),
}

impl Dom {
    /// Reads a `<Domain>` argument: an id if it is a decimal number that fits
    /// a domain id, else a name.
    pub fn parse(arg: &str) -> Self {
        match arg.parse::<u32>() {
            Ok(id) if arg.bytes().all(|b| b.is_ascii_digit()) => Self::Id(id),
            _ => Self::Name(arg.into()),
        }
    }
}

impl fmt::Display for Dom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

/// What a verb takes after its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Args {
    None,
    /// Any number of domains.
    Domains,
    /// Exactly one domain.
    Domain,
    /// Exactly one configuration name.
    Config,
    /// At most one verb name.
    OptionalVerb,
    /// `sched-credit`'s xl options.
    SchedCredit,
    /// `<Domain> <VCPU> <CPUs>`.
    VcpuPin,
    /// The configuration store's verbs: a path, and a value for `store-write`.
    Store,
    /// Any number of domains (`vcpu-list`).
    VcpuList,
    /// `[-w] [-F] <Domain>` (`shutdown`, `reboot`).
    Shutdown,
    /// Any number of domains (`block-list`, `network-list`).
    Devices,
    /// At most one path in the guest library (`fs-ls`).
    FsPath,
}

/// A verb of the shell.
#[derive(Debug, PartialEq, Eq)]
pub struct Verb {
    /// Its name, as typed.
    pub name: &'static str,
    /// What follows the name, for the usage line.
    pub usage: &'static str,
    /// One line for `help`.
    pub summary: &'static str,
    /// The rest of `<verb> --help`.
    pub details: &'static str,
    /// Why the verb does nothing yet, for verbs that wait on missing parts.
    pub pending: Option<&'static str>,
    args: Args,
}

/// Every verb, in the order `help` lists them.
pub static VERBS: &[Verb] = &[
    Verb {
        name: "help",
        usage: "[<Verb>]",
        summary: "List the verbs, or show how to use one",
        details: "Without an argument, lists the verbs; with one, shows its usage.",
        pending: None,
        args: Args::OptionalVerb,
    },
    Verb {
        name: "list",
        usage: "[<Domain> ...]",
        summary: "List information about all/some domains",
        details: "Columns as xl's: Name, ID, Mem (MiB), VCPUs, State, Time(s).\n\
                  State letters: r running, b blocked, p paused, s shut down,\n\
                  c crashed, d dying.",
        pending: None,
        args: Args::Domains,
    },
    Verb {
        name: "create",
        usage: "<ConfigFile>",
        summary: "Create a domain from a configuration file",
        details: "<ConfigFile> is the name of a *.toml boot module (\".toml\" may be\n\
                  left out), or a path in the guest library (see fs-ls), e.g.\n\
                  /guests/demo.toml: its image is then a library file too, named\n\
                  relative to the configuration's directory or absolute. The\n\
                  domain is built from it and unpaused.",
        pending: None,
        args: Args::Config,
    },
    Verb {
        name: "destroy",
        usage: "<Domain>",
        summary: "Terminate a domain immediately",
        details: "<Domain> is a name or an id. Its memory is freed at once.",
        pending: None,
        args: Args::Domain,
    },
    Verb {
        name: "shutdown",
        usage: "[-w] [-F] <Domain>",
        summary: "Issue a shutdown signal to a domain",
        details: "Asks the guest to shut itself down, as xl does: writes \"poweroff\"\n\
                  to control/shutdown in its store home. A guest that honours it\n\
                  (the SDK's Store::wait_shutdown_request) shuts down and dom0\n\
                  destroys it; one that does not keeps running.\n\
                  -w  wait (up to 10 s) until the domain has shut down.\n\
                  -F  if it has not shut down within 10 s, destroy it (implies -w).",
        pending: None,
        args: Args::Shutdown,
    },
    Verb {
        name: "reboot",
        usage: "[-w] [-F] <Domain>",
        summary: "Issue a reboot signal to a domain",
        details: "Asks the guest to restart itself, as xl does: writes \"reboot\" to\n\
                  control/shutdown in its store home. When it shuts down with\n\
                  reason reboot, dom0 destroys it and creates it again from its\n\
                  configuration (a new domain id).\n\
                  -w  wait (up to 10 s) until the domain has shut down.\n\
                  -F  if it has not shut down within 10 s, destroy it and create it\n\
                      again (implies -w).",
        pending: None,
        args: Args::Shutdown,
    },
    Verb {
        name: "console",
        usage: "<Domain>",
        summary: "Attach to a domain's console",
        details: "Shows the domain's recent output, then its output as it comes;\n\
                  what you type goes to the domain. Ctrl-] (the escape character,\n\
                  0x1d) detaches and brings the prompt back. SDK guests connect\n\
                  their console ring at start (unless their cmdline says\n\
                  console=hypercall).",
        pending: None,
        args: Args::Domain,
    },
    Verb {
        name: "pause",
        usage: "<Domain>",
        summary: "Pause execution of a domain",
        details: "<Domain> is a name or an id. 'unpause' lets it run again.",
        pending: None,
        args: Args::Domain,
    },
    Verb {
        name: "unpause",
        usage: "<Domain>",
        summary: "Unpause a paused domain",
        details: "<Domain> is a name or an id.",
        pending: None,
        args: Args::Domain,
    },
    Verb {
        name: "sched-credit",
        usage: "[-d <Domain> [-w <Weight>] [-c <Cap>]]",
        summary: "Get/set credit scheduler parameters",
        details: "Without -d, lists every domain's weight and cap. With -d, shows\n\
                  that domain's, or sets them: -w the weight (1..65535, default\n\
                  256: the share when CPUs are contended), -c the cap (percent of\n\
                  one CPU, 0 = none, up to 100 per vCPU).",
        pending: None,
        args: Args::SchedCredit,
    },
    Verb {
        name: "vcpu-pin",
        usage: "<Domain> <VCPU> <CPUs>",
        summary: "Set which CPUs a vCPU may run on",
        details: "<CPUs> is 'all' or a list like 0,2-3. The vCPU moves at its CPU's\n\
                  next scheduling decision.",
        pending: None,
        args: Args::VcpuPin,
    },
    Verb {
        name: "vcpu-list",
        usage: "[Domain, ...]",
        summary: "List the vCPUs of all or some domains",
        details: "Columns as in xl: Name, ID, VCPU, CPU (the physical CPU it is on,\n\
                  '-' when on none), State (r running, - runnable, b blocked,\n\
                  p paused, d down), Time(s) (CPU time used) and Affinity.",
        pending: None,
        args: Args::VcpuList,
    },
    Verb {
        name: "dmesg",
        usage: "",
        summary: "Show the hypervisor's log",
        details: "Prints the hypervisor's log ring (its most recent 16 KiB), oldest\n\
                  line first; says how much older text was overwritten.",
        pending: None,
        args: Args::None,
    },
    Verb {
        name: "top",
        usage: "",
        summary: "Monitor the domains' use of the machine",
        details: "Shows every domain, refreshed every second until a key is pressed,\n\
                  as xl top: NAME, ID, STATE (as in 'list'), CPU(sec) (CPU time\n\
                  used), CPU(%) (of one CPU, over the last second), MEM(k),\n\
                  VCPUS, HYPERCALLS and EVENTS (hypercalls made and events sent,\n\
                  counted by the hypervisor), IO_REQS (block requests and network\n\
                  frames dom0's back ends served for it), each total with its\n\
                  rate per second ('-' until a domain has been seen twice).",
        pending: None,
        args: Args::None,
    },
    Verb {
        name: "block-list",
        usage: "[<Domain> ...]",
        summary: "List the virtual block devices of domains",
        details: "Columns as in xl: Vdev, BE (the back-end domain), handle, state\n\
                  (the back end's XenbusState: 2 waiting, 4 connected, 6 closed),\n\
                  evt-ch and ring-ref (published by the front end, -1 before),\n\
                  then ours: target (the dom0 disk), region (first sector +\n\
                  sectors), mode (r or w) and requests served. Without a domain,\n\
                  every domain with a disk.",
        pending: None,
        args: Args::Devices,
    },
    Verb {
        name: "network-list",
        usage: "[<Domain> ...]",
        summary: "List the virtual network interfaces of domains",
        details: "Columns as in xl: Idx, BE (the back-end domain), Mac Addr.,\n\
                  handle, state (the back end's XenbusState: 2 waiting, 4\n\
                  connected, 6 closed), evt-ch and tx-/rx-ring-ref (published by\n\
                  the front end, -1 before), then frames moved both ways.\n\
                  Without a domain, every domain with an interface.",
        pending: None,
        args: Args::Devices,
    },
    Verb {
        name: "store-ls",
        usage: "[<Path>]",
        summary: "List the configuration store below a path",
        details: "Prints every node below <Path> (default /) as xenstore-ls does:\n\
                  one per line, indented by depth, name = \"value\".",
        pending: None,
        args: Args::Store,
    },
    Verb {
        name: "store-read",
        usage: "<Path>",
        summary: "Print the value of a configuration store node",
        details: "<Path> is absolute (/local/domain/1/name).",
        pending: None,
        args: Args::Store,
    },
    Verb {
        name: "store-write",
        usage: "<Path> <Value>",
        summary: "Write a value to a configuration store node",
        details: "Creates the node and those above it if missing; the rest of the\n\
                  line is the value. Watches on it and above it fire.",
        pending: None,
        args: Args::Store,
    },
    Verb {
        name: "fs-ls",
        usage: "[<Path>]",
        summary: "List the guest library (dom0's filesystem disk)",
        details: "Lists directory <Path> (default /) of the guest library: the\n\
                  ext2/3/4 filesystem on the dom0 disk dom0.fs=<disk> names, or\n\
                  else the first disk holding one that no boot configuration\n\
                  uses. One line per entry: size in bytes (<dir> for a\n\
                  directory), name (/ after a directory's). 'create <Path>'\n\
                  starts a domain from a *.toml listed here.",
        pending: None,
        args: Args::FsPath,
    },
    Verb {
        name: "info",
        usage: "",
        summary: "Get information about the hypervisor and the machine",
        details: "Shows the ABI versions the hypervisor implements, its features\n\
                  for dom0, the CPUs and the memory (total and free, in MiB).",
        pending: None,
        args: Args::None,
    },
    Verb {
        name: "poweroff",
        usage: "",
        summary: "Shut every domain down and power the machine off",
        details: "Asks every domain to shut down (control/shutdown, as 'shutdown'\n\
                  does), waits up to 3 s for them, destroys what is left, then dom0\n\
                  shuts down and the hypervisor turns the machine off.",
        pending: None,
        args: Args::None,
    },
];

/// Verbs of `xl` the shell will have but does not yet, with what they wait
/// for. They are recognised so that they say so instead of "unknown".
pub static PLANNED: &[(&str, &str)] = &[];

/// The verb called `name`.
pub fn verb(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|v| v.name == name)
}

/// A parsed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A blank line.
    Empty,
    /// `help`, or `help <verb>` / `<verb> --help`.
    Help(Option<&'static Verb>),
    /// `list [<Domain> ...]`.
    List(Vec<Dom>),
    /// `create <ConfigFile>`.
    Create(String),
    /// `destroy <Domain>`.
    Destroy(Dom),
    /// `pause <Domain>`.
    Pause(Dom),
    /// `console <Domain>`.
    Console(Dom),
    /// `unpause <Domain>`.
    Unpause(Dom),
    /// `shutdown [-w] [-F] <Domain>` / `reboot [-w] [-F] <Domain>`.
    Shutdown {
        /// The domain.
        dom: Dom,
        /// What it is asked to do: `Poweroff` or `Reboot`.
        reason: ShutdownReason,
        /// Wait until it has shut down (`-w`).
        wait: bool,
        /// Destroy it if it has not shut down in time (`-F`).
        force: bool,
    },
    /// `sched-credit [-d <Domain> [-w <Weight>] [-c <Cap>]]`.
    SchedCredit {
        /// The domain (`None`: list all).
        dom: Option<Dom>,
        /// New weight.
        weight: Option<u32>,
        /// New cap.
        cap: Option<u32>,
    },
    /// `vcpu-pin <Domain> <VCPU> <CPUs>`.
    VcpuPin {
        /// The domain.
        dom: Dom,
        /// The vCPU index.
        vcpu: u32,
        /// The CPU mask.
        cpus: u64,
    },
    /// `vcpu-list [<Domain> ...]`.
    VcpuList(Vec<Dom>),
    /// `dmesg`.
    Dmesg,
    /// `top`.
    Top,
    /// `block-list [<Domain> ...]`.
    BlockList(Vec<Dom>),
    /// `network-list [<Domain> ...]`.
    NetworkList(Vec<Dom>),
    /// `store-ls [<Path>]`.
    StoreLs(Option<String>),
    /// `store-read <Path>`.
    StoreRead(String),
    /// `store-write <Path> <Value>`.
    StoreWrite {
        /// The node.
        path: String,
        /// The value (the rest of the line, single-spaced).
        value: String,
    },
    /// `fs-ls [<Path>]`.
    FsLs(Option<String>),
    /// `info`.
    Info,
    /// `poweroff`.
    Poweroff,
    /// A verb that exists but cannot work yet, and why.
    NotYet {
        /// The verb.
        verb: &'static str,
        /// What it waits for.
        why: &'static str,
    },
}

/// Why a line is not a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The first word is no verb.
    Unknown(String),
    /// The arguments do not fit the verb.
    Usage {
        /// The verb.
        verb: &'static Verb,
        /// What is wrong.
        problem: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(w) => write!(f, "unknown command '{w}' (type 'help' for the list)"),
            Self::Usage { verb, problem } => {
                write!(f, "{}: {problem} (usage: {})", verb.name, usage_line(verb))
            }
        }
    }
}

/// `<name> <usage>`, without trailing space for verbs without arguments.
pub fn usage_line(verb: &Verb) -> String {
    let mut s = String::from(verb.name);
    if !verb.usage.is_empty() {
        s.push(' ');
        s.push_str(verb.usage);
    }
    s
}

/// Parses one entered line.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Ok(Command::Empty);
    };
    let Some(verb) = verb(first) else {
        return match PLANNED.iter().find(|(name, _)| *name == first) {
            Some(&(verb, why)) => Ok(Command::NotYet { verb, why }),
            None => Err(ParseError::Unknown(first.into())),
        };
    };
    let args: Vec<&str> = words.collect();
    if args.iter().any(|a| *a == "--help" || *a == "-h") {
        return Ok(Command::Help(Some(verb)));
    }
    let usage = |problem: String| ParseError::Usage { verb, problem };
    if verb.args == Args::SchedCredit {
        return parse_sched_credit(&args).map_err(usage);
    }
    if verb.args == Args::Store {
        return parse_store(verb.name, &args).map_err(usage);
    }
    if verb.args == Args::Shutdown {
        return parse_shutdown(verb.name, &args).map_err(usage);
    }
    if let Some(opt) = args.iter().find(|a| a.starts_with('-')) {
        return Err(usage(alloc::format!("unknown option '{opt}'")));
    }
    let one = |what: &str| match args.as_slice() {
        [a] => Ok(*a),
        [] => Err(usage(alloc::format!("missing {what}"))),
        [_, extra, ..] => Err(usage(alloc::format!("unexpected argument '{extra}'"))),
    };
    let cmd = match verb.args {
        Args::None => match args.first() {
            None => None,
            Some(extra) => return Err(usage(alloc::format!("unexpected argument '{extra}'"))),
        },
        Args::Domains => Some(Command::List(args.iter().map(|a| Dom::parse(a)).collect())),
        Args::VcpuList => Some(Command::VcpuList(
            args.iter().map(|a| Dom::parse(a)).collect(),
        )),
        Args::Config => Some(Command::Create(one("<ConfigFile>")?.to_string())),
        Args::Domain => {
            let dom = Dom::parse(one("<Domain>")?);
            match verb.name {
                "destroy" => Some(Command::Destroy(dom)),
                "pause" => Some(Command::Pause(dom)),
                "console" => Some(Command::Console(dom)),
                "unpause" => Some(Command::Unpause(dom)),
                _ => None,
            }
        }
        Args::SchedCredit | Args::Store | Args::Shutdown => None,
        Args::FsPath => match args.as_slice() {
            [] => Some(Command::FsLs(None)),
            [path] => Some(Command::FsLs(Some(path.to_string()))),
            [_, extra, ..] => return Err(usage(alloc::format!("unexpected argument '{extra}'"))),
        },
        Args::Devices => {
            let doms = args.iter().map(|a| Dom::parse(a)).collect();
            match verb.name {
                "block-list" => Some(Command::BlockList(doms)),
                "network-list" => Some(Command::NetworkList(doms)),
                _ => None,
            }
        }
        Args::VcpuPin => match args.as_slice() {
            [dom, vcpu, cpus] => Some(Command::VcpuPin {
                dom: Dom::parse(dom),
                vcpu: vcpu
                    .parse()
                    .map_err(|_| usage(alloc::format!("bad <VCPU> '{vcpu}'")))?,
                cpus: parse_cpus(cpus)
                    .ok_or_else(|| usage(alloc::format!("bad <CPUs> '{cpus}'")))?,
            }),
            _ => return Err(usage("expected <Domain> <VCPU> <CPUs>".into())),
        },
        Args::OptionalVerb => match args.as_slice() {
            [] => Some(Command::Help(None)),
            [name] => match self::verb(name) {
                Some(v) => Some(Command::Help(Some(v))),
                None => return Err(usage(alloc::format!("no verb '{name}'"))),
            },
            [_, extra, ..] => return Err(usage(alloc::format!("unexpected argument '{extra}'"))),
        },
    };
    Ok(match (cmd, verb.pending) {
        (_, Some(why)) => Command::NotYet {
            verb: verb.name,
            why,
        },
        (Some(cmd), None) => cmd,
        (None, None) => match verb.name {
            "info" => Command::Info,
            "dmesg" => Command::Dmesg,
            "top" => Command::Top,
            "poweroff" => Command::Poweroff,
            _ => Command::Help(Some(verb)),
        },
    })
}

/// The text of `help`: one line per verb, then the verbs still to come.
pub fn help_text() -> String {
    let mut s = String::from("Verbs ('<verb> --help' shows how to use one):\n\n");
    for v in VERBS {
        let _ = write!(s, " {:<14}{}", v.name, v.summary);
        if v.pending.is_some() {
            s.push_str(" (not supported yet)");
        }
        s.push('\n');
    }
    if !PLANNED.is_empty() {
        s.push_str("\nNot supported yet:");
        for (name, _) in PLANNED {
            s.push(' ');
            s.push_str(name);
        }
        s.push('\n');
    }
    s
}

/// The text of `<verb> --help`, in xl's shape.
pub fn verb_help(verb: &Verb) -> String {
    let mut s = alloc::format!(
        "Usage: {}\n\n{}.\n\n{}\n",
        usage_line(verb),
        verb.summary,
        verb.details
    );
    if let Some(why) = verb.pending {
        let _ = writeln!(s, "\nNot supported yet: {why}.");
    }
    s
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
