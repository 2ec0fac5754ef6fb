//! Host tests of the event-channel core: port lifecycle, delivery through the
//! event page, masks, timers, polls, time pages, and exactly-once delivery
//! against a model of the guest's upcall handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::vec::Vec;

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::evtchn::{EventPage, NR_PORTS, Port, PortState, Virq};
use tern_abi::time::TimeInfo;

use super::*;
use crate::addr::PAGE_SIZE;
use crate::physmem::testing::Arena;

const BASE: u64 = 0x8000_0000;
const A: DomainId = DomainId(1);
const B: DomainId = DomainId(2);
const C: DomainId = DomainId(3);

/// Zeroed memory and event pages for domains 1..=3 (page `i` for domain i).
fn setup() -> (Arena, Events) {
    let mem = Arena::new(BASE, 16);
    mem.zero(PhysAddr(BASE), 16 * PAGE_SIZE);
    let mut ev = Events::new();
    for d in [A, B, C] {
        ev.init_shared(d, page(d)).unwrap();
    }
    (mem, ev)
}

fn page(d: DomainId) -> PhysAddr {
    PhysAddr(BASE + u64::from(d.0) * PAGE_SIZE)
}

fn word(d: DomainId, offset: u64) -> PhysAddr {
    PhysAddr(page(d).0 + offset)
}

fn pending(mem: &dyn PhysMem, d: DomainId, p: Port) -> bool {
    mem.load_u64(word(d, EventPage::pending_offset(p.word()))) & p.bit() != 0
}

fn mask(mem: &dyn PhysMem, d: DomainId, p: Port) {
    mem.fetch_or_u64(word(d, EventPage::mask_offset(p.word())), p.bit());
}

/// The guest's upcall handler (`specs/hypercalls.md`, `evtchn_op`): returns
/// the ports it handled, in order.
fn guest_dispatch(mem: &dyn PhysMem, base: PhysAddr, vcpu: usize) -> Vec<Port> {
    let at = |o: u64| PhysAddr(base.0 + o);
    let mut handled = Vec::new();
    mem.store_u64(at(EventPage::upcall_pending_offset(vcpu)), 0);
    loop {
        let sel = mem.fetch_and_u64(at(EventPage::pending_sel_offset(vcpu)), 0);
        if sel == 0 {
            return handled;
        }
        for w in (0..64).filter(|w| sel & (1 << w) != 0) {
            let live = mem.load_u64(at(EventPage::pending_offset(w)))
                & !mem.load_u64(at(EventPage::mask_offset(w)));
            for b in (0..64).filter(|b| live & (1 << b) != 0) {
                let old = mem.fetch_and_u64(at(EventPage::pending_offset(w)), !(1 << b));
                if old & (1 << b) != 0 {
                    handled.push(Port((w * 64 + b) as u32));
                }
            }
        }
    }
}

#[test]
fn interdomain_lifecycle_and_close_semantics() {
    let (mem, mut ev) = setup();
    let pa = ev.alloc_unbound(&mem, A, B).unwrap();
    assert_eq!(pa, Port(1), "lowest free port, never 0");
    let s = ev.status(A, pa);
    assert_eq!((s.state, s.detail), (PortState::Unbound, 2));
    assert_eq!(ev.send(&mem, A, pa), Err(Error::InvalidState), "unbound");

    assert_eq!(
        ev.bind_interdomain(&mem, C, A, pa),
        Err(Error::PermissionDenied),
        "reserved for B, not C"
    );
    let pb = ev.bind_interdomain(&mem, B, A, pa).unwrap();
    assert_eq!(
        ev.bind_interdomain(&mem, B, A, pa),
        Err(Error::InvalidState),
        "already connected"
    );
    assert_eq!(
        ev.bind_interdomain(&mem, B, A, Port(99)),
        Err(Error::NotFound)
    );
    let (sa, sb) = (ev.status(A, pa), ev.status(B, pb));
    assert_eq!(sa.state, PortState::Interdomain);
    assert_eq!(tern_abi::evtchn::split_status_detail(sa.detail), (2, pb.0));
    assert_eq!(tern_abi::evtchn::split_status_detail(sb.detail), (1, pa.0));

    ev.send(&mem, B, pb).unwrap();
    assert!(pending(&mem, A, pa));
    assert_eq!(ev.take_notifies(), [Notify::new(A, 0)]);

    // Closing B's end makes A's end unbound again, reserved for B.
    ev.close(&mem, B, pb).unwrap();
    assert_eq!(ev.status(B, pb).state, PortState::Free);
    let s = ev.status(A, pa);
    assert_eq!((s.state, s.detail), (PortState::Unbound, 2));
    assert_eq!(ev.send(&mem, A, pa), Err(Error::InvalidState));
    assert_eq!(ev.send(&mem, B, pb), Err(Error::NotFound), "closed");
    assert_eq!(ev.close(&mem, B, pb), Err(Error::NotFound), "closed twice");
    // ... and B may connect again.
    let pb2 = ev.bind_interdomain(&mem, B, A, pa).unwrap();
    ev.send(&mem, A, pa).unwrap();
    assert!(pending(&mem, B, pb2));
}

