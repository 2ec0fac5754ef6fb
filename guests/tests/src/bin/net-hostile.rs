//! Network test, a hostile front end: it connects its interface with a
//! ring reference it never granted, then properly, sends descriptors with
//! an unknown grant, an oversized frame, a frame past its page and a flag
//! (between two good frames), then a frame posing as another MAC, and
//! finally claims a million requests in its tx ring. dom0 must close the
//! interface the first and last time, answer each bad descriptor with an
//! error, the spoofed frame with DROPPED and the good ones with OKAY, and
//! keep serving the other domains. Prints `net-hostile: PASS ...` or
//! `net-hostile: FAIL ...`.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::netif::{
    self, NETIF_FRAME_MAX, NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NetifRequest,
    NetifResponse,
};
use pv_guest_sdk::abi::ring::Front;
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::{Grant, Page};
use pv_guest_sdk::store::{Device, Store, XenbusState};
use pv_guest_sdk::time::Deadline;
use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(hostile_main);

const STEP_MS: u64 = 10_000;
/// A reference far past anything this domain granted.
const NEVER_GRANTED: u32 = 999_999;

macro_rules! fail {
    ($($arg:tt)*) => {{
        println!("net-hostile: FAIL {}", format_args!($($arg)*));
        return;
    }};
}

/// Writes the details and Initialised, then waits for the back end to say
/// Connected or Closed.
fn offer(
    st: &mut Store,
    dev: &Device,
    tx: u32,
    rx: u32,
    port: Port,
) -> Result<XenbusState, String> {
    let dir = dev.front_dir();
    let w = |st: &mut Store, k: &str, v: String| {
        st.write(&format!("{dir}/{k}"), v.as_bytes())
            .map_err(|e| format!("write {k}: {e}"))
    };
    w(st, netif::KEY_TX_RING_REF, format!("{tx}"))?;
    w(st, netif::KEY_RX_RING_REF, format!("{rx}"))?;
    w(st, netif::KEY_EVENT_CHANNEL, format!("{}", port.0))?;
    w(st, "state", format!("{}", XenbusState::Initialised.raw()))?;
    st.wait_state(
        &format!("{}/state", dev.back_dir()),
        |s| s == XenbusState::Connected || s == XenbusState::Closed,
        Deadline::after_ms(STEP_MS),
    )
    .map_err(|e| format!("waiting for the back end: {e}"))
}

/// A broadcast frame from `src`.
fn frame(len: usize, src: [u8; 6]) -> Vec<u8> {
    let mut f = alloc::vec![0u8; len];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&src);
    f
}

/// Where the posing frame is in the data page.
const SPOOF_OFFSET: u16 = 2048;

