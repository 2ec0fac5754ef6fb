//! What the shell prints, in `xl`'s shapes: the `list` and `vcpu-list`
//! tables, the `info` lines, and finding a domain by id or name.

use alloc::string::String;
use core::fmt::Write;
use pv_guest_sdk::domctl::VcpuInfo;
use tern_abi::domctl::{DomainFlags, DomainInfo, DomainState, VcpuRunState};
use tern_abi::sched::ShutdownReason;
use tern_abi::{Features, PAGE_SIZE, Version, strings};

use crate::shell::Dom;

/// The name `list` shows for dom0, as `xl` does.
pub const DOM0_NAME: &str = "Domain-0";

const MIB: u64 = 1024 * 1024;

/// Whether `info` is dom0.
pub fn is_dom0(info: &DomainInfo) -> bool {
    DomainFlags::from_bits_retain(info.flags).contains(DomainFlags::IS_DOM0)
}

/// The domain's name as the hypervisor knows it.
pub fn raw_name(info: &DomainInfo) -> &str {
    strings::field_str(&info.name).unwrap_or("?")
}

/// The name the shell shows: [`DOM0_NAME`] for dom0, else its own.
pub fn name(info: &DomainInfo) -> &str {
    if is_dom0(info) {
        DOM0_NAME
    } else {
        raw_name(info)
    }
}

/// Whether `dom` names this domain (by id, shown name or hypervisor name).
pub fn matches(info: &DomainInfo, dom: &Dom) -> bool {
    match dom {
        Dom::Id(id) => info.domain_id == *id,
        Dom::Name(n) => n == name(info) || n == raw_name(info),
    }
}

/// The domain `dom` names among `domains`.
pub fn find<'a>(domains: &'a [DomainInfo], dom: &Dom) -> Option<&'a DomainInfo> {
    domains.iter().find(|d| matches(d, dom))
}

/// `xl`'s six state letters, `-` where a state does not hold: `r` running,
/// `b` blocked, `p` paused, `s` shut down, `c` crashed, `d` dying. A guest
/// that shut down because it crashed shows both `s` and `c`, as in `xl`.
pub fn state_letters(info: &DomainInfo) -> [u8; 6] {
    let mut s = *b"------";
    match DomainState::from_raw(info.state) {
        Some(DomainState::Running) => s[0] = b'r',
        Some(DomainState::Blocked) => s[1] = b'b',
        Some(DomainState::Paused) => s[2] = b'p',
        Some(DomainState::Shutdown) => {
            s[3] = b's';
            if ShutdownReason::from_raw(info.shutdown_reason) == Some(ShutdownReason::Crash) {
                s[4] = b'c';
            }
        }
        Some(DomainState::Crashed) => s[4] = b'c',
        Some(DomainState::Dying) => s[5] = b'd',
        None => {}
    }
    s
}

/// Nanoseconds as seconds with one decimal, as xl shows CPU time.
pub fn seconds(ns: u64) -> String {
    let tenths = ns / 100_000_000;
    alloc::format!("{}.{}", tenths / 10, tenths % 10)
}

/// The header line of `list`.
pub fn list_header() -> String {
    alloc::format!(
        "{:<40} {:>5} {:>5} {:>5}     {:<6} {:>9}",
        "Name",
        "ID",
        "Mem",
        "VCPUs",
        "State",
        "Time(s)"
    )
}

/// One line of `list`: memory in MiB, CPU time in seconds with one decimal.
pub fn list_row(info: &DomainInfo) -> String {
    let letters = state_letters(info);
    let state = core::str::from_utf8(&letters).unwrap_or("------");
    let time = seconds(info.cpu_time_ns);
    alloc::format!(
        "{:<40} {:>5} {:>5} {:>5}     {:<6} {:>9}",
        name(info),
        info.domain_id,
        info.memory_pages * PAGE_SIZE / MIB,
        info.vcpus,
        state,
        time
    )
}

/// The header line of `vcpu-list` (xl's columns).
pub fn vcpu_list_header() -> String {
    alloc::format!(
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>9}  {}",
        "Name",
        "ID",
        "VCPU",
        "CPU",
        "State",
        "Time(s)",
        "Affinity"
    )
}