#[test]
fn foreign_and_unallocated_ports_are_errors() {
    let (mem, mut ev) = setup();
    let pa = ev.bind_ipi(&mem, A, 0).unwrap();
    // B never allocated that number: sending on it is an error, not A's port.
    assert_eq!(ev.send(&mem, B, pa), Err(Error::NotFound));
    assert_eq!(ev.close(&mem, B, pa), Err(Error::NotFound));
    assert_eq!(ev.unmask(&mem, B, pa), Err(Error::NotFound));
    assert_eq!(ev.bind_vcpu(B, pa, 0), Err(Error::NotFound));
    assert_eq!(ev.status(B, pa).state, PortState::Free);
    assert!(!pending(&mem, A, pa) && !pending(&mem, B, pa));
    assert!(ev.take_notifies().is_empty());
    // A domain with no event page cannot allocate; others' sends to it fail.
    let d = DomainId(9);
    assert_eq!(ev.alloc_unbound(&mem, d, A), Err(Error::InvalidState));
    assert_eq!(ev.bind_ipi(&mem, d, 0), Err(Error::InvalidState));
    assert_eq!(ev.send(&mem, d, Port(1)), Err(Error::NotFound));
    assert_eq!(ev.init_shared(A, page(A)), Err(Error::Exists));
    // Virq ports cannot be sent on.
    let pv = ev.bind_virq(&mem, A, Virq::Console, 0).unwrap();
    assert_eq!(ev.send(&mem, A, pv), Err(Error::InvalidState));
}

#[test]
fn masked_ports_pend_silently_and_unmask_redelivers() {
    let (mem, mut ev) = setup();
    let p = ev.bind_ipi(&mem, A, 0).unwrap();
    mask(&mem, A, p);
    ev.send(&mem, A, p).unwrap();
    assert!(pending(&mem, A, p));
    assert!(ev.take_notifies().is_empty(), "masked: no upcall");
    assert!(!ev.upcall_pending(&mem, A, 0));
    ev.unmask(&mem, A, p).unwrap();
    assert_eq!(ev.take_notifies(), [Notify::new(A, 0)]);
    assert!(ev.upcall_pending(&mem, A, 0));
    assert_eq!(guest_dispatch(&mem, page(A), 0), [p]);
    // Unmasking a port that is not pending delivers nothing.
    ev.unmask(&mem, A, p).unwrap();
    assert!(ev.take_notifies().is_empty());
    assert!(guest_dispatch(&mem, page(A), 0).is_empty());
}

#[test]
fn events_coalesce_while_pending_and_upcall_is_raised_once() {
    let (mem, mut ev) = setup();
    let p1 = ev.bind_ipi(&mem, A, 1).unwrap();
    let p2 = ev.bind_ipi(&mem, A, 1).unwrap();
    ev.send(&mem, A, p1).unwrap();
    ev.send(&mem, A, p1).unwrap();
    ev.send(&mem, A, p2).unwrap();
    assert_eq!(
        ev.take_notifies(),
        [Notify::new(A, 1)],
        "one upcall for all three"
    );
    assert!(!ev.upcall_pending(&mem, A, 0));
    assert_eq!(guest_dispatch(&mem, page(A), 1), [p1, p2]);
    ev.send(&mem, A, p2).unwrap();
    assert_eq!(ev.take_notifies(), [Notify::new(A, 1)]);
}

