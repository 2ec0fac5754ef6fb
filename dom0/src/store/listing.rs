//! `store-ls`: a subtree as `xenstore-ls` prints it, one node a line,
//! indented one space per level: `name = "value"`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use tern_abi::store::StoreError;

use super::tree::{DOM0, Tree, absolute, base, join};

/// A value in double quotes, with `"`, `\` and bytes outside printable
/// ASCII escaped (`\xNN`).
pub fn quoted(value: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in value {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(char::from(b));
            }
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    s
}

/// The lines of `store-ls [path]` as dom0 sees the tree: every node below
/// `path` (not `path` itself), depth first, children by name.
pub fn lines(tree: &Tree, path: &str) -> Result<Vec<String>, StoreError> {
    let top = absolute(DOM0, path.as_bytes())?;
    tree.readable(DOM0, &top)?;
    let mut out = Vec::new();
    // (path, indent), popped last first: children pushed in reverse.
    let mut stack: Vec<(String, usize)> = Vec::new();
    let push_children = |stack: &mut Vec<(String, usize)>, dir: &str, indent: usize| {
        if let Some(n) = tree.get(dir) {
            for c in n.children.iter().rev() {
                stack.push((join(dir, c), indent));
            }
        }
    };
    push_children(&mut stack, &top, 0);
    while let Some((p, indent)) = stack.pop() {
        if let Some(n) = tree.get(&p) {
            out.push(alloc::format!(
                "{:indent$}{} = {}",
                "",
                base(&p),
                quoted(&n.value)
            ));
            push_children(&mut stack, &p, indent + 1);
        }
    }
    Ok(out)
}
