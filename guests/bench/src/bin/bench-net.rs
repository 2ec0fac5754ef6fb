//! bench-net: small-frame round trips between two domUs through dom0's
//! network back end and its learning bridge (issue 9's `net-pingpong`).
//! Two domains run this image, each with one `vif` on `br0`:
//!
//! - `role=pong` answers every frame addressed to it with one back to the
//!   sender (the same sequence number) until a `done` frame comes;
//! - `role=ping` first broadcasts until pong answers (pong's interface may
//!   connect after ping's; the answer also tells pong's MAC and teaches the
//!   bridge both ports), makes `warmup=<w>` unmeasured round trips (default
//!   8), then `iters=<n>` between region markers, and tells pong `done`.
//!
//! One round trip: ping's frame goes tx ring -> netback -> the switch ->
//! pong's rx ring, pong's answer the same way back; both sides block on
//! their interface's event between frames. Frames are 60 bytes (the
//! Ethernet minimum without FCS) of an IEEE local experimental EtherType.
#![cfg_attr(target_os = "none", no_std, no_main)]

use bench_guests::{region_start, region_stop};
use pv_guest_sdk::abi::netif::NETIF_FRAME_MAX;
use pv_guest_sdk::net::{NetDevice, NetError};
use pv_guest_sdk::time::{self, Deadline};
use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(bench_net);

/// Measured round trips when the command line does not say.
const DEFAULT_ITERS: u64 = 1000;
/// Unmeasured round trips before the region.
const DEFAULT_WARMUP: u64 = 8;
/// Bytes per frame: the Ethernet minimum (without FCS).
const FRAME_BYTES: usize = 60;
/// IEEE 802 local experimental EtherType 1: no stack takes these frames.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
/// How long ping waits for each answer to its broadcast before sending
/// another, and how many it sends.
const HELLO_MS: u64 = 20;
const HELLO_TRIES: u32 = 1500;
/// How long a measured round trip may take before ping gives up, and how
/// long pong waits for the next frame.
const ANSWER_MS: u64 = 5_000;
const PONG_IDLE_MS: u64 = 120_000;
const BROADCAST: [u8; 6] = [0xff; 6];

/// What a frame asks (its byte after the EtherType).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    /// Ping to pong: answer this.
    Ping = 1,
    /// Pong to ping: the answer.
    Pong = 2,
    /// Ping to pong: the run is over.
    Done = 3,
}

/// Offsets in a frame.
const DST: usize = 0;
const SRC: usize = 6;
const TYPE: usize = 12;
const KIND: usize = 14;
const SEQ: usize = 15;

fn frame(dst: [u8; 6], src: [u8; 6], kind: Kind, seq: u64) -> [u8; FRAME_BYTES] {
    let mut f = [0u8; FRAME_BYTES];
    f[DST..DST + 6].copy_from_slice(&dst);
    f[SRC..SRC + 6].copy_from_slice(&src);
    f[TYPE..TYPE + 2].copy_from_slice(&ETHERTYPE);
    f[KIND] = kind as u8;
    f[SEQ..SEQ + 8].copy_from_slice(&seq.to_le_bytes());
    f
}

/// A received frame of this benchmark: its sender, kind and sequence.
fn parse(f: &[u8]) -> Option<([u8; 6], u8, u64)> {
    if f.len() < SEQ + 8 || f[TYPE..TYPE + 2] != ETHERTYPE {
        return None;
    }
    let src = f[SRC..SRC + 6].try_into().ok()?;
    let seq = u64::from_le_bytes(f[SEQ..SEQ + 8].try_into().ok()?);
    Some((src, f[KIND], seq))
}

/// Sends `f`, waiting for a free tx buffer if all are in flight. dom0 is
/// told with the wait for the answer that follows (`NetDevice::queue`).
fn send(dev: &mut NetDevice, f: &[u8]) -> Result<(), NetError> {
    loop {
        match dev.queue(f) {
            Err(NetError::Busy) => dev.wait_tx(Some(Deadline::after_ms(ANSWER_MS).0))?,
            r => return r,
        }
    }
}

/// The next frame of this benchmark, or `None` once the virtual counter
/// reaches `deadline`.
fn next(
    dev: &mut NetDevice,
    buf: &mut [u8],
    deadline: u64,
) -> Result<Option<([u8; 6], u8, u64)>, NetError> {
    loop {
        if let Some(n) = dev.recv(buf)? {
            if let Some(got) = parse(&buf[..n]) {
                return Ok(Some(got));
            }
            continue;
        }
        if time::counter() >= deadline {
            return Ok(None);
        }
        dev.wait(Some(deadline))?;
    }
}

