//! Checks that the documents in `specs/` and the crate agree, in both directions:
//! every call, sub-operation, error, enum value, constant and structure field in
//! the code is documented with the same number, offset and size, and everything
//! the documents list exists in the code.
//!
//! The documents are read with a small line parser; `specs/README.md` ("Table
//! formats") describes the rules it relies on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use tern_abi::call::{Call, function_id};
use tern_abi::spec::{self, EnumKind};
use tern_abi::{CONTROL_ABI, Error, GUEST_ABI};

/// One markdown table: the `###` heading above it, its header and body cells.
#[derive(Debug)]
struct Table {
    file: &'static str,
    line: usize,
    heading: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn has_header(&self, header: &[&str]) -> bool {
        self.header
            .iter()
            .map(String::as_str)
            .eq(header.iter().copied())
    }
}

struct Doc {
    file: &'static str,
    text: String,
    tables: Vec<Table>,
    headings: Vec<(usize, String)>,
}

fn specs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner
        .split('|')
        .map(|c| c.replace('`', "").trim().to_string())
        .collect()
}

fn parse_doc(file: &'static str) -> Doc {
    let text = std::fs::read_to_string(specs_dir().join(file))
        .unwrap_or_else(|e| panic!("cannot read specs/{file}: {e}"));
    let mut tables = Vec::new();
    let mut headings = Vec::new();
    let mut heading = String::new();
    let mut current: Option<Table> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.starts_with('|') {
            match current.as_mut() {
                None => {
                    current = Some(Table {
                        file,
                        line: n,
                        heading: heading.clone(),
                        header: cells(line),
                        rows: Vec::new(),
                    })
                }
                Some(t) => {
                    let row = cells(line);
                    let is_separator = t.rows.is_empty()
                        && row
                            .iter()
                            .all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'));
                    if !is_separator {
                        assert_eq!(
                            row.len(),
                            t.header.len(),
                            "specs/{file}:{n}: row has {} cells, header has {}",
                            row.len(),
                            t.header.len()
                        );
                        t.rows.push(row);
                    }
                }
            }
            continue;
        }
        if let Some(t) = current.take() {
            tables.push(t);
        }
        if let Some(h) = line.strip_prefix("### ") {
            heading = h.trim().to_string();
            headings.push((n, heading.clone()));
        } else if line.starts_with("## ") || line.starts_with("# ") {
            heading.clear();
        }
    }
    if let Some(t) = current.take() {
        tables.push(t);
    }
    Doc {
        file,
        text,
        tables,
        headings,
    }
}

fn docs() -> Vec<Doc> {
    [
        "hypercalls.md",
        "errors.md",
        "layouts.md",
        "memory-map.md",
        "versioning.md",
        "README.md",
        "store.md",
        "blkif.md",
        "netif.md",
        "console.md",
    ]
    .into_iter()
    .map(parse_doc)
    .collect()
}

fn doc<'a>(docs: &'a [Doc], file: &str) -> &'a Doc {
    docs.iter().find(|d| d.file == file).unwrap()
}

fn parse_num(s: &str) -> Option<i128> {
    let s = s.replace('_', "");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, s),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i128>().ok()?,
    };
    Some(if neg { -v } else { v })
}

fn list(cell: &str) -> Vec<String> {
    if cell == "-" {
        return Vec::new();
    }
    cell.split(',').map(|s| s.trim().to_string()).collect()
}

/// Collects disagreements instead of stopping at the first one.
#[derive(Default)]
struct Report(String);

impl Report {
    fn fail(&mut self, msg: impl std::fmt::Display) {
        let _ = writeln!(self.0, "  - {msg}");
    }
    fn check<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: impl std::fmt::Display,
        doc: T,
        code: T,
    ) {
        if doc != code {
            self.fail(format_args!(
                "{what}: specs say {doc:?}, code says {code:?}"
            ));
        }
    }
    fn finish(self, topic: &str) {
        assert!(
            self.0.is_empty(),
            "specs/ and tern-abi disagree on {topic}:\n{}",
            self.0
        );
    }
}

