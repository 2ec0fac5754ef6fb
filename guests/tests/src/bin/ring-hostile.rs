//! ring-hostile: a hostile back end facing `ring-victim` (its `peer=`; the
//! ring is set up through the configuration store).
//! Obeys the victim's commands (`test_guests::rings::Cmd`):
//! - `MapAndHold`: maps grant 1 read-only and keeps it;
//! - `Probe`: maps a grant given to another domain, maps a read-only grant
//!   writable, maps references never granted and beyond the table, copies
//!   from and to grants it may not use, unmaps a handle twice and one never
//!   issued; each must be refused (printed as `ring-hostile: refused: <what>:
//!   <error>`); answers with how many were allowed;
//! - `Scribble`: maps the ring a second time, scribbles on the event
//!   indices, claims a huge response index, notifies, and then writes
//!   through its read-only mapping of grant 1, which must crash it (else it
//!   prints `ring-hostile: STILL ALIVE (isolation broken)`).
#![cfg_attr(target_os = "none", no_std, no_main)]

use pv_guest_sdk::abi::Error;
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::grant::{self, CopyBatch, GrantPtr, GrantRef, Mapping};
use pv_guest_sdk::store::Store;
use pv_guest_sdk::{StartInfo, events, println};
use test_guests::events::peer;
use test_guests::rings::{Back, Cmd, Rsp, STATUS_BAD_REQUEST, STATUS_OK, connect_back};
use test_guests::still_alive;

pv_guest_sdk::entry!(hostile);

/// Counts what should have been refused and was not.
struct Probes {
    allowed: u32,
}

impl Probes {
    fn expect<T>(&mut self, what: &str, r: Result<T, Error>, want: Error) {
        match r {
            Ok(_) => {
                println!("ring-hostile: FAIL {what} was allowed");
                self.allowed += 1;
            }
            Err(e) if e == want => println!("ring-hostile: refused: {what}: {e}"),
            Err(e) => println!("ring-hostile: FAIL {what}: {e}, expected {want}"),
        }
    }
}

/// Tries everything it was not given. Returns how many were allowed.
fn probe(peer: DomainId) -> u32 {
    let mut p = Probes { allowed: 0 };
    let ro = GrantRef(1);
    let not_mine = GrantRef(2);
    let rw = GrantRef(3);
    p.expect(
        "map of a grant given to another domain",
        grant::map(peer, not_mine, true),
        Error::PermissionDenied,
    );
    p.expect(
        "writable map of a read-only grant",
        grant::map(peer, ro, false),
        Error::PermissionDenied,
    );
    p.expect(
        "map of a reference never granted",
        grant::map(peer, GrantRef(500), true),
        Error::PermissionDenied,
    );
    p.expect(
        "map of a reference beyond the table",
        grant::map(peer, GrantRef(100_000), true),
        Error::NotFound,
    );
    let mut buf = [0u8; 64];
    let mut copies = CopyBatch::new();
    let from_other = copies.from_grant(
        GrantPtr {
            domid: peer,
            gref: not_mine,
            offset: 0,
        },
        &mut buf,
    );
    let data = [0x55u8; 64];
    let into_ro = copies.to_grant(
        &data,
        GrantPtr {
            domid: peer,
            gref: ro,
            offset: 0,
        },
    );
    match (from_other, into_ro, copies.run()) {
        (Ok(a), Ok(b), Ok(_)) => {
            let (sa, sb) = (copies.status(a), copies.status(b));
            p.expect(
                "copy from a grant given to another domain",
                sa,
                Error::PermissionDenied,
            );
            p.expect("copy into a read-only grant", sb, Error::PermissionDenied);
        }
        other => println!("ring-hostile: FAIL copy batch: {other:?}"),
    }
    match grant::map(peer, rw, false) {
        Ok(m) => {
            let h = m.handle();
            if let Err(e) = m.unmap() {
                println!("ring-hostile: FAIL first unmap: {e}");
            }
            // SAFETY: `m` is gone: no mapping of this program holds `h`.
            p.expect(
                "second unmap of a handle",
                unsafe { grant::unmap_handle(h) },
                Error::NotFound,
            );
        }
        Err(e) => println!("ring-hostile: FAIL map of grant 3: {e}"),
    }
    // SAFETY: this program never had a mapping with this handle.
    let never = unsafe { grant::unmap_handle(0xdead_0000_0042) };
    p.expect("unmap of a handle never issued", never, Error::NotFound);
    p.allowed
}