fn hostile_main(si: &StartInfo) {
    let mut st = match Store::connect() {
        Ok(s) => s,
        Err(e) => fail!("store: {e}"),
    };
    let dev = Device {
        kind: netif::DEVICE_TYPE.into(),
        index: 0,
        front: si.domain_id(),
        back: DomainId::DOM0,
    };
    let back_state = format!("{}/state", dev.back_dir());
    if let Err(e) = st.wait_state(
        &back_state,
        |s| s == XenbusState::InitWait,
        Deadline::after_ms(STEP_MS),
    ) {
        fail!("no back end: {e}");
    }
    let port = match events::alloc_unbound(DomainId::DOM0) {
        Ok(p) => p,
        Err(e) => fail!("alloc_unbound: {e}"),
    };
    let pages: Result<Vec<Grant>, _> = (0..3)
        .map(|_| Page::new().and_then(|p| Grant::new(DomainId::DOM0, p, false)))
        .collect();
    let Ok(pages) = pages else {
        fail!("cannot grant pages")
    };
    let (tx_page, rx_page, data) = (&pages[0], &pages[1], &pages[2]);
    let tx_ring = tx_page.page().as_ring();
    tx_ring.init();
    rx_page.page().as_ring().init();

    // 1. A tx ring reference never granted: the back end must close.
    match offer(&mut st, &dev, NEVER_GRANTED, rx_page.gref().0, port) {
        Ok(XenbusState::Closed) => {}
        Ok(s) => fail!("bad ring reference: back end went {s:?}"),
        Err(e) => fail!("bad ring reference: {e}"),
    }
    // 2. Start again, properly.
    let init = format!("{}", XenbusState::Initialising.raw());
    if let Err(e) = st.write(&format!("{}/state", dev.front_dir()), init.as_bytes()) {
        fail!("restart: {e}");
    }
    if let Err(e) = st.wait_state(
        &back_state,
        |s| s == XenbusState::InitWait,
        Deadline::after_ms(STEP_MS),
    ) {
        fail!("no InitWait after restarting: {e}");
    }
    match offer(&mut st, &dev, tx_page.gref().0, rx_page.gref().0, port) {
        Ok(XenbusState::Connected) => {}
        Ok(s) => fail!("good rings: back end went {s:?}"),
        Err(e) => fail!("good rings: {e}"),
    }
    // 3. Bad descriptors between two good frames (from the MAC dom0 gave
    //    this interface), then one posing as another MAC.
    let mac = st
        .read(&format!("{}/{}", dev.back_dir(), netif::KEY_MAC))
        .ok()
        .and_then(|m| netif::parse_mac(&m));
    let Some(mac) = mac else {
        fail!("no mac from the back end")
    };
    let other = [0x00, 0x16, 0x3e, 0, 0x7f, 0];
    if data.page().write(0, &frame(60, mac)).is_err()
        || data
            .page()
            .write(usize::from(SPOOF_OFFSET), &frame(60, other))
            .is_err()
    {
        fail!("cannot fill the data page");
    }
    let good = |id| NetifRequest {
        id,
        gref: data.gref().0,
        offset: 0,
        size: 60,
        ..NetifRequest::default()
    };
    let mut flagged = good(5);
    flagged.flags = 1;
    let reqs = [
        good(1),
        NetifRequest {
            gref: NEVER_GRANTED,
            ..good(2)
        },
        NetifRequest {
            size: NETIF_FRAME_MAX + 1,
            ..good(3)
        },
        NetifRequest {
            offset: 4090,
            ..good(4)
        },
        flagged,
        good(6),
        NetifRequest {
            offset: SPOOF_OFFSET,
            ..good(7)
        },
    ];
    let want = [
        NETIF_RSP_OKAY,
        NETIF_RSP_ERROR,
        NETIF_RSP_ERROR,
        NETIF_RSP_ERROR,
        NETIF_RSP_ERROR,
        NETIF_RSP_OKAY,
        NETIF_RSP_DROPPED,
    ];
    let mut front: Front<NetifRequest, NetifResponse> = Front::new(tx_ring);
    for r in &reqs {
        if front.push(r).is_err() {
            fail!("ring full");
        }
    }
    front.publish();
    let _ = events::send(port);
    let deadline = Deadline::after_ms(STEP_MS);
    let mut got = Vec::new();
    while got.len() < reqs.len() {
        match front.take() {
            Ok(Some(r)) => got.push((r.id, r.status)),
            Ok(None) if deadline.passed() => fail!("only {} of {} answers", got.len(), reqs.len()),
            Ok(None) => {
                let _ =
                    events::wait_until(|| front.final_check().unwrap_or(true), Some(deadline.0));
            }
            Err(e) => fail!("tx ring: {e}"),
        }
    }
    for (i, (&(id, status), &w)) in got.iter().zip(&want).enumerate() {
        if id != reqs[i].id || status != w {
            fail!(
                "answer {i}: id {id} status {status}, expected id {} status {w}",
                reqs[i].id
            );
        }
    }
    // 4. An impossible producer index: the back end must close.
    tx_ring.req_prod.store(1_000_000, Ordering::Release);
    let _ = events::send(port);
    if let Err(e) = st.wait_state(
        &back_state,
        |s| s == XenbusState::Closed,
        Deadline::after_ms(STEP_MS),
    ) {
        fail!("impossible index: back end did not close: {e}");
    }
    println!(
        "net-hostile: PASS unmapped ring refused, 4 bad descriptors answered {NETIF_RSP_ERROR}, 2 good sent, a spoofed source MAC answered {NETIF_RSP_DROPPED}, impossible index closed the interface"
    );
}
