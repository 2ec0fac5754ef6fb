//! Host tests of the store's wire format: the byte rings (unit, hostile
//! indices, a property-based model interleaving both ends), message
//! assembly, paths, permissions and names.

use super::*;
use proptest::prelude::*;
use std::boxed::Box;
use std::vec::Vec;

fn page() -> Box<SharedStorePage> {
    Box::new(SharedStorePage::new())
}

#[test]
fn layout_matches_xenstore_shape() {
    assert_eq!(core::mem::offset_of!(StorePage, rsp), 1024);
    assert_eq!(core::mem::offset_of!(StorePage, req_cons), 2048);
    assert_eq!(core::mem::offset_of!(StorePage, req_prod), 2052);
    assert_eq!(core::mem::offset_of!(StorePage, rsp_cons), 2056);
    assert_eq!(core::mem::offset_of!(StorePage, rsp_prod), 2060);
    assert_eq!(STORE_HEADER_BYTES, 16);
}

#[test]
fn bytes_flow_both_ways_and_wrap() {
    let p = page();
    let mut c = StoreEndpoint::client(&p);
    let mut s = StoreEndpoint::server();
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    // More than the ring: only what fits goes in.
    assert_eq!(c.write(&p, &data), Ok(STORE_RING_SIZE));
    assert_eq!(c.writable(&p), Ok(0));
    let mut got = [0u8; 700];
    assert_eq!(s.read(&p, &mut got), Ok(700));
    assert_eq!(&got[..], &data[..700]);
    assert_eq!(c.writable(&p), Ok(700));
    assert_eq!(c.write(&p, &data[1024..]), Ok(700));
    let mut rest = std::vec![0u8; 2000];
    assert_eq!(s.read(&p, &mut rest), Ok(1024));
    assert_eq!(&rest[..1024], &data[700..1724]);
    // The response direction is independent.
    assert_eq!(s.write(&p, b"OK\0"), Ok(3));
    let mut r = [0u8; 8];
    assert_eq!(c.read(&p, &mut r), Ok(3));
    assert_eq!(&r[..3], b"OK\0");
    assert_eq!(c.read(&p, &mut r), Ok(0));
}

#[test]
fn indices_wrap_around_u32() {
    let p = page();
    p.req_prod.store(u32::MAX - 5, Ordering::Relaxed);
    p.req_cons.store(u32::MAX - 5, Ordering::Relaxed);
    let mut c = StoreEndpoint::client(&p);
    let mut s = StoreEndpoint::server();
    // The server starts at 0: it adopts nothing from the page, so here it
    // would see a huge backlog. Start it where the page says, as a fresh
    // server of a page it initialised would.
    s.rx_cons = u32::MAX - 5;
    assert_eq!(c.write(&p, b"0123456789"), Ok(10));
    let mut b = [0u8; 16];
    assert_eq!(s.read(&p, &mut b), Ok(10));
    assert_eq!(&b[..10], b"0123456789");
    assert_eq!(p.req_cons.load(Ordering::Relaxed), 4);
}

#[test]
fn a_producer_claiming_more_than_the_ring_breaks_it() {
    let p = page();
    let mut s = StoreEndpoint::server();
    p.req_prod
        .store(STORE_RING_SIZE as u32 + 1, Ordering::Relaxed);
    let mut b = [0u8; 8];
    assert_eq!(s.read(&p, &mut b), Err(RingError::Overflow));
    assert!(s.is_broken());
    // Even once the peer repairs the index, this end stays away.
    p.req_prod.store(0, Ordering::Relaxed);
    assert_eq!(s.read(&p, &mut b), Err(RingError::Broken));
    assert_eq!(s.write(&p, b"x"), Err(RingError::Broken));
    // Exactly a full ring is fine.
    let p = page();
    let mut s = StoreEndpoint::server();
    p.req_prod.store(STORE_RING_SIZE as u32, Ordering::Relaxed);
    assert_eq!(s.readable(&p), Ok(STORE_RING_SIZE));
}