/// Scribbles on the ring through a second mapping and claims a huge
/// response index, then notifies the victim.
fn scribble(peer: DomainId, ring_ref: GrantRef, port: events::Port) -> Result<(), Error> {
    use core::sync::atomic::Ordering;
    let second = grant::map(peer, ring_ref, false)?;
    let ring = second.shared().ok_or(Error::PermissionDenied)?.as_ring();
    ring.req_event.store(0xdead_beef, Ordering::Release);
    ring.rsp_event.store(0x1234_5678, Ordering::Release);
    let prod = ring.rsp_prod.load(Ordering::Acquire);
    ring.rsp_prod
        .store(prod.wrapping_add(0x4000_0000), Ordering::Release);
    println!(
        "ring-hostile: claimed response index {:#x} (was {prod:#x})",
        prod.wrapping_add(0x4000_0000)
    );
    events::send(port)?;
    // Stays mapped: the victim must cope with a peer that still maps it.
    core::mem::forget(second);
    Ok(())
}

fn hostile(si: &StartInfo) {
    if let Err(e) = events::init() {
        println!("ring-hostile: FAIL events: {e}");
        return;
    }
    let Some(peer) = peer(si) else {
        println!("ring-hostile: FAIL no peer= on the command line");
        return;
    };
    let mut store = match Store::connect() {
        Ok(s) => s,
        Err(e) => {
            println!("ring-hostile: FAIL store: {e}");
            return;
        }
    };
    let (mut ring, details): (Back, _) = match connect_back(&mut store, peer) {
        Ok(r) => r,
        Err(e) => {
            println!("ring-hostile: FAIL rendezvous: {e}");
            return;
        }
    };
    let mut held: Option<Mapping> = None;
    loop {
        let req = match ring.take() {
            Ok(Some(r)) => r,
            Ok(None) => {
                if let Err(e) = ring.wait(None) {
                    println!("ring-hostile: FAIL wait: {e}");
                    return;
                }
                continue;
            }
            Err(e) => {
                println!("ring-hostile: FAIL ring: {e}");
                return;
            }
        };
        let status = match Cmd::from_raw(req.pad) {
            Some(Cmd::MapAndHold) => match grant::map(peer, GrantRef(1), true) {
                Ok(m) => {
                    println!("ring-hostile: holding grant 1 read-only at {:#x}", m.ipa());
                    held = Some(m);
                    STATUS_OK
                }
                Err(_) => STATUS_BAD_REQUEST,
            },
            Some(Cmd::Probe) => probe(peer),
            Some(Cmd::Scribble) => {
                if let Err(e) = scribble(peer, GrantRef(details.ring_ref), ring.port()) {
                    println!("ring-hostile: FAIL scribble: {e}");
                    return;
                }
                let Some(m) = held.take() else {
                    println!("ring-hostile: FAIL nothing held");
                    return;
                };
                println!("ring-hostile: writing through a read-only mapping");
                // SAFETY: deliberately bad: the page is mapped read-only at
                // stage 2, so the hypervisor must fault this store. No Rust
                // reference of this program points into it.
                unsafe { core::ptr::write_volatile(m.ipa() as usize as *mut u64, 0xbad) };
                still_alive("ring-hostile");
            }
            None => STATUS_BAD_REQUEST,
        };
        let rsp = Rsp {
            id: req.id,
            status,
            ..Rsp::default()
        };
        if ring.push(&rsp).is_err() || ring.publish().is_err() {
            println!("ring-hostile: FAIL answering");
            return;
        }
    }
}