/// One line of `vcpu-list`; `cpus` is the number of physical CPUs online.
pub fn vcpu_list_row(info: &DomainInfo, vcpu: u32, v: &VcpuInfo, cpus: u64) -> String {
    let state = match v.state {
        VcpuRunState::Running => "r",
        VcpuRunState::Runnable => "-",
        VcpuRunState::Blocked => "b",
        VcpuRunState::Paused => "p",
        VcpuRunState::Down => "d",
    };
    let cpu = v
        .cpu
        .map_or_else(|| String::from("-"), |c| alloc::format!("{c}"));
    let time = seconds(v.time_ns);
    alloc::format!(
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>9}  {}",
        name(info),
        info.domain_id,
        vcpu,
        cpu,
        state,
        time,
        cpu_list(v.affinity, cpus)
    )
}

/// A CPU mask as `vcpu-pin` takes it: `all` when it holds every online CPU,
/// else numbers and ranges (`0,2-3`).
pub fn cpu_list(mask: u64, cpus: u64) -> String {
    let online = if cpus >= 64 {
        u64::MAX
    } else {
        (1 << cpus) - 1
    };
    if mask & online == online {
        return String::from("all");
    }
    let mut s = String::new();
    let mut cpu = 0;
    while cpu < 64 {
        if mask & (1 << cpu) == 0 {
            cpu += 1;
            continue;
        }
        let first = cpu;
        while cpu < 64 && mask & (1 << cpu) != 0 {
            cpu += 1;
        }
        if !s.is_empty() {
            s.push(',');
        }
        match cpu - 1 - first {
            0 => s.push_str(&alloc::format!("{first}")),
            _ => s.push_str(&alloc::format!("{first}-{}", cpu - 1)),
        }
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

/// What `info` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// Guest ABI the hypervisor implements.
    pub guest_abi: Version,
    /// Control ABI the hypervisor implements.
    pub control_abi: Version,
    /// Families available to dom0.
    pub features: Features,
    /// Physical CPUs online.
    pub cpus: u64,
    /// Pages the hypervisor manages for domains.
    pub total_pages: u64,
    /// Pages no domain holds.
    pub free_pages: u64,
}

/// The `info` lines, `key : value` with keys padded as `xl info` pads them.
/// `dom0_version` is this dom0's version: dom0 and the hypervisor are built
/// and released together.
pub fn info_text(h: &HostInfo, dom0_version: &str) -> String {
    let mut features = String::new();
    for (name, _, flag) in Features::ALL {
        if h.features.contains(*flag) {
            if !features.is_empty() {
                features.push(' ');
            }
            features.push_str(name);
        }
    }
    let rows: [(&str, String); 8] = [
        ("hypervisor", "tern".into()),
        ("tern_version", dom0_version.into()),
        ("guest_abi", alloc::format!("{}", h.guest_abi)),
        ("control_abi", alloc::format!("{}", h.control_abi)),
        ("features", features),
        ("nr_cpus", alloc::format!("{}", h.cpus)),
        (
            "total_memory",
            alloc::format!("{}", h.total_pages * PAGE_SIZE / MIB),
        ),
        (
            "free_memory",
            alloc::format!("{}", h.free_pages * PAGE_SIZE / MIB),
        ),
    ];
    let mut s = String::new();
    for (key, value) in rows {
        let _ = writeln!(s, "{key:<23}: {value}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    fn dom(id: u32, name: &str, state: DomainState, reason: u32) -> DomainInfo {
        let mut i = DomainInfo::new_zeroed();
        i.domain_id = id;
        i.state = state.raw();
        i.shutdown_reason = reason;
        i.vcpus = 1;
        i.memory_pages = 4 * 256;
        strings::set_field(&mut i.name, name.as_bytes()).unwrap();
        if id == 0 {
            i.flags = DomainFlags::IS_DOM0.bits();
        }
        i
    }

    #[test]
    fn vcpu_rows_and_cpu_lists() {
        assert_eq!(cpu_list(0b1111, 4), "all");
        assert_eq!(cpu_list(u64::MAX, 2), "all");
        assert_eq!(cpu_list(0b1101, 8), "0,2-3");
        assert_eq!(cpu_list(0b10, 8), "1");
        assert_eq!(cpu_list(0, 8), "none");
        assert_eq!(cpu_list(1 << 63, 64), "63");
        let d = dom(3, "demo", DomainState::Running, 0);
        let v = VcpuInfo {
            state: VcpuRunState::Blocked,
            cpu: None,
            time_ns: 2_500_000_000,
            affinity: 0b101,
        };
        let row = vcpu_list_row(&d, 1, &v, 4);
        let header = vcpu_list_header();
        assert_eq!(
            header,
            "Name                                ID  VCPU   CPU State   Time(s)  Affinity"
        );
        assert_eq!(
            row,
            "demo                                 3     1     -     b       2.5  0,2"
        );
    }

    #[test]
    fn state_letters_are_xls() {
        let l = |s, r| state_letters(&dom(1, "x", s, r));
        assert_eq!(&l(DomainState::Running, 0), b"r-----");
        assert_eq!(&l(DomainState::Blocked, 0), b"-b----");
        assert_eq!(&l(DomainState::Paused, 0), b"--p---");
        assert_eq!(&l(DomainState::Shutdown, 0), b"---s--");
        assert_eq!(
            &l(DomainState::Shutdown, ShutdownReason::Crash.raw()),
            b"---sc-"
        );
        assert_eq!(&l(DomainState::Crashed, 0), b"----c-");
        assert_eq!(&l(DomainState::Dying, 0), b"-----d");
    }

    #[test]
    fn list_lines_line_up() {
        let header = list_header();
        let mut d0 = dom(0, "dom0", DomainState::Running, 0);
        d0.memory_pages = 64 * 256;
        d0.cpu_time_ns = 12_345_678_901;
        let row = list_row(&d0);
        assert_eq!(
            header,
            "Name                                        ID   Mem VCPUs     State    Time(s)"
        );
        assert_eq!(
            row,
            "Domain-0                                     0    64     1     r-----      12.3"
        );
        assert_eq!(header.len(), row.len());
        let row = list_row(&dom(12, "demo", DomainState::Paused, 0));
        assert!(row.starts_with("demo "));
        assert!(row.ends_with("    12     4     1     --p---       0.0"));
    }

    #[test]
    fn domains_are_found_by_id_or_name() {
        let all = [
            dom(0, "dom0", DomainState::Running, 0),
            dom(3, "demo", DomainState::Blocked, 0),
        ];
        assert_eq!(find(&all, &Dom::Id(3)).map(|d| d.domain_id), Some(3));
        assert_eq!(
            find(&all, &Dom::Name("demo".into())).map(|d| d.domain_id),
            Some(3)
        );
        assert_eq!(
            find(&all, &Dom::Name("Domain-0".into())).map(|d| d.domain_id),
            Some(0)
        );
        assert_eq!(
            find(&all, &Dom::Name("dom0".into())).map(|d| d.domain_id),
            Some(0)
        );
        assert_eq!(find(&all, &Dom::Id(4)), None);
        assert_eq!(find(&all, &Dom::Name("Demo".into())), None);
    }

    #[test]
    fn info_shows_versions_cpus_and_memory() {
        let h = HostInfo {
            guest_abi: Version::new(1, 0),
            control_abi: Version::new(1, 2),
            features: Features::CONSOLE | Features::DOMCTL,
            cpus: 2,
            total_pages: 1000 * 256,
            free_pages: 900 * 256 + 255,
        };
        let text = info_text(&h, "0.1.0");
        assert_eq!(
            text,
            "hypervisor             : tern\n\
             tern_version           : 0.1.0\n\
             guest_abi              : 1.0\n\
             control_abi            : 1.2\n\
             features               : console domctl\n\
             nr_cpus                : 2\n\
             total_memory           : 1000\n\
             free_memory            : 900\n"
        );
    }
}
