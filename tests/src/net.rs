//! The host side of network tests: only 127.0.0.1 (QEMU `hostfwd`), never an
//! address off this machine.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `data` to the echo server behind 127.0.0.1:`port` in `chunk`-byte
/// pieces, reading each piece back before the next, then half-closes and
/// expects the server to close too (EOF). Returns what came back.
pub fn echo_round_trip(port: u16, data: &[u8], chunk: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut back = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; chunk];
    for piece in data.chunks(chunk) {
        s.write_all(piece).unwrap();
        let want = back.len() + piece.len();
        while back.len() < want {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed after {} bytes", back.len());
            back.extend_from_slice(&buf[..n]);
        }
    }
    s.shutdown(Shutdown::Write).unwrap();
    // The server closes its side once it has echoed everything.
    assert_eq!(s.read(&mut buf).unwrap(), 0, "bytes after the echo");
    back
}