fn bench_net(si: &StartInfo) {
    let cmdline = si.cmdline();
    let iters = cmdline.get_u64("iters").unwrap_or(DEFAULT_ITERS);
    bench_guests::enable_cycles(cmdline.get_u64("pmu") == Some(1));
    let warmup = cmdline.get_u64("warmup").unwrap_or(DEFAULT_WARMUP);
    let role = cmdline.get("role").unwrap_or("");
    let mut dev = match NetDevice::open(0) {
        Ok(d) => d,
        Err(e) => return println!("bench-net: FAIL open: {e}"),
    };
    let r = match role {
        "ping" => ping(&mut dev, iters, warmup),
        "pong" => pong(&mut dev),
        _ => return println!("bench-net: FAIL role= must be ping or pong"),
    };
    if let Err(e) = r {
        println!("bench-net: FAIL {role}: {e}");
    }
}

fn ping(dev: &mut NetDevice, iters: u64, warmup: u64) -> Result<(), NetError> {
    println!("bench-net: iterations={iters}");
    let me = dev.mac();
    let mut buf = [0u8; NETIF_FRAME_MAX as usize];
    let mut peer = None;
    for _ in 0..HELLO_TRIES {
        send(dev, &frame(BROADCAST, me, Kind::Ping, 0))?;
        if let Some((src, k, 0)) = next(dev, &mut buf, Deadline::after_ms(HELLO_MS).0)?
            && k == Kind::Pong as u8
        {
            peer = Some(src);
            break;
        }
    }
    let Some(peer) = peer else {
        println!("bench-net: FAIL no answer from pong");
        return Ok(());
    };
    // Sequence numbers from 1: a late answer to a broadcast (0) is skipped.
    let round_trip = |dev: &mut NetDevice, buf: &mut [u8], seq: u64| -> Result<bool, NetError> {
        send(dev, &frame(peer, me, Kind::Ping, seq))?;
        let deadline = Deadline::after_ms(ANSWER_MS).0;
        loop {
            match next(dev, buf, deadline)? {
                Some((src, k, s)) if src == peer && k == Kind::Pong as u8 && s == seq => {
                    return Ok(true);
                }
                Some(_) => {}
                None => return Ok(false),
            }
        }
    };
    for seq in 1..=warmup {
        if !round_trip(dev, &mut buf, seq)? {
            println!("bench-net: FAIL warm-up round trip {seq} unanswered");
            return Ok(());
        }
    }
    let t0 = time::now();
    region_start();
    for i in 0..iters {
        let seq = warmup + 1 + i;
        if !round_trip(dev, &mut buf, seq)? {
            region_stop();
            println!("bench-net: FAIL round trip {i} unanswered");
            return Ok(());
        }
    }
    region_stop();
    if let Some(c) = bench_guests::cycles_report(iters) {
        println!("bench-net: {c}");
    }
    let ns = (time::now() - t0) / iters.max(1);
    // Pong acknowledges `done`: this domain (and its tx ring, with the
    // frame) may only go once pong has it.
    send(dev, &frame(peer, me, Kind::Done, 0))?;
    let deadline = Deadline::after_ms(ANSWER_MS).0;
    while let Some((src, k, _)) = next(dev, &mut buf, deadline)? {
        if src == peer && k == Kind::Done as u8 {
            break;
        }
    }
    println!("bench-net: {FRAME_BYTES}-byte frame round trip: {ns} ns average over {iters}");
    println!("bench-net: ping done");
    Ok(())
}

fn pong(dev: &mut NetDevice) -> Result<(), NetError> {
    let me = dev.mac();
    let mut buf = [0u8; NETIF_FRAME_MAX as usize];
    let mut answered = 0u64;
    loop {
        let Some((src, kind, seq)) = next(dev, &mut buf, Deadline::after_ms(PONG_IDLE_MS).0)?
        else {
            println!("bench-net: FAIL pong: no frame for {PONG_IDLE_MS} ms");
            return Ok(());
        };
        if kind == Kind::Done as u8 {
            // Queued: the yields below send its event.
            send(dev, &frame(src, me, Kind::Done, seq))?;
            break;
        }
        if kind == Kind::Ping as u8 {
            send(dev, &frame(src, me, Kind::Pong, seq))?;
            answered += 1;
        }
    }
    // The acknowledgement must leave before this domain (and its rings)
    // goes: wait until dom0 has answered every frame sent.
    let deadline = Deadline::after_ms(ANSWER_MS).0;
    let sent = answered + 1;
    while time::counter() < deadline {
        // `can_send` takes back the buffers dom0 is done with (counted).
        let _ = dev.can_send();
        let st = dev.stats();
        if st.sent + st.errors >= sent {
            break;
        }
        pv_guest_sdk::yield_now();
    }
    println!("bench-net: pong done, {answered} answered");
    Ok(())
}
