//! Host tests of the shared ring: unit tests, a property-based model that
//! interleaves both ends' steps, a hostile producer and consumer, and two
//! threads exchanging entries for real.

use super::*;
use proptest::prelude::*;
use std::boxed::Box;
use std::vec::Vec;

/// A request of 200 bytes: 25 words per slot, so the ring has 16 slots.
type Req = [u64; 25];
/// A smaller response.
type Rsp = [u64; 3];

fn req(seq: u64) -> Req {
    let mut r = [0u64; 25];
    r[0] = seq;
    for (i, w) in r.iter_mut().enumerate().skip(1) {
        *w = seq
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(i as u32);
    }
    r
}

fn answer(r: &Req) -> Rsp {
    [r[0], r.iter().fold(0u64, |a, w| a ^ w), !r[0]]
}

fn ring() -> Box<SharedRing> {
    Box::new(SharedRing::new())
}

#[test]
fn geometry() {
    assert_eq!(ring_size(200), 16);
    assert_eq!(ring_size(8), 256);
    assert_eq!(ring_size(1), 256);
    assert_eq!(ring_size(0), 256);
    assert_eq!(ring_size(RING_SLOT_AREA_BYTES), 1);
    assert_eq!(ring_size(RING_SLOT_AREA_BYTES + 1), 0);
    assert_eq!(Front::<Req, Rsp>::SIZE, 16);
    assert_eq!(Back::<Req, Rsp>::SIZE, 16);
    assert_eq!(core::mem::offset_of!(SharedRing, req_event), 4);
    assert_eq!(core::mem::offset_of!(SharedRing, rsp_prod), 8);
    assert_eq!(core::mem::offset_of!(SharedRing, rsp_event), 12);
}

#[test]
fn notify_rule_matches_io_ring_h() {
    // The peer asked about index 5: notify iff 5 is in (old, new].
    assert!(need_notify(4, 5, 5));
    assert!(need_notify(0, 9, 5));
    assert!(!need_notify(5, 9, 5));
    assert!(!need_notify(0, 4, 5));
    // Across the wrap of the free-running indices.
    assert!(need_notify(u32::MAX - 1, 2, 0));
    assert!(!need_notify(1, 2, u32::MAX));
}

#[test]
fn round_trip_fills_and_drains() {
    let r = ring();
    let mut f = Front::<Req, Rsp>::new(&r);
    let mut b = Back::<Req, Rsp>::new(&r);
    for s in 0..16 {
        f.push(&req(s)).unwrap();
    }
    assert_eq!(f.push(&req(99)), Err(RingError::Full));
    // Not published yet: the back end sees nothing.
    assert_eq!(b.take(), Ok(None));
    assert!(f.publish(), "the back end asked for the first request");
    assert!(!f.publish(), "nothing new");
    for s in 0..16 {
        let q = b.take().unwrap().unwrap();
        assert_eq!(q, req(s));
        b.push(&answer(&q)).unwrap();
    }
    assert_eq!(b.take(), Ok(None));
    assert_eq!(
        b.push(&[0; 3]),
        Err(RingError::Full),
        "no request to answer"
    );
    assert!(b.publish());
    for s in 0..16 {
        assert_eq!(f.take().unwrap(), Some(answer(&req(s))));
    }
    assert_eq!(f.take(), Ok(None));
    assert_eq!(f.free_slots(), 16);
}

#[test]
fn final_check_asks_for_the_next_entry() {
    let r = ring();
    let mut f = Front::<Req, Rsp>::new(&r);
    let mut b = Back::<Req, Rsp>::new(&r);
    f.push(&req(0)).unwrap();
    assert!(f.publish());
    assert_eq!(b.final_check(), Ok(true));
    b.take().unwrap().unwrap();
    // Nothing more: the back end asks for request index 1 and sleeps.
    assert_eq!(b.final_check(), Ok(false));
    assert_eq!(r.req_event.load(Ordering::Relaxed), 2);
    f.push(&req(1)).unwrap();
    f.push(&req(2)).unwrap();
    assert!(f.publish(), "the sleeping back end is woken");
    f.push(&req(3)).unwrap();
    assert!(
        !f.publish(),
        "it has not gone back to sleep: no second event"
    );
}

