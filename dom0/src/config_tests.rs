//! Tests of the configuration parser (`super` is `config`).

use super::*;

const DEMO: &str = r#"
# The demo guest.
name = "demo"
memory = 16   # MiB
vcpus = 2
image = "demo-guest"
cmdline = "count=3 say=\"hi\""
autostart = false
"#;

#[test]
fn full_config() {
    let c = parse(DEMO).unwrap();
    assert_eq!(c.name, "demo");
    assert_eq!(c.memory_mib, 16);
    assert_eq!(c.vcpus, 2);
    assert_eq!(c.image, "demo-guest");
    assert_eq!(c.cmdline, "count=3 say=\"hi\"");
    assert!(!c.autostart);
    assert_eq!(c.weight, None);
    assert_eq!(c.cap, None);
    let cd = c.to_create();
    assert_eq!(cd.memory_pages, 16 * 256);
    assert_eq!(cd.vcpus, 2);
    assert!(strings::is_valid_name_field(&cd.name));
    assert!(strings::is_valid_cmdline_field(&cd.cmdline));
    assert_eq!(strings::field_str(&cd.name), Some("demo"));
}

#[test]
fn defaults() {
    let c = parse("name = \"a\"\nmemory = 0x10\nimage = \"x\"").unwrap();
    assert_eq!(c.vcpus, 1);
    assert!(c.autostart);
    assert_eq!(c.cmdline, "");
    assert_eq!(c.memory_mib, 16);
}

#[test]
fn errors_name_the_line() {
    let e = |t| parse(t).unwrap_err();
    assert_eq!(e("name \"x\""), ConfigError::Syntax { line: 1 });
    assert_eq!(
        e("\nfoo = 1"),
        ConfigError::UnknownKey {
            line: 2,
            key: "foo".into()
        }
    );
    assert_eq!(
        e("name = \"a\"\nname = \"b\""),
        ConfigError::Duplicate {
            line: 2,
            key: "name"
        }
    );
    assert!(matches!(
        e("name = \"a b\""),
        ConfigError::BadValue { key: "name", .. }
    ));
    assert!(matches!(
        e("memory = \"16\""),
        ConfigError::BadValue { key: "memory", .. }
    ));
    assert!(matches!(
        e("memory = 0"),
        ConfigError::BadValue { key: "memory", .. }
    ));
    assert!(matches!(
        e("vcpus = 0"),
        ConfigError::BadValue { key: "vcpus", .. }
    ));
    assert!(matches!(
        e("autostart = 1"),
        ConfigError::BadValue {
            key: "autostart",
            ..
        }
    ));
    assert!(matches!(
        e("cmdline = \"a\\nb\""),
        ConfigError::BadValue { key: "cmdline", .. }
    ));
    assert!(matches!(
        e("name = \"a\" junk"),
        ConfigError::BadValue { key: "name", .. }
    ));
    assert!(matches!(
        e("name = \"unterminated"),
        ConfigError::BadValue { .. }
    ));
    assert_eq!(
        e("name = \"a\"\nimage = \"x\""),
        ConfigError::Missing("memory")
    );
    assert_eq!(e(""), ConfigError::Missing("name"));
}

/// Every configuration shipped in the repository parses.
#[test]
fn shipped_configs_parse() {
    let shipped = [
        include_str!("../../guests/demo/demo.toml"),
        include_str!("../../guests/tests/configs/abi-check.toml"),
        include_str!("../../guests/tests/configs/printer.toml"),
        include_str!("../../guests/tests/configs/hostile-read-hyp.toml"),
        include_str!("../../guests/tests/configs/hostile-read-dom0.toml"),
        include_str!("../../guests/tests/configs/hostile-write-domu.toml"),
        include_str!("../../guests/tests/configs/hostile-gic.toml"),
        include_str!("../../guests/tests/configs/hostile-uart.toml"),
        include_str!("../../guests/tests/configs/hostile-undef.toml"),
        include_str!("../../guests/tests/configs/hostile-smc.toml"),
        include_str!("../../guests/tests/configs/burn-w256.toml"),
        include_str!("../../guests/tests/configs/burn-w512.toml"),
        include_str!("../../guests/tests/configs/burn-w1024.toml"),
        include_str!("../../guests/tests/configs/burn-cap25.toml"),
        include_str!("../../guests/tests/configs/burn-alone.toml"),
        include_str!("../../guests/tests/configs/ipi-pingpong.toml"),
        include_str!("../../guests/tests/configs/evtchn-ping-100k.toml"),
        include_str!("../../guests/tests/configs/evtchn-pong-100k.toml"),
    ];
    for text in shipped {
        let c = parse(text).unwrap();
        assert!(c.autostart);
        assert_eq!(c.memory_mib, 4);
    }
}

