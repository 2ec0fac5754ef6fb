//! Host tests of the event page's scan.

extern crate std;
use super::*;
use core::sync::atomic::AtomicU64;

/// The hypervisor's delivery (steps 1 to 4), for the scan to consume.
fn deliver(page: &SharedPage, vcpu: usize, port: Port) -> bool {
    if page.pending[port.word()].fetch_or(port.bit(), Ordering::AcqRel) & port.bit() != 0 {
        return false;
    }
    if page.mask[port.word()].load(Ordering::Acquire) & port.bit() != 0 {
        return false;
    }
    let sel = 1 << port.word();
    page.vcpu[vcpu].pending_sel.fetch_or(sel, Ordering::AcqRel) & sel == 0
        && page.vcpu[vcpu].upcall_pending.fetch_or(1, Ordering::AcqRel) == 0
}

#[test]
fn scan_handles_each_pending_port_once() {
    let page = std::boxed::Box::new(SharedPage::new());
    assert!(deliver(&page, 0, Port(3)));
    assert!(!deliver(&page, 0, Port(3)), "coalesced");
    assert!(!deliver(&page, 0, Port(4095)), "upcall already pending");
    page.mask[1].store(1 << 1, Ordering::Release);
    deliver(&page, 0, Port(65));
    let mut seen = std::vec::Vec::new();
    assert_eq!(page.scan(0, |_| 0, |p| seen.push(p)), (2, true));
    assert_eq!(seen, [Port(3), Port(4095)]);
    assert!(page.is_pending(Port(65)), "masked: left pending");
    assert!(!page.upcall_pending(0));
    assert_eq!(page.scan(0, |_| 0, |_| panic!("nothing new")), (0, false));
}

#[test]
fn scan_leaves_other_vcpus_ports() {
    let page = std::boxed::Box::new(SharedPage::new());
    deliver(&page, 1, Port(5));
    deliver(&page, 0, Port(6));
    let owner = |p: Port| if p.0 == 5 { 1 } else { 0 };
    let mut seen = std::vec::Vec::new();
    page.scan(0, owner, |p| seen.push(p));
    assert_eq!(seen, [Port(6)]);
    assert!(page.is_pending(Port(5)));
    page.scan(1, owner, |p| seen.push(p));
    assert_eq!(seen, [Port(6), Port(5)]);
}

#[test]
fn concurrent_delivery_and_scan_lose_nothing() {
    concurrent_delivery_loses_nothing(false);
}

/// As the wait loop scans: upcall_pending cleared by a store, not a swap.
#[test]
fn concurrent_delivery_and_wait_loop_scan_lose_nothing() {
    concurrent_delivery_loses_nothing(true);
}

/// A guest thread scans (`store_clear`: as `wait_loop` does) while this
/// one delivers; a lost event would leave the sender waiting forever.
fn concurrent_delivery_loses_nothing(store_clear: bool) {
    use std::sync::Arc;
    const N: usize = 20_000;
    let page = Arc::new(SharedPage::new());
    let in_flight: Arc<[AtomicBool; 64]> = Arc::new([const { AtomicBool::new(false) }; 64]);
    let handled = Arc::new(AtomicU64::new(0));
    let guest = {
        let (page, in_flight, handled) = (page.clone(), in_flight.clone(), handled.clone());
        std::thread::spawn(move || {
            let handle = |p: Port| {
                assert!(
                    in_flight[p.0 as usize - 1].swap(false, Ordering::AcqRel),
                    "dup"
                );
                handled.fetch_add(1, Ordering::AcqRel);
            };
            while handled.load(Ordering::Acquire) < N as u64 {
                if !page.upcall_pending(0) {
                    std::thread::yield_now();
                    continue;
                }
                if store_clear {
                    let me = &page.vcpu[0];
                    me.upcall_pending.store(0, Ordering::SeqCst);
                    page.scan_selected(me, 0, |_| 0, handle);
                } else {
                    page.scan(0, |_| 0, handle);
                }
            }
        })
    };
    let mut sent = 0;
    let mut i = 0;
    while sent < N {
        let k = i % 64;
        i += 1;
        if in_flight[k].swap(true, Ordering::AcqRel) {
            std::thread::yield_now();
            continue;
        }
        deliver(&page, 0, Port(k as u32 + 1));
        sent += 1;
    }
    guest.join().unwrap();
    assert_eq!(handled.load(Ordering::Acquire), N as u64);
}

/// One port in one word: the straight-through case of `scan_selected`.
#[test]
fn scan_handles_a_lone_port() {
    let page = std::boxed::Box::new(SharedPage::new());
    assert!(deliver(&page, 0, Port(70)));
    let mut seen = std::vec::Vec::new();
    assert_eq!(page.scan(0, |_| 0, |p| seen.push(p)), (1, true));
    assert_eq!(seen, [Port(70)]);
    assert!(!page.is_pending(Port(70)));
    assert_eq!(page.vcpu[0].pending_sel.load(Ordering::Acquire), 0);
}

/// The lone port belongs to another vCPU: left pending for it.
#[test]
fn scan_leaves_a_lone_port_of_another_vcpu() {
    let page = std::boxed::Box::new(SharedPage::new());
    deliver(&page, 0, Port(9));
    let owner = |_: Port| 1;
    assert_eq!(page.scan(0, owner, |_| panic!("not ours")), (0, true));
    assert!(page.is_pending(Port(9)));
    let mut seen = std::vec::Vec::new();
    // As the hypervisor would select it for vCPU 1.
    page.vcpu[1].pending_sel.fetch_or(1, Ordering::AcqRel);
    page.vcpu[1].upcall_pending.store(1, Ordering::Release);
    assert_eq!(page.scan(1, owner, |p| seen.push(p)), (1, true));
    assert_eq!(seen, [Port(9)]);
}

/// A selected word whose only live port is masked, or with nothing live
/// left: the general scan, which handles nothing.
#[test]
fn scan_of_a_word_with_nothing_live() {
    let page = std::boxed::Box::new(SharedPage::new());
    page.mask[0].store(Port(2).bit(), Ordering::Release);
    page.pending[0].store(Port(2).bit(), Ordering::Release);
    page.vcpu[0].pending_sel.store(1, Ordering::Release);
    page.vcpu[0].upcall_pending.store(1, Ordering::Release);
    assert_eq!(page.scan(0, |_| 0, |_| panic!("masked")), (0, true));
    assert!(page.is_pending(Port(2)));
    page.vcpu[0].pending_sel.store(1 << 5, Ordering::Release);
    assert_eq!(page.scan(0, |_| 0, |_| panic!("nothing")), (0, false));
}

/// Events delivered while a handler runs are found by the same scan, from
/// the lone-port case and from the general one.
#[test]
fn scan_finds_what_handlers_let_in() {
    let page = std::boxed::Box::new(SharedPage::new());
    deliver(&page, 0, Port(3));
    let mut seen = std::vec::Vec::new();
    let n = page.scan(
        0,
        |_| 0,
        |p| {
            seen.push(p);
            match p.0 {
                3 => {
                    deliver(&page, 0, Port(200));
                    deliver(&page, 0, Port(201));
                }
                200 => {
                    deliver(&page, 0, Port(4000));
                }
                _ => {}
            }
        },
    );
    assert_eq!(n.0, 4);
    assert_eq!(seen, [Port(3), Port(200), Port(201), Port(4000)]);
    // The deliveries set upcall_pending again; nothing is left behind it.
    assert_eq!(page.scan(0, |_| 0, |_| panic!("all handled")), (0, true));
}
