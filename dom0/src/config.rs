//! Domain configuration files (`*.toml` boot modules).
//!
//! One domain per file, in a subset of TOML: `key = value` lines, `#`
//! comments, blank lines. Values are basic strings (`"..."`, escapes `\"`,
//! `\\`, `\t`, `\n`), integers (decimal or `0x` hex, `_` separators) and
//! booleans. Tables, arrays and other TOML forms are rejected with the line
//! number, so a config written for a later dom0 fails loudly.
//!
//! ```toml
//! name = "demo"         # required, [A-Za-z0-9._-], at most 31 bytes
//! memory = 16           # required, MiB
//! vcpus = 1             # default 1
//! image = "demo-guest"  # required: the boot module holding the ELF
//! cmdline = "count=3"   # default empty, printable ASCII, at most 255 bytes
//! autostart = true      # default true
//! weight = 512          # default: the hypervisor's (256); 1..=65535
//! cap = 50              # default none; percent of one CPU, 1..=100 * vcpus
//! on_crash = "restart"  # default "destroy"; or "preserve"
//! disk = ["target=vda, access=ro"]   # see crate::devspec
//! vif = ["mac=00:16:3e:00:00:01"]
//! ```
//!
//! Arrays hold strings and sit on one line. `on_crash` says what dom0 does
//! when the hypervisor reports the domain crashed: destroy it, restart it
//! (with a growing back-off, so a guest that crashes at once cannot spin the
//! machine), or keep it for inspection (`list` shows it crashed).
//!
//! `weight` and `cap` are the credit scheduler's parameters (`domctl
//! sched_set`): the domain's share of contended CPU time, relative to the
//! other domains' weights, and a ceiling on its CPU time even when CPUs idle.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::devspec::{self, DiskSpec, MAX_DEVICES, SpecError, VifSpec};
use tern_abi::domctl::{CreateDomain, SCHED_WEIGHT_MAX};
use tern_abi::layout::{GUEST_RAM_MAX_SIZE, GUEST_RAM_MIN_SIZE};
use tern_abi::{PAGE_SIZE, strings};
use zerocopy::FromZeros;

/// One domain's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// The domain's name.
    pub name: String,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Name of the boot module with the ELF image.
    pub image: String,
    /// The command line handed to the guest in its start-info page.
    pub cmdline: String,
    /// Whether dom0 starts the domain at boot.
    pub autostart: bool,
    /// Scheduling weight, if the file sets one.
    pub weight: Option<u64>,
    /// Cap in percent of one CPU, if the file sets one.
    pub cap: Option<u64>,
    /// What to do when it crashes.
    pub on_crash: OnCrash,
    /// Its virtual disks.
    pub disks: Vec<DiskSpec>,
    /// Its virtual network interfaces.
    pub vifs: Vec<VifSpec>,
}

/// What dom0 does with a domain that crashed (`on_crash`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnCrash {
    /// Destroy it.
    #[default]
    Destroy,
    /// Destroy it and create it again, after a back-off.
    Restart,
    /// Leave it as it is, for inspection; `destroy` removes it.
    Preserve,
}

/// What is wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A line is not `key = value`.
    Syntax {
        /// 1-based line number.
        line: usize,
    },
    /// A key this dom0 does not know.
    UnknownKey {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
    },
    /// A key given twice.
    Duplicate {
        /// 1-based line number of the second occurrence.
        line: usize,
        /// The key.
        key: &'static str,
    },
    /// A value of the wrong type or out of range.
    BadValue {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// An entry of `disk` or `vif` is refused.
    BadDevice {
        /// 1-based line number.
        line: usize,
        /// `disk` or `vif`.
        key: &'static str,
        /// 0-based position in the array.
        index: usize,
        /// What is wrong with it.
        reason: SpecError,
    },
    /// A required key is missing.
    Missing(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { line } => write!(f, "line {line}: expected `key = value`"),
            Self::UnknownKey { line, key } => write!(f, "line {line}: unknown key `{key}`"),
            Self::Duplicate { line, key } => write!(f, "line {line}: `{key}` given twice"),
            Self::BadValue {
                line,
                key,
                expected,
            } => write!(f, "line {line}: `{key}` must be {expected}"),
            Self::BadDevice {
                line,
                key,
                index,
                reason,
            } => write!(f, "line {line}: {key} entry {index}: {reason}"),
            Self::Missing(key) => write!(f, "missing required key `{key}`"),
        }
    }
}