#[test]
fn wraps_the_free_running_indices() {
    let r = ring();
    let mut f = Front::<Req, Rsp>::new(&r);
    let mut b = Back::<Req, Rsp>::new(&r);
    let start = u32::MAX - 20;
    (f.req_prod_pvt, f.req_published, f.rsp_cons) = (start, start, start);
    (b.req_cons, b.rsp_prod_pvt, b.rsp_published) = (start, start, start);
    r.req_prod.store(start, Ordering::Relaxed);
    r.rsp_prod.store(start, Ordering::Relaxed);
    for s in 0..100u64 {
        f.push(&req(s)).unwrap();
        f.publish();
        let q = b.take().unwrap().unwrap();
        assert_eq!(q[0], s);
        b.push(&answer(&q)).unwrap();
        b.publish();
        assert_eq!(f.take().unwrap(), Some(answer(&req(s))));
    }
}

#[test]
fn a_request_changed_after_it_was_taken_stays_as_taken() {
    let r = ring();
    let mut f = Front::<Req, Rsp>::new(&r);
    let mut b = Back::<Req, Rsp>::new(&r);
    f.push(&req(7)).unwrap();
    f.publish();
    let q = b.take().unwrap().unwrap();
    // The hostile front end rewrites the slot after the back end copied it.
    for w in &r.slots[..25] {
        w.store(u64::MAX, Ordering::Relaxed);
    }
    assert_eq!(q, req(7));
}

#[test]
fn a_huge_producer_index_breaks_the_ring_for_good() {
    let r = ring();
    let mut f = Front::<Req, Rsp>::new(&r);
    let mut b = Back::<Req, Rsp>::new(&r);
    r.req_prod.store(0x8000_0000, Ordering::Release);
    assert_eq!(b.take(), Err(RingError::Overflow));
    r.req_prod.store(0, Ordering::Release);
    assert_eq!(b.take(), Err(RingError::Broken));
    assert_eq!(b.push(&[0; 3]), Err(RingError::Broken));
    // A back end answering requests never published.
    f.push(&req(0)).unwrap();
    r.rsp_prod.store(1, Ordering::Release);
    assert_eq!(f.take(), Err(RingError::Overflow));
    assert_eq!(f.push(&req(1)), Err(RingError::Broken));
}

#[test]
fn a_front_end_overrunning_unanswered_requests_is_caught() {
    let r = ring();
    let mut f = Front::<Req, Rsp>::new(&r);
    let mut b = Back::<Req, Rsp>::new(&r);
    for s in 0..16 {
        f.push(&req(s)).unwrap();
    }
    f.publish();
    for _ in 0..4 {
        b.take().unwrap().unwrap();
    }
    // 4 consumed and unanswered: their slots are the back end's until it
    // answers, so at most 12 more requests fit, whatever the front claims.
    r.req_prod.store(4 + 13, Ordering::Release);
    assert_eq!(b.unconsumed(), Err(RingError::Overflow));
}

// ---- property-based model ---------------------------------------------------

/// One step of either end.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Front: push a request (if a slot is free).
    Push,
    /// Front: publish pushed requests.
    PublishReq,
    /// Front: consume one response.
    TakeRsp,
    /// Front: publish, final check, sleep if nothing arrived.
    FrontSleep,
    /// Back: consume one request and answer it.
    Serve,
    /// Back: publish answers.
    PublishRsp,
    /// Back: publish, final check, sleep if nothing arrived.
    BackSleep,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Push),
        2 => Just(Step::PublishReq),
        2 => Just(Step::TakeRsp),
        1 => Just(Step::FrontSleep),
        3 => Just(Step::Serve),
        2 => Just(Step::PublishRsp),
        1 => Just(Step::BackSleep),
    ]
}

/// Both ends of one ring, with the model's view: what was sent, what
/// arrived, and who sleeps.
struct Model<'r> {
    f: Front<'r, Req, Rsp>,
    b: Back<'r, Req, Rsp>,
    sent: u64,
    served: u64,
    answered: u64,
    front_asleep: bool,
    back_asleep: bool,
}

