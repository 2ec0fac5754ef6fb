//! Fixed-size name and command-line fields: NUL-padded byte arrays.
//!
//! A name field holds 1..=[`NAME_MAX`] bytes from `[A-Za-z0-9._-]` followed by
//! NUL bytes up to the end of the array, so it is always NUL-terminated. A
//! command-line field holds up to [`CMDLINE_MAX`] printable ASCII bytes
//! (0x20..=0x7e), then NUL bytes.

use crate::Error;

/// Longest domain name, in bytes (the name arrays are 32 bytes).
pub const NAME_MAX: usize = 31;
/// Longest command line, in bytes (the command-line arrays are 256 bytes).
pub const CMDLINE_MAX: usize = 255;

/// The bytes of a NUL-padded field up to (not including) its first NUL.
pub fn field_bytes(field: &[u8]) -> &[u8] {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..len]
}

/// The text of a NUL-padded field, if it is UTF-8.
pub fn field_str(field: &[u8]) -> Option<&str> {
    core::str::from_utf8(field_bytes(field)).ok()
}

/// Whether `name` is a valid domain name: 1..=[`NAME_MAX`] bytes of `[A-Za-z0-9._-]`.
pub fn is_valid_name(name: &[u8]) -> bool {
    (1..=NAME_MAX).contains(&name.len())
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Whether a whole name field is well-formed: a valid name, then only NULs.
pub fn is_valid_name_field(field: &[u8]) -> bool {
    let name = field_bytes(field);
    name.len() < field.len() && is_valid_name(name) && field[name.len()..].iter().all(|&b| b == 0)
}

/// Whether a whole command-line field is well-formed: printable ASCII, at least
/// one NUL, only NULs after the first.
pub fn is_valid_cmdline_field(field: &[u8]) -> bool {
    let text = field_bytes(field);
    text.len() < field.len()
        && text.iter().all(|&b| (0x20..=0x7e).contains(&b))
        && field[text.len()..].iter().all(|&b| b == 0)
}

/// Fills `field` with `text` followed by NUL bytes.
///
/// Fails with [`Error::TooBig`] if `text` does not leave room for one NUL.
/// Does not validate the characters (see [`is_valid_name`]).
pub fn set_field(field: &mut [u8], text: &[u8]) -> Result<(), Error> {
    if text.len() >= field.len() {
        return Err(Error::TooBig);
    }
    field[..text.len()].copy_from_slice(text);
    field[text.len()..].fill(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let mut f = [0u8; 32];
        set_field(&mut f, b"dom0").unwrap();
        assert!(is_valid_name_field(&f));
        assert_eq!(field_str(&f), Some("dom0"));
        assert_eq!(set_field(&mut f, &[b'a'; 32]), Err(Error::TooBig));
        set_field(&mut f, &[b'a'; 31]).unwrap();
        assert!(is_valid_name_field(&f));
        assert!(!is_valid_name_field(&[0u8; 32]));
        assert!(!is_valid_name(b"a b"));
        let mut g = [0u8; 32];
        g[0] = b'a';
        g[2] = b'b';
        assert!(!is_valid_name_field(&g), "junk after NUL");
        let mut c = [0u8; 256];
        set_field(&mut c, b"console=hyp loglevel=3").unwrap();
        assert!(is_valid_cmdline_field(&c));
        c[0] = b'\n';
        assert!(!is_valid_cmdline_field(&c));
    }
}