#[test]
fn all_4095_ports_then_no_memory() {
    let (mem, mut ev) = setup();
    let ports: Vec<Port> = (1..NR_PORTS)
        .map(|_| ev.bind_ipi(&mem, A, 0).unwrap())
        .collect();
    assert_eq!(ports, (1..NR_PORTS).map(Port).collect::<Vec<_>>());
    assert_eq!(ev.bind_ipi(&mem, A, 0), Err(Error::NoMemory));
    assert_eq!(ev.port_count(A), 4095);
    ev.send(&mem, A, Port(4095)).unwrap();
    assert_eq!(
        mem.load_u64(word(A, EventPage::pending_offset(63))),
        1 << 63
    );
    assert_eq!(guest_dispatch(&mem, page(A), 0), [Port(4095)]);
    ev.close(&mem, A, Port(1234)).unwrap();
    assert_eq!(ev.bind_ipi(&mem, A, 0), Ok(Port(1234)), "reused");
    for p in 1..NR_PORTS {
        ev.close(&mem, A, Port(p)).unwrap();
    }
    assert_eq!(ev.port_count(A), 0);
}

#[test]
fn virq_binding_rules_and_vcpu_rebinding() {
    let (mem, mut ev) = setup();
    let t0 = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    let t1 = ev.bind_virq(&mem, A, Virq::Timer, 1).unwrap();
    assert_ne!(t0, t1, "per-vCPU virq: one port per vCPU");
    assert_eq!(ev.bind_virq(&mem, A, Virq::Timer, 1), Err(Error::Exists));
    let c = ev.bind_virq(&mem, A, Virq::Console, 0).unwrap();
    assert_eq!(ev.bind_virq(&mem, A, Virq::Console, 2), Err(Error::Exists));
    assert_eq!(ev.bind_vcpu(A, t1, 0), Err(Error::InvalidState));
    let ipi = ev.bind_ipi(&mem, A, 3).unwrap();
    assert_eq!(ev.bind_vcpu(A, ipi, 0), Err(Error::InvalidState));
    ev.bind_vcpu(A, c, 2).unwrap();
    ev.raise_virq(&mem, A, Virq::Console);
    assert_eq!(ev.take_notifies(), [Notify::new(A, 2)]);
    ev.raise_vcpu_virq(&mem, A, 1, Virq::Timer);
    assert_eq!(ev.take_notifies(), [Notify::new(A, 1)]);
    assert!(pending(&mem, A, t1) && !pending(&mem, A, t0));
    // Unbound virqs are dropped.
    ev.raise_virq(&mem, B, Virq::DomExc);
    assert!(ev.take_notifies().is_empty());
    // Closing frees the virq for binding again.
    ev.close(&mem, A, c).unwrap();
    assert!(ev.bind_virq(&mem, A, Virq::Console, 0).is_ok());
    let s = ev.status(A, t1);
    assert_eq!((s.state, s.vcpu, s.detail), (PortState::Virq, 1, 0));
}

#[test]
fn new_ports_start_with_pending_clear() {
    let (mem, mut ev) = setup();
    mem.fetch_or_u64(word(A, EventPage::pending_offset(0)), u64::MAX);
    let p = ev.bind_ipi(&mem, A, 0).unwrap();
    assert!(!pending(&mem, A, p));
    ev.send(&mem, A, p).unwrap();
    ev.close(&mem, A, p).unwrap();
    assert!(!pending(&mem, A, p), "close clears pending");
}

#[test]
fn destroying_a_domain_unbinds_its_peers() {
    let (mem, mut ev) = setup();
    let pa = ev.alloc_unbound(&mem, A, B).unwrap();
    let pb = ev.bind_interdomain(&mem, B, A, pa).unwrap();
    ev.set_timer(B, 0, 500);
    ev.send(&mem, A, pa).unwrap();
    ev.destroy_domain(B);
    assert!(ev.take_notifies().is_empty(), "no notify for a dead domain");
    assert_eq!(ev.next_deadline(), None);
    let s = ev.status(A, pa);
    assert_eq!((s.state, s.detail), (PortState::Unbound, 2));
    assert_eq!(ev.send(&mem, A, pa), Err(Error::InvalidState));
    assert_eq!(ev.status(B, pb).state, PortState::Free);
    ev.close(&mem, A, pa).unwrap();
}

