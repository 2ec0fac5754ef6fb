//! Tests of the shell's parser and help texts (`super` is `shell`).

use super::*;
use alloc::vec;

fn err(line: &str) -> String {
    parse(line).unwrap_err().to_string()
}

#[test]
fn domains_by_id_or_name() {
    assert_eq!(Dom::parse("7"), Dom::Id(7));
    assert_eq!(Dom::parse("007"), Dom::Id(7));
    assert_eq!(Dom::parse("demo"), Dom::Name("demo".into()));
    assert_eq!(Dom::parse("+7"), Dom::Name("+7".into()));
    assert_eq!(Dom::parse("99999999999"), Dom::Name("99999999999".into()));
    assert_eq!(Dom::parse("Domain-0").to_string(), "Domain-0");
}

#[test]
fn parses_each_verb() {
    assert_eq!(parse("   "), Ok(Command::Empty));
    assert_eq!(parse("help"), Ok(Command::Help(None)));
    assert_eq!(parse("help list"), Ok(Command::Help(verb("list"))));
    assert_eq!(parse("list"), Ok(Command::List(vec![])));
    assert_eq!(
        parse(" list  demo 3 "),
        Ok(Command::List(vec![Dom::Name("demo".into()), Dom::Id(3)]))
    );
    assert_eq!(
        parse("create demo.toml"),
        Ok(Command::Create("demo.toml".into()))
    );
    assert_eq!(
        parse("create /guests/web.toml"),
        Ok(Command::Create("/guests/web.toml".into()))
    );
    assert_eq!(parse("fs-ls"), Ok(Command::FsLs(None)));
    assert_eq!(
        parse("fs-ls /guests"),
        Ok(Command::FsLs(Some("/guests".into())))
    );
    assert_eq!(
        parse("fs-ls /a /b").unwrap_err().to_string(),
        "fs-ls: unexpected argument '/b' (usage: fs-ls [<Path>])"
    );
    assert_eq!(parse("fs-ls --help"), Ok(Command::Help(verb("fs-ls"))));
    assert_eq!(parse("destroy 1"), Ok(Command::Destroy(Dom::Id(1))));
    assert_eq!(
        parse("pause demo"),
        Ok(Command::Pause(Dom::Name("demo".into())))
    );
    assert_eq!(parse("unpause 2"), Ok(Command::Unpause(Dom::Id(2))));
    assert_eq!(parse("info"), Ok(Command::Info));
    assert_eq!(parse("poweroff"), Ok(Command::Poweroff));
    assert_eq!(
        parse("shutdown demo"),
        Ok(Command::Shutdown {
            dom: Dom::Name("demo".into()),
            reason: ShutdownReason::Poweroff,
            wait: false,
            force: false
        })
    );
    assert_eq!(
        parse("shutdown -w 3"),
        Ok(Command::Shutdown {
            dom: Dom::Id(3),
            reason: ShutdownReason::Poweroff,
            wait: true,
            force: false
        })
    );
    assert_eq!(
        parse("reboot -F demo"),
        Ok(Command::Shutdown {
            dom: Dom::Name("demo".into()),
            reason: ShutdownReason::Reboot,
            wait: true,
            force: true
        })
    );
    assert!(err("reboot -x 3").contains("unknown option '-x'"));
    assert!(err("reboot 3 4").contains("unexpected argument '4'"));
    assert_eq!(parse("dmesg"), Ok(Command::Dmesg));
    assert_eq!(parse("vcpu-list"), Ok(Command::VcpuList(vec![])));
    assert_eq!(
        parse("vcpu-list demo 0"),
        Ok(Command::VcpuList(vec![
            Dom::Name("demo".into()),
            Dom::Id(0)
        ]))
    );
    assert!(err("dmesg -c").contains("unknown option '-c'"));
}

#[test]
fn every_verb_has_help() {
    for v in VERBS {
        assert_eq!(
            parse(&alloc::format!("{} --help", v.name)),
            Ok(Command::Help(Some(v)))
        );
        assert_eq!(
            parse(&alloc::format!("{} x -h", v.name)),
            Ok(Command::Help(Some(v)))
        );
        let text = verb_help(v);
        assert!(
            text.starts_with(&alloc::format!("Usage: {}", v.name)),
            "{text}"
        );
        assert!(help_text().contains(&alloc::format!(" {:<14}{}", v.name, v.summary)));
    }
    assert!(verb_help(verb("shutdown").unwrap()).contains("-F  if it has not shut down"));
    // Every verb of the plan exists now: no "not supported" list.
    assert_eq!(
        help_text().contains("\nNot supported yet:"),
        !PLANNED.is_empty()
    );
}