/// `name (major M, call C, id 0xID)` → (name, major, call, id).
fn parse_call_heading(h: &str) -> Option<(String, u16, u16, u32)> {
    let (name, rest) = h.split_once(" (")?;
    let rest = rest.strip_suffix(')')?;
    let mut parts = rest.split(", ");
    let major = parts.next()?.strip_prefix("major ")?.parse().ok()?;
    let call = parts.next()?.strip_prefix("call ")?.parse().ok()?;
    let id = u32::try_from(parse_num(parts.next()?.strip_prefix("id ")?)?).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((name.to_string(), major, call, id))
}

/// `Name (size N)` → (name, size).
fn parse_layout_heading(h: &str) -> Option<(String, usize)> {
    let (name, rest) = h.split_once(" (size ")?;
    let size = rest.strip_suffix(')')?.parse().ok()?;
    Some((name.to_string(), size))
}

const CALL_HEADER: &[&str] = &["sub-op", "value", "args", "returns", "errors", "caller"];
const ENUM_HEADER: &[&str] = &["name", "value", "meaning"];
const FLAGS_HEADER: &[&str] = &["name", "bit", "meaning"];
const CONST_HEADER: &[&str] = &["constant", "value", "meaning"];
const ERROR_HEADER: &[&str] = &["error", "value", "returned when"];
const LAYOUT_HEADER: &[&str] = &["offset", "size", "field", "dir", "meaning"];

#[test]
fn every_hypercalls_heading_is_understood() {
    let docs = docs();
    let mut r = Report::default();
    for (line, h) in &doc(&docs, "hypercalls.md").headings {
        let ok = parse_call_heading(h).is_some()
            || h.strip_prefix("enum ").is_some_and(|n| !n.contains(' '))
            || h.strip_prefix("flags ").is_some_and(|n| !n.contains(' '));
        if !ok {
            r.fail(format_args!(
                "hypercalls.md:{line}: heading `### {h}` is none of the machine-read forms"
            ));
        }
    }
    for (line, h) in &doc(&docs, "layouts.md").headings {
        if parse_layout_heading(h).is_none() {
            r.fail(format_args!(
                "layouts.md:{line}: heading `### {h}` is not `Name (size N)`"
            ));
        }
    }
    r.finish("headings");
}

#[test]
fn calls_and_sub_operations() {
    let docs = docs();
    let hc = doc(&docs, "hypercalls.md");
    let mut r = Report::default();

    // Documented calls, by name.
    let mut documented = BTreeMap::new();
    for t in hc.tables.iter().filter(|t| t.has_header(CALL_HEADER)) {
        match parse_call_heading(&t.heading) {
            Some(h) => {
                if documented.insert(h.0.clone(), (h, t)).is_some() {
                    r.fail(format_args!("call `{}` documented twice", t.heading));
                }
            }
            None => r.fail(format_args!(
                "{}:{}: call table under heading `{}` which is not `name (major M, call C, id 0xID)`",
                t.file, t.line, t.heading
            )),
        }
    }

    for c in spec::CALLS {
        let Some(((_, major, call, id), t)) = documented.remove(c.name) else {
            r.fail(format_args!(
                "call `{}` (major {}, call {}) is not documented",
                c.name, c.major, c.call
            ));
            continue;
        };
        r.check(format_args!("{}: major", c.name), major, c.major);
        r.check(format_args!("{}: call number", c.name), call, c.call);
        r.check(
            format_args!("{}: function id", c.name),
            id,
            function_id(c.major, c.call),
        );

        let code_rows: BTreeMap<&str, _> = c.sub_ops.iter().map(|s| (s.name, s)).collect();
        let doc_names: Vec<&str> = t.rows.iter().map(|row| row[0].as_str()).collect();
        let code_names: Vec<&str> = c.sub_ops.iter().map(|s| s.name).collect();
        r.check(
            format_args!("{}: sub-operations (in order)", c.name),
            doc_names,
            code_names,
        );
        for row in &t.rows {
            let Some(s) = code_rows.get(row[0].as_str()) else {
                continue;
            };
            let what = format_args!("{} {}", c.name, s.name).to_string();
            let value = if row[1] == "-" {
                None
            } else {
                parse_num(&row[1]).and_then(|v| u16::try_from(v).ok())
            };
            if value.is_none() && row[1] != "-" {
                r.fail(format_args!("{what}: value `{}` is not a number", row[1]));
            }
            r.check(format_args!("{what}: value"), value, s.value);
            r.check(
                format_args!("{what}: args"),
                list(&row[2]),
                s.args.iter().map(|a| a.to_string()).collect(),
            );
            r.check(
                format_args!("{what}: returns"),
                list(&row[3]),
                s.returns.iter().map(|a| a.to_string()).collect(),
            );
            r.check(
                format_args!("{what}: errors"),
                list(&row[4]),
                s.errors.iter().map(|e| e.name().to_string()).collect(),
            );
            r.check(
                format_args!("{what}: caller"),
                row[5].as_str(),
                c.caller.name(),
            );
        }
    }
    for (name, ((_, major, call, _), t)) in documented {
        r.fail(format_args!(
            "{}:{}: call `{name}` (major {major}, call {call}) is documented but not in the code",
            t.file, t.line
        ));
    }

    // Every major-1 call of the enum has a description.
    for &call in Call::ALL {
        if !spec::CALLS
            .iter()
            .any(|c| c.major == Call::MAJOR && c.call == call.raw() && c.name == call.name())
        {
            r.fail(format_args!("Call::{call:?} has no entry in spec::CALLS"));
        }
    }
    r.finish("calls");
}