#[test]
fn timers_fire_in_deadline_order_never_early() {
    let (mem, mut ev) = setup();
    // Domain virtual time = physical - offset.
    ev.set_counter_offset(A, 1000);
    ev.set_counter_offset(B, 5000);
    let ta = ev.bind_virq(&mem, A, Virq::Timer, 0).unwrap();
    ev.set_timer(A, 0, 4500); // physical 5500
    ev.set_timer(B, 1, 100); // physical 5100
    ev.set_timer(C, 0, 5300); // physical 5300, offset 0
    assert_eq!(ev.timer(A, 0), Some(4500));
    assert_eq!(ev.next_deadline(), Some(5100));
    assert!(ev.expire(&mem, 5099).is_empty(), "not early");
    assert_eq!(ev.expire(&mem, 5100), [Notify::new(B, 1)]);
    assert_eq!(
        ev.expire(&mem, 10_000),
        [Notify::new(C, 0), Notify::new(A, 0)]
    );
    assert!(pending(&mem, A, ta));
    assert_eq!(ev.next_deadline(), None);
    // Replace and cancel.
    ev.set_timer(A, 0, 9000);
    ev.set_timer(A, 0, 8000);
    assert_eq!(ev.next_deadline(), Some(9000));
    ev.set_timer(A, 0, 0);
    assert_eq!(ev.next_deadline(), None);
    // Far deadlines saturate instead of wrapping.
    ev.set_timer(B, 0, u64::MAX - 1);
    assert_eq!(ev.next_deadline(), Some(u64::MAX));
}

#[test]
fn poll_wakes_on_masked_port_or_deadline() {
    let (mem, mut ev) = setup();
    let p = ev.bind_ipi(&mem, A, 0).unwrap();
    let q = ev.bind_ipi(&mem, A, 0).unwrap();
    mask(&mem, A, p);
    assert_eq!(ev.poll(&mem, A, 1, vec![Port(77)], 0), Err(Error::NotFound));
    assert_eq!(ev.poll(&mem, A, 1, vec![p], 0), Ok(true));
    assert!(ev.is_polling(A, 1));
    ev.send(&mem, A, q).unwrap();
    assert_eq!(ev.take_notifies(), [Notify::new(A, 0)], "not polled");
    assert!(ev.is_polling(A, 1));
    ev.send(&mem, A, p).unwrap();
    assert_eq!(ev.take_notifies(), [Notify::new(A, 1)], "masked, polled");
    assert!(!ev.is_polling(A, 1));
    assert_eq!(
        ev.poll(&mem, A, 1, vec![q, p], 0),
        Ok(false),
        "already pending"
    );
    // A deadline ends a poll.
    guest_dispatch(&mem, page(A), 0);
    mem.fetch_and_u64(word(A, EventPage::pending_offset(0)), 0);
    assert_eq!(ev.poll(&mem, A, 2, vec![p], 700), Ok(true));
    assert_eq!(ev.expire(&mem, 700), [Notify::new(A, 2)]);
    assert!(!ev.is_polling(A, 2));
    assert_eq!(
        ev.poll(&mem, DomainId(9), 0, vec![p], 0),
        Err(Error::InvalidState)
    );
}

#[test]
fn wallclock_is_published_per_domain_under_a_seqlock() {
    let (mem, mut ev) = setup();
    let freq = 1_000_000;
    ev.set_counter_offset(DomainId::DOM0, 2_000_000);
    ev.set_counter_offset(A, 500_000);
    ev.set_counter_offset(B, 3_500_000); // created after the clock was set
    let tp = |d: DomainId| PhysAddr(page(d).0 + 2048);
    let read = |d: DomainId| -> [u64; 5] {
        core::array::from_fn(|i| mem.load_u64(PhysAddr(tp(d).0 + 8 * i as u64)))
    };
    ev.init_time_page(&mem, A, tp(A), freq);
    assert_eq!(read(A), [2, freq, 0, 0, 0], "unset clock reads 0");
    // dom0: 1000 s + 0.9 s when its counter read 1_000_000 (physical 3_000_000).
    ev.set_wallclock(&mem, DomainId::DOM0, 1000, 900_000_000, 1_000_000, freq)
        .unwrap();
    assert_eq!(read(A), [4, freq, 1000, 900_000_000, 2_500_000]);
    // B's counter started at physical 3_500_000: half a second later.
    ev.init_time_page(&mem, B, tp(B), freq);
    assert_eq!(read(B), [2, freq, 1001, 400_000_000, 0]);
    assert_eq!(
        ev.set_wallclock(&mem, DomainId::DOM0, 1, 1_000_000_000, 0, freq),
        Err(Error::InvalidArgument)
    );
    assert_eq!(read(B)[0], 2, "a failed call changes nothing");
    assert_eq!(TimeInfo::SIZE, 64);
}

