//! dom0's console back end (`specs/console.md`): for each domain it runs
//! the store handshake of device `console/0` (the netback's state machine,
//! [`crate::netback::handshake`]), maps the domain's console page, passes
//! its output to the hypervisor as that domain's (`console_io write_as`:
//! `[<name>] <line>`, as if the domain had written it directly) and keeps
//! the most recent part of it ([`output`]); the shell's `console` verb attaches to one domain, shows
//! that and the live output, and sends typed bytes to its input ring.
//!
//! [`output`] is plain logic, tested on the host; [`service`] does the
//! hypercalls and is driven from dom0's main loop without blocking.

pub mod output;
pub mod service;

/// The key that ends `console <Domain>` (Ctrl-], as in `xl console`).
pub const ESCAPE: u8 = 0x1d;

/// Splits typed bytes at the escape key: what goes to the domain, and
/// whether the escape came (bytes after it are dropped).
pub fn split_escape(typed: &[u8]) -> (&[u8], bool) {
    match typed.iter().position(|&b| b == ESCAPE) {
        Some(at) => (&typed[..at], true),
        None => (typed, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_splits() {
        assert_eq!(split_escape(b"ab\r"), (&b"ab\r"[..], false));
        assert_eq!(split_escape(b"ab\x1dcd"), (&b"ab"[..], true));
        assert_eq!(split_escape(b"\x1d"), (&b""[..], true));
    }
}
