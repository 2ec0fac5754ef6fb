use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use tern_abi::netif::{NETIF_FRAME_MAX, NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_OKAY};
use tern_abi::ring::{Front, SharedRing};

use super::*;

/// Pages "granted" by the front end, by reference; copies to or from any
/// other reference fail, as the hypervisor's would.
#[derive(Default)]
struct Pages {
    pages: BTreeMap<u32, Box<[u8; 4096]>>,
    read_only: Vec<u32>,
}

impl FrameCopy for Pages {
    fn read_guest(&mut self, src: &[(u32, usize)], dst: &mut [Vec<u8>]) -> Vec<bool> {
        src.iter()
            .zip(dst)
            .map(|(&(g, off), d)| match self.pages.get(&g) {
                Some(p) if off + d.len() <= 4096 => {
                    let n = d.len();
                    d.copy_from_slice(&p[off..off + n]);
                    true
                }
                _ => false,
            })
            .collect()
    }

    fn write_guest(&mut self, dst: &[(u32, usize)], src: &[Vec<u8>]) -> Vec<bool> {
        dst.iter()
            .zip(src)
            .map(|(&(g, off), s)| match self.pages.get_mut(&g) {
                Some(p) if off + s.len() <= 4096 && !self.read_only.contains(&g) => {
                    p[off..off + s.len()].copy_from_slice(s);
                    true
                }
                _ => false,
            })
            .collect()
    }
}