/// A tiny deterministic generator, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random interleavings of sends, masks, unmasks and guest upcalls: every
/// event the guest handles was sent, and at the end every send has been
/// handled (events sent while their port was pending coalesce, so the check
/// is per port: none is left pending, and handles <= sends).
#[test]
fn random_interleavings_lose_nothing() {
    let (mem, mut ev) = setup();
    let ports: Vec<Port> = (0..130)
        .map(|i| ev.bind_ipi(&mem, A, i % 3).unwrap())
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sent = vec![0u64; NR_PORTS as usize];
    let mut handled = vec![0u64; NR_PORTS as usize];
    let mut since_handle = vec![false; NR_PORTS as usize];
    let mut raised = [false; 3];
    for _ in 0..100_000 {
        match rng.next(10) {
            0..6 => {
                let p = ports[rng.next(ports.len() as u64) as usize];
                ev.send(&mem, A, p).unwrap();
                sent[p.0 as usize] += 1;
                since_handle[p.0 as usize] = true;
            }
            6 => mask(&mem, A, ports[rng.next(ports.len() as u64) as usize]),
            7 => ev
                .unmask(&mem, A, ports[rng.next(ports.len() as u64) as usize])
                .unwrap(),
            _ => {
                // The upcall runs only on a vCPU whose interrupt was raised.
                let v = rng.next(3) as usize;
                if raised[v] {
                    raised[v] = false;
                    for p in guest_dispatch(&mem, page(A), v) {
                        assert!(since_handle[p.0 as usize], "duplicate {p:?}");
                        since_handle[p.0 as usize] = false;
                        handled[p.0 as usize] += 1;
                    }
                }
            }
        }
        for n in ev.take_notifies() {
            raised[n.vcpu] = true;
        }
        // Level-triggered: the line stays up while upcall_pending is set.
        for (v, r) in raised.iter_mut().enumerate() {
            *r |= ev.upcall_pending(&mem, A, v);
        }
    }
    for &p in &ports {
        ev.unmask(&mem, A, p).unwrap();
    }
    for n in ev.take_notifies() {
        raised[n.vcpu] = true;
    }
    for (v, r) in raised.iter().enumerate() {
        if *r {
            for p in guest_dispatch(&mem, page(A), v) {
                assert!(since_handle[p.0 as usize], "duplicate {p:?}");
                since_handle[p.0 as usize] = false;
                handled[p.0 as usize] += 1;
            }
        }
    }
    for &p in &ports {
        let i = p.0 as usize;
        assert!(
            !since_handle[i],
            "{p:?}: sent after its last handling, lost"
        );
        assert!(handled[i] <= sent[i] && (sent[i] == 0) == (handled[i] == 0));
    }
    assert!(handled.iter().sum::<u64>() > 10_000);
}

/// Physical memory shared between a "hypervisor" thread and a "guest"
/// thread: only the atomic operations are used.
struct SharedMem(Vec<AtomicU64>);

impl SharedMem {
    fn w(&self, pa: PhysAddr) -> &AtomicU64 {
        &self.0[((pa.0 - BASE) / 8) as usize]
    }
}

impl PhysMem for SharedMem {
    fn read(&self, _: PhysAddr, _: &mut [u8]) {
        unimplemented!("atomics only")
    }
    fn write(&self, _: PhysAddr, _: &[u8]) {
        unimplemented!("atomics only")
    }
    fn zero(&self, _: PhysAddr, _: u64) {
        unimplemented!("atomics only")
    }
    fn copy(&self, _: PhysAddr, _: PhysAddr, _: u64) {
        unimplemented!("atomics only")
    }
    fn table_ptr(&self, _: PhysAddr) -> *mut [u64; 512] {
        unimplemented!("atomics only")
    }
    fn load_u64(&self, pa: PhysAddr) -> u64 {
        self.w(pa).load(Ordering::Acquire)
    }
    fn store_u64(&self, pa: PhysAddr, v: u64) {
        self.w(pa).store(v, Ordering::Release)
    }
    fn fetch_or_u64(&self, pa: PhysAddr, v: u64) -> u64 {
        self.w(pa).fetch_or(v, Ordering::AcqRel)
    }
    fn fetch_and_u64(&self, pa: PhysAddr, v: u64) -> u64 {
        self.w(pa).fetch_and(v, Ordering::AcqRel)
    }
}