/// A parsed right-hand side.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    Str(String),
    Int(u64),
    Bool(bool),
    /// An array of strings.
    List(Vec<String>),
}

/// Reads a basic string after its opening quote: the string and the rest.
fn parse_str(rest: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => break,
            '\\' => out.push(match chars.next()? {
                '"' => '"',
                '\\' => '\\',
                't' => '\t',
                'n' => '\n',
                _ => return None,
            }),
            c => out.push(c),
        }
    }
    Some((out, chars.as_str()))
}

/// Only a comment (or nothing) may follow a value.
fn at_end(tail: &str) -> bool {
    let tail = tail.trim_start();
    tail.is_empty() || tail.starts_with('#')
}

/// Parses a value and what follows it (only a comment may).
fn parse_value(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('"') {
        let (s, tail) = parse_str(rest)?;
        return at_end(tail).then_some(Value::Str(s));
    }
    if let Some(mut rest) = text.strip_prefix('[') {
        let mut items = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(tail) = rest.strip_prefix(']') {
                return at_end(tail).then_some(Value::List(items));
            }
            let (s, tail) = parse_str(rest.strip_prefix('"')?)?;
            items.push(s);
            rest = tail.trim_start();
            if let Some(tail) = rest.strip_prefix(',') {
                rest = tail;
            } else if !rest.starts_with(']') {
                return None;
            }
        }
    }
    let bare = text.split('#').next().unwrap_or("").trim_end();
    match bare {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        _ => pv_guest_sdk::cmdline::parse_u64(bare).map(Value::Int),
    }
}

/// The keys a configuration may hold, in the order of [`DomainConfig`].
const KEYS: [&str; 11] = [
    "name",
    "memory",
    "vcpus",
    "image",
    "cmdline",
    "autostart",
    "weight",
    "cap",
    "on_crash",
    "disk",
    "vif",
];

/// Cap percentage per vCPU: 100 is one whole physical CPU.
const CAP_PER_VCPU: u64 = 100;