impl Model<'_> {
    fn run(&mut self, s: Step) {
        match s {
            Step::Push | Step::PublishReq | Step::TakeRsp | Step::FrontSleep
                if self.front_asleep => {}
            Step::Serve | Step::PublishRsp | Step::BackSleep if self.back_asleep => {}
            Step::Push => {
                if self.f.push(&req(self.sent)).is_ok() {
                    self.sent += 1;
                }
            }
            Step::PublishReq => self.publish_req(),
            Step::TakeRsp => self.take_rsp(),
            Step::FrontSleep => {
                self.publish_req();
                self.front_asleep = !self.f.final_check().unwrap();
            }
            Step::Serve => {
                if self.b.unanswered() == 0
                    && let Some(q) = self.b.take().unwrap()
                {
                    assert_eq!(q, req(self.served), "request lost, reordered or corrupted");
                    self.served += 1;
                    self.b.push(&answer(&q)).unwrap();
                }
            }
            Step::PublishRsp => self.publish_rsp(),
            Step::BackSleep => {
                self.publish_rsp();
                self.back_asleep = !self.b.final_check().unwrap();
            }
        }
    }

    fn publish_req(&mut self) {
        let new_work = self.f.req_prod_pvt != self.f.req_published;
        let notify = self.f.publish();
        if self.back_asleep && new_work {
            assert!(
                notify,
                "lost wake-up: the sleeping back end was not notified"
            );
        }
        if notify {
            self.back_asleep = false;
        }
    }

    fn publish_rsp(&mut self) {
        let new_work = self.b.rsp_prod_pvt != self.b.rsp_published;
        let notify = self.b.publish();
        if self.front_asleep && new_work {
            assert!(
                notify,
                "lost wake-up: the sleeping front end was not notified"
            );
        }
        if notify {
            self.front_asleep = false;
        }
    }

    fn take_rsp(&mut self) {
        if let Some(a) = self.f.take().unwrap() {
            assert_eq!(a, answer(&req(self.answered)), "response out of order");
            self.answered += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any interleaving of honest steps, from any starting index: requests
    /// and responses arrive once each, in order, intact; a sleeping end is
    /// always notified of new work; once both stop, everything drains.
    #[test]
    fn honest_ends_lose_nothing(steps in proptest::collection::vec(step(), 1..400), start in any::<u32>()) {
        let r = ring();
        let mut m = Model {
            f: Front::new(&r),
            b: Back::new(&r),
            sent: 0, served: 0, answered: 0,
            front_asleep: false, back_asleep: false,
        };
        (m.f.req_prod_pvt, m.f.req_published, m.f.rsp_cons) = (start, start, start);
        (m.b.req_cons, m.b.rsp_prod_pvt, m.b.rsp_published) = (start, start, start);
        r.req_prod.store(start, Ordering::Relaxed);
        r.rsp_prod.store(start, Ordering::Relaxed);
        r.req_event.store(start.wrapping_add(1), Ordering::Relaxed);
        r.rsp_event.store(start.wrapping_add(1), Ordering::Relaxed);
        for s in steps {
            m.run(s);
            prop_assert!(m.f.outstanding() <= Front::<Req, Rsp>::SIZE);
        }
        // Never both asleep with work left (that would be a deadlock).
        for _ in 0..100 {
            for s in [Step::FrontSleep, Step::Serve, Step::BackSleep, Step::TakeRsp] {
                m.run(s);
            }
            if m.front_asleep && m.back_asleep {
                break;
            }
        }
        prop_assert!(m.front_asleep && m.back_asleep);
        prop_assert_eq!(m.answered, m.sent);
        prop_assert_eq!(m.served, m.sent);
    }

    /// A hostile front end writes any index and slot at any time. The back
    /// end never panics, never reports more requests than can be
    /// outstanding, and once it saw an overflow refuses the ring for good.
    #[test]
    fn hostile_front_end_is_contained(writes in proptest::collection::vec((0u8..4, any::<u32>(), 0usize..RING_SLOT_AREA_WORDS, any::<u64>()), 1..200)) {
        let r = ring();
        let mut b = Back::<Req, Rsp>::new(&r);
        let mut broke = false;
        for (what, v, word, data) in writes {
            match what {
                0 => r.req_prod.store(v, Ordering::Release),
                1 => r.req_prod.store(b.req_cons.wrapping_add(v % 40), Ordering::Release),
                2 => r.slots[word].store(data, Ordering::Relaxed),
                _ => r.req_event.store(v, Ordering::Relaxed),
            }
            let unanswered = b.unanswered();
            match b.unconsumed() {
                Ok(n) => {
                    prop_assert!(!broke);
                    prop_assert!(n <= Back::<Req, Rsp>::SIZE - unanswered);
                    if n > 0 {
                        let q = b.take().unwrap().unwrap();
                        // Answer every other request so slots stay busy.
                        if q[0].is_multiple_of(2) {
                            b.push(&answer(&q)).unwrap();
                            b.publish();
                        }
                    }
                }
                Err(RingError::Overflow) => {
                    prop_assert!(!broke);
                    broke = true;
                }
                Err(e) => {
                    prop_assert_eq!(e, RingError::Broken);
                    prop_assert!(broke);
                }
            }
            let _ = b.final_check();
        }
    }

    /// A hostile back end: the front end never accepts more responses than
    /// it published requests.
    #[test]
    fn hostile_back_end_is_contained(pushes in 0u32..16, claims in proptest::collection::vec(any::<u32>(), 1..50)) {
        let r = ring();
        let mut f = Front::<Req, Rsp>::new(&r);
        for s in 0..pushes {
            f.push(&req(u64::from(s))).unwrap();
        }
        f.publish();
        let mut got = 0u32;
        for c in claims {
            r.rsp_prod.store(c % 64, Ordering::Release);
            match f.take() {
                Ok(Some(_)) => got += 1,
                Ok(None) => {}
                Err(_) => break,
            }
            prop_assert!(got <= pushes);
        }
    }
}

/// Two threads, one per end, exchanging entries for real with the
/// final-check protocol and park/unpark as the event channel. A lost wake-up
/// shows as a park that times out while work was waiting.
#[test]
fn two_threads_exchange_everything_in_order() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::thread;
    use std::time::Duration;

    const N: u64 = 20_000;
    let r: &'static SharedRing = Box::leak(ring());
    let lost = Arc::new(AtomicUsize::new(0));
    let front_thread = thread::current();
    let lost_b = lost.clone();
    let back = thread::spawn(move || {
        let mut b = Back::<Req, Rsp>::new(r);
        let mut served = 0;
        // A lost wake-up ends the exchange at once (the assertion reports it).
        while served < N && lost_b.load(Ordering::Relaxed) == 0 {
            while let Some(q) = b.take().unwrap() {
                assert_eq!(q, req(served));
                served += 1;
                b.push(&answer(&q)).unwrap();
            }
            if b.publish() {
                front_thread.unpark();
            }
            if !b.final_check().unwrap() && served < N {
                let t = std::time::Instant::now();
                thread::park_timeout(Duration::from_secs(2));
                if t.elapsed() >= Duration::from_secs(2) && b.unconsumed().unwrap() > 0 {
                    lost_b.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let mut f = Front::<Req, Rsp>::new(r);
    let (mut sent, mut answered) = (0, 0);
    while answered < N && lost.load(Ordering::Relaxed) == 0 {
        while sent < N && f.push(&req(sent)).is_ok() {
            sent += 1;
        }
        if f.publish() {
            back.thread().unpark();
        }
        while let Some(a) = f.take().unwrap() {
            assert_eq!(a, answer(&req(answered)));
            answered += 1;
        }
        // Sleep only when nothing can be sent: all sent, or the ring full.
        let stuck = sent == N || f.free_slots() == 0;
        if answered < N && stuck && !f.final_check().unwrap() {
            let t = std::time::Instant::now();
            thread::park_timeout(Duration::from_secs(2));
            if t.elapsed() >= Duration::from_secs(2) && f.unconsumed().unwrap() > 0 {
                lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    back.join().unwrap();
    assert_eq!(lost.load(Ordering::Relaxed), 0, "lost wake-ups");
    let v: Vec<u32> = [&r.req_prod, &r.rsp_prod]
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .collect();
    assert_eq!(v, [N as u32, N as u32]);
}
