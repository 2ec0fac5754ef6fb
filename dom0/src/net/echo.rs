//! A TCP echo server (RFC 862) on dom0's interface: whatever a client sends
//! comes back, until it closes its side.

use alloc::vec;

use smoltcp::socket::tcp;

use super::Stack;
use crate::virtio::net::Net;

/// Bytes of each TCP socket buffer (receive and send).
const SOCKET_BUFFER: usize = 16 * 1024;

/// How one connection went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The client connected, got `bytes` echoed and closed.
    Closed {
        /// Bytes echoed.
        bytes: usize,
    },
    /// The virtual counter reached the deadline first (`bytes` so far).
    TimedOut {
        /// Bytes echoed.
        bytes: usize,
    },
}

/// Listens on `port` and echoes one connection until the client closes it
/// (then closes too) or the virtual counter reaches `deadline`.
pub fn serve_one(stack: &mut Stack, net: &mut Net, port: u16, deadline: u64) -> Served {
    let socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
    );
    let handle = stack.sockets.add(socket);
    // Fails only for port 0 or a socket already open: neither here.
    let _ = stack.sockets.get_mut::<tcp::Socket>(handle).listen(port);
    let mut bytes = 0;
    let mut connected = false;
    let mut chunk = [0u8; 2048];
    let served = loop {
        if pv_guest_sdk::time::counter() >= deadline {
            break Served::TimedOut { bytes };
        }
        stack.poll(net);
        let s = stack.sockets.get_mut::<tcp::Socket>(handle);
        connected |= s.is_active();
        let mut echoed = 0;
        while s.can_recv() && s.can_send() {
            let room = s.send_capacity() - s.send_queue();
            let want = room.min(chunk.len());
            let n = match s.recv_slice(&mut chunk[..want]) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            // `want` bytes fit in the send buffer, so all are queued.
            let _ = s.send_slice(&chunk[..n]);
            echoed += n;
        }
        bytes += echoed;
        if connected && s.state() == tcp::State::CloseWait && s.send_queue() == 0 {
            // The client is done and has everything back: close our side.
            s.close();
        }
        if connected && !s.is_open() {
            break Served::Closed { bytes };
        }
        if echoed == 0 {
            // Nothing new to send: sleep until a frame or a TCP timer.
            stack.wait(net, deadline);
        }
    };
    stack.sockets.remove(handle);
    served
}