#[test]
fn errors() {
    let docs = docs();
    let mut r = Report::default();
    let tables: Vec<&Table> = docs
        .iter()
        .flat_map(|d| &d.tables)
        .filter(|t| t.has_header(ERROR_HEADER))
        .collect();
    r.check("number of error tables", tables.len(), 1);
    let mut documented = BTreeMap::new();
    for t in &tables {
        for row in &t.rows {
            if row[2].is_empty() {
                r.fail(format_args!("error {} has no description", row[0]));
            }
            if documented
                .insert(row[0].clone(), parse_num(&row[1]))
                .is_some()
            {
                r.fail(format_args!("error {} documented twice", row[0]));
            }
        }
    }
    for &e in Error::ALL {
        match documented.remove(e.name()) {
            Some(v) => r.check(
                format_args!("error {}", e.name()),
                v,
                Some(i128::from(e.raw())),
            ),
            None => r.fail(format_args!(
                "error {} ({}) is not documented",
                e.name(),
                e.raw()
            )),
        }
    }
    for (name, v) in documented {
        r.fail(format_args!(
            "error {name} ({v:?}) is documented but not in the code"
        ));
    }
    r.finish("errors");
}

#[test]
fn enums_and_flags() {
    let docs = docs();
    let mut r = Report::default();
    let mut documented = BTreeMap::new();
    for t in docs.iter().flat_map(|d| &d.tables) {
        let kind = if t.has_header(ENUM_HEADER) {
            EnumKind::Enum
        } else if t.has_header(FLAGS_HEADER) {
            EnumKind::Flags
        } else {
            continue;
        };
        let prefix = if kind == EnumKind::Enum {
            "enum "
        } else {
            "flags "
        };
        let Some(name) = t.heading.strip_prefix(prefix) else {
            r.fail(format_args!(
                "{}:{}: {prefix}table under heading `{}`",
                t.file, t.line, t.heading
            ));
            continue;
        };
        let values: Vec<(String, Option<i128>)> = t
            .rows
            .iter()
            .map(|row| (row[0].clone(), parse_num(&row[1])))
            .collect();
        if documented
            .insert(name.to_string(), (kind, values))
            .is_some()
        {
            r.fail(format_args!("{name} documented twice"));
        }
    }
    for e in spec::ENUMS {
        let Some((kind, values)) = documented.remove(e.name) else {
            r.fail(format_args!("{} is not documented", e.name));
            continue;
        };
        r.check(format_args!("{}: kind", e.name), kind, e.kind);
        let code: Vec<(String, Option<i128>)> = e
            .values
            .iter()
            .map(|&(n, v)| (n.to_string(), Some(i128::from(v))))
            .collect();
        r.check(format_args!("{}: values", e.name), values, code);
    }
    for name in documented.keys() {
        r.fail(format_args!("{name} is documented but not in spec::ENUMS"));
    }
    r.finish("enums and flags");
}