/// Parses a configuration file.
pub fn parse(text: &str) -> Result<DomainConfig, ConfigError> {
    let mut seen = [false; KEYS.len()];
    let mut cfg = DomainConfig {
        name: String::new(),
        memory_mib: 0,
        vcpus: 1,
        image: String::new(),
        cmdline: String::new(),
        autostart: true,
        weight: None,
        cap: None,
        on_crash: OnCrash::Destroy,
        disks: Vec::new(),
        vifs: Vec::new(),
    };
    // Where `cap` was given: it is checked against `vcpus` at the end, since
    // the keys may come in any order.
    let mut cap_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (key, value) = trimmed
            .split_once('=')
            .ok_or(ConfigError::Syntax { line })?;
        let key = key.trim();
        let k = KEYS
            .iter()
            .position(|&k| k == key)
            .ok_or_else(|| ConfigError::UnknownKey {
                line,
                key: key.into(),
            })?;
        let key = KEYS[k];
        if core::mem::replace(&mut seen[k], true) {
            return Err(ConfigError::Duplicate { line, key });
        }
        let bad = |expected| ConfigError::BadValue {
            line,
            key,
            expected,
        };
        let value = parse_value(value)
            .ok_or_else(|| bad("a string, integer, boolean or array of strings"))?;
        let device = |index, reason| ConfigError::BadDevice {
            line,
            key,
            index,
            reason,
        };
        match (key, value) {
            ("on_crash", Value::Str(s)) => {
                cfg.on_crash = match s.as_str() {
                    "destroy" => OnCrash::Destroy,
                    "restart" => OnCrash::Restart,
                    "preserve" => OnCrash::Preserve,
                    _ => return Err(bad("\"destroy\", \"restart\" or \"preserve\"")),
                }
            }
            ("on_crash", _) => return Err(bad("\"destroy\", \"restart\" or \"preserve\"")),
            ("disk" | "vif", Value::List(items)) if items.len() <= MAX_DEVICES => {
                for (i, item) in items.iter().enumerate() {
                    if key == "disk" {
                        cfg.disks
                            .push(devspec::parse_disk(item, i).map_err(|e| device(i, e))?);
                    } else {
                        cfg.vifs
                            .push(devspec::parse_vif(item).map_err(|e| device(i, e))?);
                    }
                }
            }
            ("disk" | "vif", _) => return Err(bad("an array of at most 8 strings")),
            ("name", Value::Str(s)) if strings::is_valid_name(s.as_bytes()) => cfg.name = s,
            ("name", _) => return Err(bad("a string of 1..=31 characters [A-Za-z0-9._-]")),
            ("memory", Value::Int(m)) if memory_ok(m) => cfg.memory_mib = m,
            ("memory", _) => {
                return Err(bad("an integer number of MiB within the guest RAM limits"));
            }
            ("vcpus", Value::Int(n)) if n >= 1 && n <= u64::from(u32::MAX) => cfg.vcpus = n as u32,
            ("vcpus", _) => return Err(bad("an integer of at least 1")),
            ("image", Value::Str(s)) if !s.is_empty() && s.len() <= tern_abi::module::NAME_MAX => {
                cfg.image = s
            }
            ("image", _) => return Err(bad("a boot module name")),
            ("cmdline", Value::Str(s)) if cmdline_ok(&s) => cfg.cmdline = s,
            ("cmdline", _) => return Err(bad("printable ASCII of at most 255 bytes")),
            ("autostart", Value::Bool(b)) => cfg.autostart = b,
            ("autostart", _) => return Err(bad("a boolean")),
            ("weight", Value::Int(w)) if (1..=SCHED_WEIGHT_MAX).contains(&w) => {
                cfg.weight = Some(w)
            }
            ("weight", _) => return Err(bad("an integer in 1..=65535")),
            ("cap", Value::Int(c)) if c >= 1 => {
                cfg.cap = Some(c);
                cap_line = line;
            }
            // Every other key has its own arms above: only `cap` is left.
            _ => return Err(bad("an integer percentage of at least 1")),
        }
    }
    if cfg
        .cap
        .is_some_and(|c| c > CAP_PER_VCPU * u64::from(cfg.vcpus))
    {
        return Err(ConfigError::BadValue {
            line: cap_line,
            key: "cap",
            expected: "at most 100 per vCPU",
        });
    }
    for (k, required) in [(0, "name"), (1, "memory"), (3, "image")] {
        if !seen[k] {
            return Err(ConfigError::Missing(required));
        }
    }
    Ok(cfg)
}

const MIB: u64 = 1024 * 1024;

fn memory_ok(mib: u64) -> bool {
    mib.checked_mul(MIB)
        .is_some_and(|b| (GUEST_RAM_MIN_SIZE..=GUEST_RAM_MAX_SIZE).contains(&b))
}

fn cmdline_ok(s: &str) -> bool {
    s.len() <= strings::CMDLINE_MAX && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

impl DomainConfig {
    /// The `domctl create` argument for this domain.
    pub fn to_create(&self) -> CreateDomain {
        let mut c = CreateDomain::new_zeroed();
        // Lengths were checked by `parse`, so the fields always fit.
        let _ = strings::set_field(&mut c.name, self.name.as_bytes());
        let _ = strings::set_field(&mut c.cmdline, self.cmdline.as_bytes());
        c.memory_pages = self.memory_mib * (MIB / PAGE_SIZE);
        c.vcpus = self.vcpus;
        c
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