#[test]
fn top_and_device_lists() {
    assert_eq!(parse("top"), Ok(Command::Top));
    assert_eq!(err("top 3"), "top: unexpected argument '3' (usage: top)");
    assert_eq!(parse("block-list"), Ok(Command::BlockList(alloc::vec![])));
    assert_eq!(
        parse("block-list 2 web"),
        Ok(Command::BlockList(alloc::vec![
            Dom::Id(2),
            Dom::Name("web".into())
        ]))
    );
    assert_eq!(
        parse("network-list 1"),
        Ok(Command::NetworkList(alloc::vec![Dom::Id(1)]))
    );
    assert_eq!(
        err("network-list -x"),
        "network-list: unknown option '-x' (usage: network-list [<Domain> ...])"
    );
    for name in ["top", "block-list", "network-list"] {
        assert!(verb(name).is_some_and(|v| v.pending.is_none()), "{name}");
        assert!(!PLANNED.iter().any(|(p, _)| *p == name), "{name}");
    }
}

#[test]
fn bad_lines_give_one_line_errors() {
    assert_eq!(
        err("frobnicate 3"),
        "unknown command 'frobnicate' (type 'help' for the list)"
    );
    assert_eq!(
        err("destroy"),
        "destroy: missing <Domain> (usage: destroy <Domain>)"
    );
    assert_eq!(
        err("pause a b"),
        "pause: unexpected argument 'b' (usage: pause <Domain>)"
    );
    assert_eq!(
        err("create"),
        "create: missing <ConfigFile> (usage: create <ConfigFile>)"
    );
    assert_eq!(
        err("info now"),
        "info: unexpected argument 'now' (usage: info)"
    );
    assert_eq!(
        err("list -l"),
        "list: unknown option '-l' (usage: list [<Domain> ...])"
    );
    assert_eq!(
        err("help nope"),
        "help: no verb 'nope' (usage: help [<Verb>])"
    );
    assert_eq!(
        err("shutdown"),
        "shutdown: missing <Domain> (usage: shutdown [-w] [-F] <Domain>)"
    );
    for line in ["frobnicate", "destroy", "pause a b", "list -l"] {
        assert!(!err(line).contains('\n'));
    }
}

#[test]
fn sched_credit_and_vcpu_pin() {
    assert_eq!(
        parse("sched-credit"),
        Ok(Command::SchedCredit {
            dom: None,
            weight: None,
            cap: None
        })
    );
    assert_eq!(
        parse("sched-credit -d demo -w 512 -c 50"),
        Ok(Command::SchedCredit {
            dom: Some(Dom::Name("demo".into())),
            weight: Some(512),
            cap: Some(50)
        })
    );
    assert!(parse("sched-credit -w 5").is_err(), "-w needs -d");
    assert!(parse("sched-credit -d 1 -w").is_err(), "missing value");
    assert!(parse("sched-credit -d 1 -x 3").is_err(), "unknown option");
    assert!(parse("sched-credit -d 1 -w many").is_err(), "not a number");
    assert_eq!(
        parse("vcpu-pin 1 0 0,2-3"),
        Ok(Command::VcpuPin {
            dom: Dom::Id(1),
            vcpu: 0,
            cpus: 0b1101
        })
    );
    assert_eq!(parse_cpus("all"), Some(u64::MAX));
    for bad in ["", "3-1", "x", "64", "1,"] {
        assert_eq!(parse_cpus(bad), None, "{bad:?}");
    }
    assert!(parse("vcpu-pin 1 0").is_err());
}

#[test]
fn console_verb() {
    assert_eq!(
        parse("console echo1"),
        Ok(Command::Console(Dom::Name("echo1".into())))
    );
    assert_eq!(parse("console 3"), Ok(Command::Console(Dom::Id(3))));
    assert!(err("console").contains("missing <Domain>"));
    assert!(verb_help(verb("console").unwrap()).contains("Ctrl-]"));
}