#[test]
fn constants() {
    let docs = docs();
    let mut r = Report::default();
    let mut documented: BTreeMap<String, Vec<Option<i128>>> = BTreeMap::new();
    for t in docs
        .iter()
        .flat_map(|d| &d.tables)
        .filter(|t| t.has_header(CONST_HEADER))
    {
        for row in &t.rows {
            documented
                .entry(row[0].clone())
                .or_default()
                .push(parse_num(&row[1]));
        }
    }
    for &(name, value) in spec::CONSTANTS {
        match documented.remove(name) {
            Some(values) => {
                for v in values {
                    r.check(format_args!("constant {name}"), v, Some(i128::from(value)));
                }
            }
            None => r.fail(format_args!(
                "constant {name} = {value:#x} is not documented"
            )),
        }
    }
    for name in documented.keys() {
        r.fail(format_args!(
            "constant {name} is documented but not in spec::CONSTANTS"
        ));
    }
    r.finish("constants");
}

#[test]
fn layouts() {
    let docs = docs();
    let mut r = Report::default();
    let mut documented = BTreeMap::new();
    for t in docs
        .iter()
        .flat_map(|d| &d.tables)
        .filter(|t| t.has_header(LAYOUT_HEADER))
    {
        let Some((name, size)) = parse_layout_heading(&t.heading) else {
            r.fail(format_args!(
                "{}:{}: layout table under heading `{}`",
                t.file, t.line, t.heading
            ));
            continue;
        };
        if documented.insert(name.clone(), (size, t)).is_some() {
            r.fail(format_args!("layout {name} documented twice"));
        }
    }
    for l in spec::LAYOUTS {
        let Some((size, t)) = documented.remove(l.name) else {
            r.fail(format_args!("layout {} is not documented", l.name));
            continue;
        };
        r.check(format_args!("{}: size", l.name), size, l.size);
        let doc_fields: Vec<(Option<i128>, Option<i128>, &str, &str)> = t
            .rows
            .iter()
            .map(|row| {
                (
                    parse_num(&row[0]),
                    parse_num(&row[1]),
                    row[2].as_str(),
                    row[3].as_str(),
                )
            })
            .collect();
        let code_fields: Vec<(Option<i128>, Option<i128>, &str, &str)> = l
            .fields
            .iter()
            .map(|f| {
                (
                    Some(f.offset as i128),
                    Some(f.size as i128),
                    f.name,
                    f.dir.name(),
                )
            })
            .collect();
        r.check(
            format_args!("{}: fields (offset, size, name, dir)", l.name),
            doc_fields,
            code_fields,
        );
    }
    for name in documented.keys() {
        r.fail(format_args!(
            "layout {name} is documented but not in spec::LAYOUTS"
        ));
    }
    r.finish("layouts");
}

#[test]
fn versions() {
    let docs = docs();
    let mut r = Report::default();
    let stated = format!("Guest ABI {GUEST_ABI}, control ABI {CONTROL_ABI}.");
    if !doc(&docs, "hypercalls.md").text.contains(&stated) {
        r.fail(format_args!("hypercalls.md does not state `{stated}`"));
    }
    let stated = format!("Current versions: guest ABI {GUEST_ABI}, control ABI {CONTROL_ABI}.");
    if !doc(&docs, "README.md").text.contains(&stated) {
        r.fail(format_args!("README.md does not state `{stated}`"));
    }
    let table = doc(&docs, "versioning.md")
        .tables
        .iter()
        .find(|t| t.has_header(&["interface", "covers", "version now"]))
        .expect("versioning.md has the version table");
    let rows: BTreeSet<(String, String)> = table
        .rows
        .iter()
        .map(|row| (row[0].clone(), row[2].clone()))
        .collect();
    let code: BTreeSet<(String, String)> = [
        ("guest ABI".to_string(), GUEST_ABI.to_string()),
        ("control ABI".to_string(), CONTROL_ABI.to_string()),
    ]
    .into();
    r.check("versioning.md versions", rows, code);
    r.finish("versions");
}

#[test]
fn parser_self_check() {
    assert_eq!(parse_num("0x4000_0000"), Some(0x4000_0000));
    assert_eq!(parse_num("-13"), Some(-13));
    assert_eq!(parse_num("0XFF"), Some(255));
    assert_eq!(parse_num("x"), None);
    assert_eq!(
        parse_call_heading("console_io (major 1, call 1, id 0xC6001001)"),
        Some(("console_io".into(), 1, 1, 0xC600_1001))
    );
    assert_eq!(parse_call_heading("console_io (major 1, call 1)"), None);
    assert_eq!(
        parse_layout_heading("StartInfo (size 512)"),
        Some(("StartInfo".into(), 512))
    );
    assert_eq!(cells("| `a` | b |c|"), vec!["a", "b", "c"]);
}
