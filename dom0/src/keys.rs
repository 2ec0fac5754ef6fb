//! Decoding the keys a serial terminal sends: ASCII control characters and
//! the ANSI / VT100 escape sequences of ECMA-48 (CSI `ESC [` and SS3 `ESC O`).

/// A key, as decoded from the bytes a terminal sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable ASCII character.
    Char(u8),
    /// Enter: `\r` or `\n`; `\r\n` counts once.
    Enter,
    /// Backspace (`0x7f` or Ctrl-H): delete left of the cursor.
    Backspace,
    /// Delete (`ESC [ 3 ~`): delete under the cursor.
    Delete,
    /// Left arrow or Ctrl-B.
    Left,
    /// Right arrow or Ctrl-F.
    Right,
    /// Up arrow or Ctrl-P: older history entry.
    Up,
    /// Down arrow or Ctrl-N: newer history entry.
    Down,
    /// Home or Ctrl-A.
    Home,
    /// End or Ctrl-E.
    End,
    /// Ctrl-U: delete from the start of the line to the cursor.
    KillToStart,
    /// Ctrl-K: delete from the cursor to the end of the line.
    KillToEnd,
    /// Ctrl-C: abandon the line.
    Cancel,
}

/// ASCII control characters the decoder knows.
mod ctrl {
    pub const CTRL_A: u8 = 0x01;
    pub const CTRL_B: u8 = 0x02;
    pub const CTRL_C: u8 = 0x03;
    pub const CTRL_E: u8 = 0x05;
    pub const CTRL_F: u8 = 0x06;
    pub const BS: u8 = 0x08;
    pub const CTRL_K: u8 = 0x0b;
    pub const CTRL_N: u8 = 0x0e;
    pub const CTRL_P: u8 = 0x10;
    pub const CTRL_U: u8 = 0x15;
    pub const ESC: u8 = 0x1b;
    pub const DEL: u8 = 0x7f;
}

/// Where the decoder is inside an escape sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ground,
    /// After `ESC`.
    Escape,
    /// After `ESC [` (CSI), with the first numeric parameter so far.
    Csi {
        param: u16,
        in_first: bool,
    },
    /// After `ESC O` (SS3: what terminals in "application" mode send).
    Ss3,
}

/// Turns terminal bytes into [`Key`]s, one byte at a time.
#[derive(Debug)]
pub struct KeyDecoder {
    state: State,
    after_cr: bool,
}

impl Default for KeyDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyDecoder {
    /// A decoder outside any sequence.
    pub const fn new() -> Self {
        Self {
            state: State::Ground,
            after_cr: false,
        }
    }

    /// Feeds one byte; returns the key it completes, if any. Bytes and
    /// sequences that mean nothing to the editor are dropped.
    pub fn feed(&mut self, b: u8) -> Option<Key> {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match self.state {
            State::Ground => self.ground(b, after_cr),
            State::Escape => {
                self.state = match b {
                    b'[' => State::Csi {
                        param: 0,
                        in_first: true,
                    },
                    b'O' => State::Ss3,
                    _ => State::Ground,
                };
                None
            }
            State::Ss3 => {
                self.state = State::Ground;
                Self::final_byte(b, 0)
            }
            State::Csi { param, in_first } => match b {
                b'0'..=b'9' if in_first => {
                    let param = param.saturating_mul(10).saturating_add(u16::from(b - b'0'));
                    self.state = State::Csi { param, in_first };
                    None
                }
                // Parameters after the first (modifiers: `ESC [ 1 ; 5 C`)
                // and intermediate bytes do not change the key.
                b'0'..=b'9' | b';' | 0x20..=0x2f => {
                    self.state = State::Csi {
                        param,
                        in_first: false,
                    };
                    None
                }
                0x40..=0x7e => {
                    self.state = State::Ground;
                    Self::final_byte(b, param)
                }
                // Anything else aborts the sequence (ECMA-48 leaves it
                // undefined); start over with this byte.
                _ => {
                    self.state = State::Ground;
                    self.ground(b, after_cr)
                }
            },
        }
    }

    fn ground(&mut self, b: u8, after_cr: bool) -> Option<Key> {
        use ctrl::*;
        Some(match b {
            b'\r' => {
                self.after_cr = true;
                Key::Enter
            }
            b'\n' if after_cr => return None,
            b'\n' => Key::Enter,
            ESC => {
                self.state = State::Escape;
                return None;
            }
            DEL | BS => Key::Backspace,
            CTRL_A => Key::Home,
            CTRL_B => Key::Left,
            CTRL_C => Key::Cancel,
            CTRL_E => Key::End,
            CTRL_F => Key::Right,
            CTRL_K => Key::KillToEnd,
            CTRL_N => Key::Down,
            CTRL_P => Key::Up,
            CTRL_U => Key::KillToStart,
            0x20..=0x7e => Key::Char(b),
            _ => return None,
        })
    }

    /// The key of a CSI or SS3 sequence ending in `b` with parameter `param`.
    fn final_byte(b: u8, param: u16) -> Option<Key> {
        Some(match (b, param) {
            (b'A', _) => Key::Up,
            (b'B', _) => Key::Down,
            (b'C', _) => Key::Right,
            (b'D', _) => Key::Left,
            (b'H', _) | (b'~', 1 | 7) => Key::Home,
            (b'F', _) | (b'~', 4 | 8) => Key::End,
            (b'~', 3) => Key::Delete,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut d = KeyDecoder::new();
        bytes.iter().filter_map(|&b| d.feed(b)).collect()
    }

    #[test]
    fn decodes_plain_and_control_keys() {
        assert_eq!(
            keys(b"a Z~\x7f\x08\x15\x0b\x03\x01\x05"),
            [
                Key::Char(b'a'),
                Key::Char(b' '),
                Key::Char(b'Z'),
                Key::Char(b'~'),
                Key::Backspace,
                Key::Backspace,
                Key::KillToStart,
                Key::KillToEnd,
                Key::Cancel,
                Key::Home,
                Key::End,
            ]
        );
        // \r\n is one Enter; lone \r or \n are one each; other controls vanish.
        assert_eq!(
            keys(b"\r\n\n\r\r\x00\x07"),
            [Key::Enter, Key::Enter, Key::Enter, Key::Enter]
        );
    }

    #[test]
    fn decodes_escape_sequences() {
        assert_eq!(
            keys(b"\x1b[A\x1b[B\x1b[C\x1b[D\x1bOA\x1bOH\x1b[H\x1b[F"),
            [
                Key::Up,
                Key::Down,
                Key::Right,
                Key::Left,
                Key::Up,
                Key::Home,
                Key::Home,
                Key::End
            ]
        );
        assert_eq!(
            keys(b"\x1b[3~\x1b[1~\x1b[4~\x1b[7~\x1b[8~"),
            [Key::Delete, Key::Home, Key::End, Key::Home, Key::End]
        );
        // Modifiers are ignored; unknown sequences and Alt-x vanish whole.
        assert_eq!(
            keys(b"\x1b[1;5C\x1b[15~\x1b[Zx\x1bxy"),
            [Key::Right, Key::Char(b'x'), Key::Char(b'y')]
        );
        // A control byte inside a sequence aborts it and counts itself.
        assert_eq!(keys(b"\x1b[1\rq"), [Key::Enter, Key::Char(b'q')]);
        // Split across reads: the decoder keeps its state.
        let mut d = KeyDecoder::new();
        assert_eq!(d.feed(0x1b), None);
        assert_eq!(d.feed(b'['), None);
        assert_eq!(d.feed(b'D'), Some(Key::Left));
    }
}