#[test]
fn scheduling_keys() {
    let base = "name = \"a\"\nmemory = 4\nimage = \"x\"\n";
    let p = |extra: &str| parse(&alloc::format!("{base}{extra}"));
    let c = p("weight = 1024\ncap = 25").unwrap();
    assert_eq!((c.weight, c.cap), (Some(1024), Some(25)));
    // The cap limit follows `vcpus`, whichever comes first.
    assert_eq!(p("cap = 200\nvcpus = 2").unwrap().cap, Some(200));
    let bad = |extra: &str, key: &str| match p(extra) {
        Err(ConfigError::BadValue { key: k, .. }) => assert_eq!(k, key, "{extra}"),
        other => panic!("{extra}: {other:?}"),
    };
    bad("weight = 0", "weight");
    bad("weight = 65536", "weight");
    bad("weight = \"big\"", "weight");
    bad("cap = 0", "cap");
    bad("cap = 101", "cap");
    bad("vcpus = 2\ncap = 201", "cap");
    assert_eq!(
        p("cap = 101").unwrap_err(),
        ConfigError::BadValue {
            line: 4,
            key: "cap",
            expected: "at most 100 per vCPU"
        }
    );
}

#[test]
fn crash_policy_and_devices() {
    let base = "name = \"a\"\nmemory = 4\nimage = \"x\"\n";
    let p = |extra: &str| parse(&alloc::format!("{base}{extra}"));
    let c = p("").unwrap();
    assert_eq!(c.on_crash, OnCrash::Destroy);
    assert!(c.disks.is_empty() && c.vifs.is_empty());
    assert_eq!(
        p("on_crash = \"restart\"").unwrap().on_crash,
        OnCrash::Restart
    );
    assert_eq!(
        p("on_crash = \"preserve\"").unwrap().on_crash,
        OnCrash::Preserve
    );
    let c = p(concat!(
        "disk = [ \"target=vda\", \"target=vda, access=ro, start=64\" ] # two\n",
        "vif = [\"mac=00:16:3e:00:00:07\"]"
    ))
    .unwrap();
    assert_eq!(c.disks.len(), 2);
    assert_eq!(
        (c.disks[1].vdev.as_str(), c.disks[1].read_only),
        ("xvdb", true)
    );
    assert_eq!(c.vifs[0].mac, Some([0, 0x16, 0x3e, 0, 0, 7]));
    assert_eq!(p("disk = []").unwrap().disks, []);
    let e = |extra: &str| alloc::string::ToString::to_string(&p(extra).unwrap_err());
    assert_eq!(
        e("on_crash = \"reboot\""),
        "line 4: `on_crash` must be \"destroy\", \"restart\" or \"preserve\""
    );
    assert_eq!(
        e("\ndisk = [\"target=vda\", \"access=ro\"]"),
        "line 5: disk entry 1: missing `target`"
    );
    assert_eq!(
        e("vif = [\"mac=ff:ff:ff:ff:ff:ff\"]"),
        "line 4: vif entry 0: `mac` must be xx:xx:xx:xx:xx:xx, unicast"
    );
    for bad in [
        "disk = \"target=vda\"",
        "disk = [\"target=vda\"",
        "disk = [\"a\" \"b\"]",
        "disk = [1]",
        "disk = [\"target=vda\"] junk",
        "vif = [\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"]",
    ] {
        assert!(
            matches!(p(bad), Err(ConfigError::BadValue { line: 4, .. })),
            "{bad}"
        );
    }
}

#[test]
fn tables_are_rejected() {
    assert_eq!(
        parse("[domain]\nname = \"a\"").unwrap_err(),
        ConfigError::Syntax { line: 1 }
    );
}

#[test]
fn error_messages() {
    use alloc::string::ToString;
    assert_eq!(
        ConfigError::Missing("image").to_string(),
        "missing required key `image`"
    );
    assert_eq!(
        ConfigError::Syntax { line: 3 }.to_string(),
        "line 3: expected `key = value`"
    );
}