fn frame(dst: [u8; 6], src: [u8; 6], len: usize, fill: u8) -> Vec<u8> {
    let mut f = vec![fill; len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f
}

fn req(id: u16, gref: u32, offset: u16, size: u16) -> NetifRequest {
    NetifRequest {
        id,
        gref,
        offset,
        size,
        ..NetifRequest::default()
    }
}

const GUEST: [u8; 6] = [0x00, 0x16, 0x3e, 0, 1, 0];
const OTHER: [u8; 6] = [0x00, 0x16, 0x3e, 0, 2, 0];

struct Rig {
    tx_ring: Box<SharedRing>,
    rx_ring: Box<SharedRing>,
}

impl Rig {
    fn new() -> Self {
        Self {
            tx_ring: Box::new(SharedRing::new()),
            rx_ring: Box::new(SharedRing::new()),
        }
    }
}

#[test]
fn frames_go_both_ways_and_bad_descriptors_are_refused() {
    let rig = Rig::new();
    let mut tx: Front<NetifRequest, NetifResponse> = Front::new(&rig.tx_ring);
    let mut rx: Front<NetifRequest, NetifResponse> = Front::new(&rig.rx_ring);
    let mut dp = Datapath::new(Back::new(&rig.tx_ring), Back::new(&rig.rx_ring), GUEST);
    let mut sw = Switch::new();
    let me = sw.add_port("vif1.0");
    let peer = sw.add_port("vif2.0");
    let mut pages = Pages::default();
    let f = frame(OTHER, GUEST, 100, 7);
    let mut page = Box::new([0u8; 4096]);
    page[200..300].copy_from_slice(&f);
    pages.pages.insert(5, page);
    pages.pages.insert(6, Box::new([0u8; 4096]));
    pages.read_only.push(6);

    // One good frame, then: unknown gref, too big, too small, past the
    // page, a flag.
    tx.push(&req(1, 5, 200, 100)).unwrap();
    tx.push(&req(2, 99, 0, 100)).unwrap();
    tx.push(&req(3, 5, 0, NETIF_FRAME_MAX + 1)).unwrap();
    tx.push(&req(4, 5, 0, 13)).unwrap();
    tx.push(&req(5, 5, 4000, 100)).unwrap();
    let mut flagged = req(6, 5, 0, 100);
    flagged.flags = 2;
    tx.push(&flagged).unwrap();
    tx.publish();
    let m = dp.pump(&mut pages, &mut sw, me, 0).unwrap();
    assert_eq!((m.sent, m.refused), (1, 5));
    let got: Vec<(u16, i32)> = core::iter::from_fn(|| tx.take().unwrap())
        .map(|r| (r.id, r.status))
        .collect();
    assert_eq!(
        got,
        [
            (1, NETIF_RSP_OKAY),
            (2, NETIF_RSP_ERROR),
            (3, NETIF_RSP_ERROR),
            (4, NETIF_RSP_ERROR),
            (5, NETIF_RSP_ERROR),
            (6, NETIF_RSP_ERROR)
        ]
    );
    assert_eq!(sw.pop(peer).unwrap(), f);

    // The peer answers: the frame waits until a buffer is posted.
    let back = frame(GUEST, OTHER, 80, 9);
    sw.input(peer, &back, 1);
    let m = dp.pump(&mut pages, &mut sw, me, 1).unwrap();
    assert_eq!(m, Moved::default());
    assert_eq!(sw.queued(me), 1);
    // A read-only buffer is refused (the frame goes), a good one gets the next.
    rx.push(&req(10, 6, 0, 2048)).unwrap();
    rx.push(&req(11, 5, 2048, 2048)).unwrap();
    rx.publish();
    sw.input(peer, &back, 2);
    let m = dp.pump(&mut pages, &mut sw, me, 2).unwrap();
    assert_eq!((m.received, m.refused), (1, 1));
    assert!(m.notify);
    assert_eq!(rx.take().unwrap().unwrap(), answer(10, NETIF_RSP_ERROR));
    assert_eq!(rx.take().unwrap().unwrap(), answer(11, 80));
    assert_eq!(&pages.pages[&5][2048..2048 + 80], &back[..]);

    // Two buffers in one page (same gref): both filled, in order.
    rx.push(&req(12, 5, 0, 2048)).unwrap();
    rx.push(&req(13, 5, 2048, 60)).unwrap();
    rx.publish();
    let small = frame(GUEST, OTHER, 60, 3);
    sw.input(peer, &back, 3);
    sw.input(peer, &small, 3);
    dp.pump(&mut pages, &mut sw, me, 3).unwrap();
    assert_eq!(rx.take().unwrap().unwrap(), answer(12, 80));
    assert_eq!(rx.take().unwrap().unwrap(), answer(13, 60));
    assert_eq!(&pages.pages[&5][2048..2048 + 60], &small[..]);

    // A buffer too small for the frame: refused, and the frame is dropped.
    rx.push(&req(14, 5, 0, 20)).unwrap();
    rx.publish();
    sw.input(peer, &back, 4);
    dp.pump(&mut pages, &mut sw, me, 4).unwrap();
    assert_eq!(rx.take().unwrap().unwrap(), answer(14, NETIF_RSP_ERROR));
    assert_eq!(sw.queued(me), 0);
}

#[test]
fn impossible_indices_break_the_interface() {
    let rig = Rig::new();
    let _tx: Front<NetifRequest, NetifResponse> = Front::new(&rig.tx_ring);
    let mut dp = Datapath::new(Back::new(&rig.tx_ring), Back::new(&rig.rx_ring), GUEST);
    let mut sw = Switch::new();
    let me = sw.add_port("vif1.0");
    // A hostile front end claims a million requests.
    rig.tx_ring
        .req_prod
        .store(1_000_000, core::sync::atomic::Ordering::Release);
    let mut pages = Pages::default();
    assert_eq!(
        dp.pump(&mut pages, &mut sw, me, 0),
        Err(RingError::Overflow)
    );
    assert_eq!(dp.pump(&mut pages, &mut sw, me, 0), Err(RingError::Broken));
}

#[test]
fn a_full_ring_of_frames_moves_in_batches() {
    let rig = Rig::new();
    let mut tx: Front<NetifRequest, NetifResponse> = Front::new(&rig.tx_ring);
    let mut dp = Datapath::new(Back::new(&rig.tx_ring), Back::new(&rig.rx_ring), GUEST);
    let mut sw = Switch::new();
    let me = sw.add_port("vif1.0");
    let peer = sw.add_port("vif2.0");
    let mut page = Box::new([0u8; 4096]);
    page[..60].copy_from_slice(&frame(OTHER, GUEST, 60, 1));
    let mut pages = Pages::default();
    pages.pages.insert(1, page);
    for id in 0..NETIF_RING_SLOTS as u16 {
        tx.push(&req(id, 1, 0, 60)).unwrap();
    }
    tx.publish();
    let m = dp.pump(&mut pages, &mut sw, me, 0).unwrap();
    assert_eq!(m.sent, u64::from(NETIF_RING_SLOTS));
    assert_eq!(sw.queued(peer), NETIF_RING_SLOTS as usize);
}

#[test]
fn frames_from_a_foreign_mac_are_dropped_and_counted() {
    let rig = Rig::new();
    let mut tx: Front<NetifRequest, NetifResponse> = Front::new(&rig.tx_ring);
    let mut dp = Datapath::new(Back::new(&rig.tx_ring), Back::new(&rig.rx_ring), GUEST);
    let mut sw = Switch::new();
    let me = sw.add_port("vif1.0");
    let peer = sw.add_port("vif2.0");
    // Posing as the peer, as a broadcast source, then its own frame.
    let mut page = Box::new([0u8; 4096]);
    page[..60].copy_from_slice(&frame(OTHER, OTHER, 60, 1));
    page[100..160].copy_from_slice(&frame(OTHER, [0xff; 6], 60, 2));
    page[200..260].copy_from_slice(&frame(OTHER, GUEST, 60, 3));
    let mut pages = Pages::default();
    pages.pages.insert(1, page);
    tx.push(&req(1, 1, 0, 60)).unwrap();
    tx.push(&req(2, 1, 100, 60)).unwrap();
    tx.push(&req(3, 1, 200, 60)).unwrap();
    tx.publish();
    let m = dp.pump(&mut pages, &mut sw, me, 0).unwrap();
    assert_eq!((m.sent, m.spoofed, m.refused), (1, 2, 0));
    let got: Vec<(u16, i32)> = core::iter::from_fn(|| tx.take().unwrap())
        .map(|r| (r.id, r.status))
        .collect();
    assert_eq!(
        got,
        [
            (1, NETIF_RSP_DROPPED),
            (2, NETIF_RSP_DROPPED),
            (3, NETIF_RSP_OKAY)
        ]
    );
    // Only the honest frame reached the peer, and the switch did not learn
    // the peer's MAC on this port.
    assert_eq!(sw.queued(peer), 1);
    assert_eq!(sw.pop(peer).unwrap()[12], 3);
    assert_eq!(sw.bridge().lookup(&OTHER, 0), None);
    assert_eq!(sw.bridge().lookup(&GUEST, 0), Some(me));
}