#[test]
fn a_consumer_index_ahead_or_far_behind_breaks_it() {
    let p = page();
    let mut s = StoreEndpoint::server();
    s.write(&p, b"abc").unwrap();
    // The client claims to have consumed bytes never produced.
    p.rsp_cons.store(4, Ordering::Relaxed);
    assert_eq!(s.write(&p, b"d"), Err(RingError::Overflow));
    let p = page();
    let mut s = StoreEndpoint::server();
    p.rsp_cons
        .store(u32::MAX - STORE_RING_SIZE as u32, Ordering::Relaxed);
    assert_eq!(s.writable(&p), Err(RingError::Overflow));
}

#[test]
fn scribbling_on_own_indices_on_the_page_changes_nothing() {
    let p = page();
    let mut c = StoreEndpoint::client(&p);
    let mut s = StoreEndpoint::server();
    c.write(&p, b"hello").unwrap();
    // The client overwrites the server's consumer index: the server keeps
    // its private copy and reads from where it was.
    p.req_cons.store(3, Ordering::Relaxed);
    let mut b = [0u8; 8];
    assert_eq!(s.read(&p, &mut b), Ok(5));
    assert_eq!(&b[..5], b"hello");
}

fn msg(ty: StoreMsgType, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = StoreMsgHeader::new(ty, id, payload.len() as u32)
        .as_bytes()
        .to_vec();
    m.extend_from_slice(payload);
    m
}

#[test]
fn assembler_joins_pieces_and_stops_at_the_message_end() {
    let p = page();
    let mut c = StoreEndpoint::client(&p);
    let mut s = StoreEndpoint::server();
    let mut a = MsgAssembler::new();
    let one = msg(StoreMsgType::Write, 7, b"/a\0value");
    let two = msg(StoreMsgType::Read, 8, b"/a\0");
    c.write(&p, &one[..5]).unwrap();
    assert_eq!(a.pull(&mut s, &p), Ok(None));
    c.write(&p, &one[5..]).unwrap();
    c.write(&p, &two).unwrap();
    let (h, body) = a.pull(&mut s, &p).unwrap().unwrap();
    assert_eq!((h.msg_type, h.req_id, body), (11, 7, &b"/a\0value"[..]));
    let (h, body) = a.pull(&mut s, &p).unwrap().unwrap();
    assert_eq!((h.msg_type, h.req_id, body), (2, 8, &b"/a\0"[..]));
    assert_eq!(a.pull(&mut s, &p), Ok(None));
    // An empty payload is a whole message too.
    c.write(&p, &msg(StoreMsgType::Rm, 9, b"")).unwrap();
    let (h, body) = a.pull(&mut s, &p).unwrap().unwrap();
    assert_eq!((h.req_id, body.len()), (9, 0));
}

#[test]
fn messages_longer_than_the_ring_stream_through() {
    let p = page();
    let mut c = StoreEndpoint::client(&p);
    let mut s = StoreEndpoint::server();
    let mut a = MsgAssembler::new();
    let body: Vec<u8> = (0..STORE_PAYLOAD_MAX).map(|i| (i * 7) as u8).collect();
    let m = msg(StoreMsgType::Write, 1, &body);
    let mut sent = 0;
    let mut got = None;
    while got.is_none() {
        sent += c.write(&p, &m[sent..]).unwrap();
        got = a.pull(&mut s, &p).unwrap().map(|(h, b)| (h, b.to_vec()));
    }
    let (h, b) = got.unwrap();
    assert_eq!(h.len as usize, STORE_PAYLOAD_MAX);
    assert_eq!(b, body);
}

#[test]
fn an_oversized_length_is_refused() {
    let p = page();
    let mut c = StoreEndpoint::client(&p);
    let mut s = StoreEndpoint::server();
    let mut a = MsgAssembler::new();
    let h = StoreMsgHeader {
        msg_type: 2,
        req_id: 1,
        tx_id: 0,
        len: STORE_PAYLOAD_MAX as u32 + 1,
    };
    c.write(&p, h.as_bytes()).unwrap();
    assert_eq!(
        a.pull(&mut s, &p),
        Err(RecvError::TooLong(STORE_PAYLOAD_MAX as u32 + 1))
    );
}

