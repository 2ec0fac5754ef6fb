//! Parsing the arguments of the shell verbs that take options or free
//! text: `sched-credit`, `shutdown`/`reboot`, the store verbs, CPU lists.

use alloc::string::String;
use tern_abi::sched::ShutdownReason;

use super::{Command, Dom};

/// `sched-credit`'s arguments (xl's options: `-d`, `-w`, `-c`).
pub(super) fn parse_sched_credit(args: &[&str]) -> Result<Command, String> {
    let (mut dom, mut weight, mut cap) = (None, None, None);
    let mut it = args.iter();
    while let Some(&opt) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| alloc::format!("{opt} needs a value"))?;
        let number = || {
            value
                .parse::<u32>()
                .map_err(|_| alloc::format!("bad value '{value}' for {opt}"))
        };
        match opt {
            "-d" | "--domain" => dom = Some(Dom::parse(value)),
            "-w" | "--weight" => weight = Some(number()?),
            "-c" | "--cap" => cap = Some(number()?),
            _ => return Err(alloc::format!("unknown option '{opt}'")),
        }
    }
    if dom.is_none() && (weight.is_some() || cap.is_some()) {
        return Err("-w and -c need -d <Domain>".into());
    }
    Ok(Command::SchedCredit { dom, weight, cap })
}

/// `shutdown` / `reboot`: `[-w] [-F] <Domain>`.
pub(super) fn parse_shutdown(verb: &str, args: &[&str]) -> Result<Command, String> {
    let (mut wait, mut force, mut dom) = (false, false, None);
    for &a in args {
        match a {
            "-w" => wait = true,
            "-F" => force = true,
            _ if a.starts_with('-') => return Err(alloc::format!("unknown option '{a}'")),
            _ if dom.is_some() => return Err(alloc::format!("unexpected argument '{a}'")),
            _ => dom = Some(Dom::parse(a)),
        }
    }
    Ok(Command::Shutdown {
        dom: dom.ok_or("missing <Domain>")?,
        reason: if verb == "reboot" {
            ShutdownReason::Reboot
        } else {
            ShutdownReason::Poweroff
        },
        wait: wait || force,
        force,
    })
}

/// The store verbs' arguments (values may start with `-`).
pub(super) fn parse_store(verb: &str, args: &[&str]) -> Result<Command, String> {
    match (verb, args) {
        ("store-ls", []) => Ok(Command::StoreLs(None)),
        ("store-ls", [p]) => Ok(Command::StoreLs(Some((*p).into()))),
        ("store-read", [p]) => Ok(Command::StoreRead((*p).into())),
        ("store-write", [p, value @ ..]) if !value.is_empty() => Ok(Command::StoreWrite {
            path: (*p).into(),
            value: value.join(" "),
        }),
        ("store-write", [_]) => Err("missing <Value>".into()),
        (_, []) => Err("missing <Path>".into()),
        (_, [_, extra, ..]) => Err(alloc::format!("unexpected argument '{extra}'")),
        (_, [_]) => Err(alloc::format!("{verb} is not a store verb")),
    }
}

/// A CPU list: `all`, or comma-separated numbers and ranges (`0,2-3`).
pub fn parse_cpus(text: &str) -> Option<u64> {
    if text == "all" {
        return Some(u64::MAX);
    }
    let mut mask = 0u64;
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi >= u64::BITS {
            return None;
        }
        for c in lo..=hi {
            mask |= 1 << c;
        }
    }
    Some(mask)
}