/// 100,000 sends from one thread while a guest thread handles them
/// concurrently, taking the "interrupt" only when a `Notify` or a set
/// `upcall_pending` says so. Each of 64 ports has at most one event in
/// flight (the guest acknowledges it), so every send must be handled exactly
/// once; a lost wake-up shows as a stall.
#[test]
fn hundred_thousand_concurrent_sends_exactly_once() {
    const N: u64 = 100_000;
    let mem = Arc::new(SharedMem(
        (0..2 * PAGE_SIZE / 8).map(|_| AtomicU64::new(0)).collect(),
    ));
    let base = PhysAddr(BASE + PAGE_SIZE);
    let mut ev = Events::new();
    ev.init_shared(A, base).unwrap();
    let ports: Vec<Port> = (0..64)
        .map(|_| ev.bind_ipi(mem.as_ref(), A, 0).unwrap())
        .collect();
    let in_flight: Arc<Vec<AtomicBool>> =
        Arc::new((0..NR_PORTS).map(|_| AtomicBool::new(false)).collect());
    let irq = Arc::new(AtomicBool::new(false));
    let handled = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let guest = {
        let (mem, in_flight, irq, handled, stop) = (
            mem.clone(),
            in_flight.clone(),
            irq.clone(),
            handled.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                if !irq.swap(false, Ordering::AcqRel) {
                    // Yield, not spin: the two threads may share one core.
                    std::thread::yield_now();
                    continue;
                }
                for p in guest_dispatch(mem.as_ref(), base, 0) {
                    assert!(
                        in_flight[p.0 as usize].swap(false, Ordering::AcqRel),
                        "duplicate {p:?}"
                    );
                    handled.fetch_add(1, Ordering::AcqRel);
                }
                // upcall_done, then re-entry: the line follows upcall_pending.
                if mem.load_u64(PhysAddr(base.0 + EventPage::upcall_pending_offset(0))) != 0 {
                    irq.store(true, Ordering::Release);
                }
            }
        })
    };
    // A lost wake-up shows as no progress at all for a long time.
    let stalled = {
        let handled = handled.clone();
        let mut last = (0, std::time::Instant::now());
        move || {
            let now = handled.load(Ordering::Acquire);
            if now != last.0 {
                last = (now, std::time::Instant::now());
            }
            last.1.elapsed() > std::time::Duration::from_secs(10)
        }
    };
    let mut stalled = stalled;
    let mut sent = 0;
    let mut i = 0;
    while sent < N {
        let p = ports[i % ports.len()];
        i += 1;
        if in_flight[p.0 as usize].swap(true, Ordering::AcqRel) {
            in_flight[p.0 as usize].store(true, Ordering::Release);
            assert!(!stalled(), "stalled: lost wake-up");
            std::thread::yield_now();
            continue;
        }
        ev.send(mem.as_ref(), A, p).unwrap();
        sent += 1;
        if !ev.take_notifies().is_empty() {
            irq.store(true, Ordering::Release);
        }
    }
    while handled.load(Ordering::Acquire) < N {
        assert!(!stalled(), "stalled at the end: lost wake-up");
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Release);
    guest.join().unwrap();
    assert_eq!(handled.load(Ordering::Acquire), N);
}

#[test]
fn notifications_pop_in_order_once_each_and_the_queue_refills() {
    let (mem, mut ev) = setup();
    let a0 = ev.bind_ipi(&mem, A, 0).unwrap();
    let a1 = ev.bind_ipi(&mem, A, 1).unwrap();
    ev.send(&mem, A, a1).unwrap();
    ev.send(&mem, A, a0).unwrap();
    // A vCPU already queued is not queued twice.
    ev.notify(Notify::new(A, 1));
    assert_eq!(ev.pop_notify(), Some(Notify::new(A, 1)));
    // Taken ones may be queued again while others wait.
    ev.notify(Notify::new(A, 1));
    assert_eq!(ev.pop_notify(), Some(Notify::new(A, 0)));
    assert_eq!(ev.pop_notify(), Some(Notify::new(A, 1)));
    assert_eq!(ev.pop_notify(), None);
    assert_eq!(ev.pop_notify(), None);
    ev.notify(Notify::new(B, 0));
    assert_eq!(ev.take_notifies(), [Notify::new(B, 0)]);
    assert_eq!(ev.pop_notify(), None);
}