#[test]
fn paths() {
    for good in [
        &b"/"[..],
        b"/local",
        b"/local/domain/1/name",
        b"device/vif/0",
        b"@releaseDomain",
        b"a_b-C9",
    ] {
        assert!(is_valid_path(good), "{good:?}");
    }
    for bad in [
        &b""[..],
        b"//",
        b"/a//b",
        b"/a/",
        b"a/",
        b"/a b",
        b"/a.b",
        b"/\0",
        b"/a/../b",
    ] {
        assert!(!is_valid_path(bad), "{bad:?}");
    }
    let long = std::vec![b'a'; STORE_PATH_MAX];
    assert!(is_valid_path(&long));
    let longer = std::vec![b'a'; STORE_PATH_MAX + 1];
    assert!(!is_valid_path(&longer));
}

#[test]
fn perms_and_names() {
    let p = StorePerm::parse(b"r12").unwrap();
    assert_eq!((p.dom, p.access), (12, Access::Read));
    assert_eq!(std::format!("{p}"), "r12");
    for bad in [
        &b""[..],
        b"r",
        b"x1",
        b"r-1",
        b"r1a",
        b"r99999999999",
        b"r4294967296",
    ] {
        assert_eq!(StorePerm::parse(bad), None, "{bad:?}");
    }
    assert!(Access::Both.read() && Access::Both.write());
    assert!(!Access::None.read() && !Access::Read.write());
    assert_eq!(StoreError::from_name(b"EACCES"), Some(StoreError::Access));
    assert_eq!(StoreError::from_name(b"EAGAIN"), None);
    assert_eq!(XenbusState::parse(b"4"), Some(XenbusState::Connected));
    assert_eq!(XenbusState::parse(b" 2\n"), Some(XenbusState::InitWait));
    assert_eq!(XenbusState::parse(b"9"), None);
    assert_eq!(XenbusState::parse(b"x"), None);
    assert_eq!(split_field(b"a\0b\0"), Some((&b"a"[..], &b"b\0"[..])));
    assert_eq!(split_field(b"ab"), None);
}

/// One step of the interleaving model.
#[derive(Clone, Debug)]
enum Step {
    /// The client writes this many bytes of its stream (as much as fits).
    Write(usize),
    /// The server reads into a buffer of this size.
    Read(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..1500).prop_map(Step::Write),
        (0usize..1500).prop_map(Step::Read),
    ]
}

proptest! {
    /// Any interleaving of partial writes and reads of any sizes delivers
    /// the stream in order, never more than the ring holds in flight, and
    /// never reports a broken ring between honest ends; starting anywhere
    /// in the index space.
    #[test]
    fn interleaved_ends_deliver_the_stream(
        steps in proptest::collection::vec(step(), 1..200),
        start in any::<u32>(),
    ) {
        let p = page();
        p.req_prod.store(start, Ordering::Relaxed);
        p.req_cons.store(start, Ordering::Relaxed);
        let mut c = StoreEndpoint::client(&p);
        let mut s = StoreEndpoint::server();
        s.rx_cons = start;
        let stream: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect();
        let (mut written, mut read) = (0usize, 0usize);
        for st in steps {
            match st {
                Step::Write(n) => {
                    let free = c.writable(&p).unwrap();
                    let w = c.write(&p, &stream[written..written + n]).unwrap();
                    prop_assert_eq!(w, n.min(free));
                    written += w;
                }
                Step::Read(n) => {
                    let mut buf = std::vec![0u8; n];
                    let r = s.read(&p, &mut buf).unwrap();
                    prop_assert_eq!(r, n.min(written - read));
                    prop_assert_eq!(&buf[..r], &stream[read..read + r]);
                    read += r;
                }
            }
            prop_assert!(written - read <= STORE_RING_SIZE);
        }
    }

    /// A hostile producer index never makes the reader return more than
    /// the ring holds or read outside it; an impossible one is reported.
    #[test]
    fn hostile_producer_index(prod in any::<u32>()) {
        let p = page();
        p.req_prod.store(prod, Ordering::Relaxed);
        let mut s = StoreEndpoint::server();
        let mut buf = std::vec![0u8; 4096];
        match s.read(&p, &mut buf) {
            Ok(n) => prop_assert!(n <= STORE_RING_SIZE && prod as usize == n),
            Err(e) => {
                prop_assert_eq!(e, RingError::Overflow);
                prop_assert!(prod as usize > STORE_RING_SIZE);
            }
        }
    }
}
