//! dom0's one network back end and switch, with the hypercalls around
//! them: store nodes for each interface of a new domain, mapping its rings
//! and binding its port when its front end is ready, grant copies of its
//! frames, the physical NIC as the switch's uplink and dom0's own
//! interface on it. Interfaces on bridge `nat0` are on a second switch
//! whose gateway port is dom0's NAT (`crate::switch::nat`), which sends
//! their traffic out through dom0's own uplink address.
//!
//! dom0's loops call [`take_kick`] in their wait condition and [`poll`]
//! after waking (next to the store's `serve`); [`poll`] never blocks. The
//! toolstack calls [`attach`] for a new domain before unpausing it and
//! [`detach`] before destroying it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::netif::{self, DEVICE_TYPE};
use pv_guest_sdk::abi::ring::{Back, SharedRing};
use pv_guest_sdk::abi::store::{StoreError, StoreMsgType, StorePerm, XenbusState};
use pv_guest_sdk::abi::{Error, store::Access};
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::{self, CopyBatch, GrantPtr, GrantRef, Mapping};
use pv_guest_sdk::println;
use smoltcp::phy::{Device, RxToken, TxToken};

use super::datapath::{Datapath, FrameCopy};
use super::handshake::{self, Details, Phase, Step};
use crate::devlist::VifRow;
use crate::devspec::VifSpec;
use crate::store::service as store;
use crate::switch::host::HostStack;
use crate::switch::nat::{NAT_BRIDGE, NAT_GATEWAY, NAT_PREFIX, Nat, Out};
use crate::switch::{BRIDGE_NAME, PortId, Switch};
use crate::virtio::net::Net;

/// The physical NIC. dom0 runs on one vCPU and touches the NIC only with
/// [`NET`] locked, never from an event handler.
struct Uplink(Net);

// SAFETY: `Net` is not `Send` only because its MMIO transport holds a raw
// pointer to the device's registers; those stay mapped for dom0's life and
// are only used with `NET` locked (see `Uplink`), so moving the owner
// between contexts is sound.
unsafe impl Send for Uplink {}

/// A connected interface's rings and port.
struct Link {
    // Declared before the mappings, so dropped first: it borrows their pages.
    dp: Datapath<'static>,
    _tx: Mapping,
    _rx: Mapping,
    port: Port,
}

struct Vif {
    dom: DomainId,
    index: u32,
    mac: [u8; 6],
    /// Whether it is on `nat0` (else `br0`).
    nat: bool,
    sw_port: PortId,
    phase: Phase,
    link: Option<Link>,
    /// Frames moved so far, both ways (`top`'s I/O column).
    frames: u64,
    /// Frames dropped because their source MAC was not this interface's.
    spoofed: u64,
    /// The store generation whose `state` this end has seen.
    seen: u64,
}

impl Vif {
    fn name(&self) -> String {
        format!("vif{}.{}", self.dom.0, self.index)
    }

    fn back_dir(&self) -> String {
        format!(
            "/local/domain/0/backend/{DEVICE_TYPE}/{}/{}",
            self.dom.0, self.index
        )
    }

    fn front_dir(&self) -> String {
        format!(
            "/local/domain/{}/device/{DEVICE_TYPE}/{}",
            self.dom.0, self.index
        )
    }
}

#[derive(Default)]
struct Service {
    switch: Switch,
    /// `nat0`'s switch, and its port to the NAT gateway once it has one.
    nat_switch: Switch,
    gw_port: Option<PortId>,
    nat: Nat,
    vifs: Vec<Vif>,
    uplink: Option<(Uplink, PortId)>,
    host: Option<HostStack>,
}

static NET: spin::Mutex<Option<Service>> = spin::Mutex::new(None);
/// Set by every interface port's event handler, taken by [`take_kick`].
static KICK: AtomicBool = AtomicBool::new(false);

fn with<R>(f: impl FnOnce(&mut Service) -> R) -> R {
    f(NET.lock().get_or_insert_with(Service::default))
}

fn on_event(_: Port) {
    KICK.store(true, Ordering::Release);
}

fn now_ms() -> u64 {
    pv_guest_sdk::time::now() / 1_000_000
}

/// Whether an interface or the NIC has work (for the main loop's wait
/// condition; call [`poll`] when it is `true`). Acknowledges the NIC's
/// interrupt.
pub fn take_kick() -> bool {
    let nic = with(|s| s.uplink.as_ref().is_some_and(|(u, _)| u.0.ready()));
    KICK.swap(false, Ordering::AcqRel) | nic
}

/// Plugs the first of `nics` into the switch as its uplink, with dom0's own
/// interface (the NIC's MAC, DHCP) beside it.
pub fn start_uplink(nics: Vec<Net>) {
    let Some(nic) = nics.into_iter().next() else {
        return;
    };
    let mac = nic.mac();
    with(|s| {
        let up = s.switch.add_port("uplink");
        let host = s.switch.add_port("dom0");
        s.uplink = Some((Uplink(nic), up));
        s.host = Some(HostStack::new(host, mac, crate::net::now()));
    });
    println!("dom0: netback: {BRIDGE_NAME} up, uplink virtio-net");
    poll();
}

/// Creates the back-end directory of `vif` (owned by dom0, readable by the
/// front end) with `frontend-id`, `mac` and state InitWait.
fn publish(vif: &Vif) -> Result<(), StoreError> {
    let dir = vif.back_dir();
    store::request(StoreMsgType::Mkdir, &[dir.as_bytes(), b"\0"].concat())?;
    let perms = [
        StorePerm {
            dom: 0,
            access: Access::None,
        },
        StorePerm {
            dom: vif.dom.0,
            access: Access::Read,
        },
    ];
    let mut body = [dir.as_bytes(), b"\0"].concat();
    for p in perms {
        body.extend_from_slice(format!("{p}\0").as_bytes());
    }
    store::request(StoreMsgType::SetPerms, &body)?;
    store::write(
        &format!("{dir}/frontend-id"),
        format!("{}", vif.dom.0).as_bytes(),
    )?;
    store::write(
        &format!("{dir}/{}", netif::KEY_MAC),
        &netif::format_mac(vif.mac),
    )?;
    store::write(
        &format!("{dir}/state"),
        format!("{}", XenbusState::InitWait.raw()).as_bytes(),
    )
}

/// Gives domain `id` (created, not yet unpaused) the interfaces `vifs`
/// lists: a switch port each and its back-end directory in the store. The
/// front end connects later, when the domain runs. On failure the
/// interfaces made so far are removed; the failing step is named.
pub fn attach(id: DomainId, vifs: &[VifSpec]) -> Result<(), (&'static str, Error)> {
    for (i, spec) in vifs.iter().enumerate() {
        let nat = spec.bridge == NAT_BRIDGE;
        if spec.bridge != BRIDGE_NAME && !nat {
            detach(id);
            return Err(("vif: no such bridge", Error::NotFound));
        }
        let mac = spec.mac_for(id.0, i);
        let made = with(|s| {
            let name = format!("vif{}.{i}", id.0);
            if nat && s.gw_port.is_none() {
                s.gw_port = Some(s.nat_switch.add_port("nat0-gateway"));
                let [a, b, c, d] = NAT_GATEWAY;
                println!(
                    "dom0: netback: {NAT_BRIDGE} up, gateway {a}.{b}.{c}.{d}/{NAT_PREFIX}, NAT through the uplink"
                );
            }
            let sw = if nat {
                &mut s.nat_switch
            } else {
                &mut s.switch
            };
            let vif = Vif {
                dom: id,
                index: i as u32,
                mac,
                nat,
                sw_port: sw.add_port(&name),
                phase: Phase::Waiting,
                link: None,
                frames: 0,
                spoofed: 0,
                seen: u64::MAX,
            };
            let r = publish(&vif);
            s.vifs.push(vif);
            r
        });
        if made.is_err() {
            detach(id);
            return Err(("vif: store", Error::NoMemory));
        }
    }
    Ok(())
}

/// `network-list`'s rows for domain `id`'s interfaces, in index order:
/// what the back end holds, with the numbers the front end published and
/// the back end's state from the store.
pub fn list(id: DomainId) -> Vec<VifRow> {
    let vifs: Vec<(u32, [u8; 6], u64, String, String)> = with(|s| {
        s.vifs
            .iter()
            .filter(|v| v.dom == id)
            .map(|v| (v.index, v.mac, v.frames, v.front_dir(), v.back_dir()))
            .collect()
    });
    // The store is read with the back end unlocked.
    vifs.into_iter()
        .map(|(idx, mac, frames, fd, bd)| {
            let number = |dir: &str, key: &str| {
                crate::devlist::store_number(store::read(&format!("{dir}/{key}")).as_deref())
            };
            VifRow {
                idx,
                mac,
                state: number(&bd, "state").unwrap_or(0),
                evtch: number(&fd, netif::KEY_EVENT_CHANNEL),
                tx_ring_ref: number(&fd, netif::KEY_TX_RING_REF),
                rx_ring_ref: number(&fd, netif::KEY_RX_RING_REF),
                frames,
            }
        })
        .collect()
}

/// Frames the back end moved for domain `id`, every interface, both ways.
pub fn frames(id: DomainId) -> u64 {
    with(|s| {
        s.vifs
            .iter()
            .filter(|v| v.dom == id)
            .map(|v| v.frames)
            .sum()
    })
}

/// Removes domain `id`'s interfaces: unmaps their rings, closes their
/// ports, takes them off the switch and removes their back-end directory.
pub fn detach(id: DomainId) {
    let gone: Vec<Vif> = with(|s| {
        let (gone, kept) = core::mem::take(&mut s.vifs)
            .into_iter()
            .partition(|v| v.dom == id);
        s.vifs = kept;
        for v in &gone {
            let sw = if v.nat {
                &mut s.nat_switch
            } else {
                &mut s.switch
            };
            sw.remove_port(v.sw_port);
        }
        gone
    });
    if gone.is_empty() {
        return;
    }
    for mut v in gone {
        unlink(&mut v);
    }
    let dir = format!("/local/domain/0/backend/{DEVICE_TYPE}/{}", id.0);
    let _ = store::request(StoreMsgType::Rm, &[dir.as_bytes(), b"\0"].concat());
}

/// Drops `vif`'s rings and port.
fn unlink(vif: &mut Vif) {
    if let Some(link) = vif.link.take() {
        let _ = events::close(link.port);
        // The datapath goes first, then the mappings (field order).
        drop(link);
    }
}

/// Maps `vif`'s rings and binds its port from the front end's details.
fn link(vif: &Vif) -> Result<Link, String> {
    let dir = vif.front_dir();
    let get = |k: &str| store::read(&format!("{dir}/{k}")).unwrap_or_default();
    let d = Details::parse(
        &get(netif::KEY_TX_RING_REF),
        &get(netif::KEY_RX_RING_REF),
        &get(netif::KEY_EVENT_CHANNEL),
    )
    .ok_or("details missing or not numbers")?;
    let map = |gref: u32, what: &str| -> Result<(Mapping, &'static SharedRing), String> {
        let m = grant::map(vif.dom, GrantRef(gref), false)
            .map_err(|e| format!("cannot map {what} ring (gref {gref}): {e}"))?;
        let page = m.shared().ok_or("ring mapped read-only")?;
        // SAFETY: the page stays mapped at its fixed IPA until the mapping
        // is dropped, which `Link`'s field order puts after the datapath
        // that holds this reference; it never leaves the `Link`.
        let ring: &'static SharedRing = unsafe { &*(page.as_ring() as *const SharedRing) };
        Ok((m, ring))
    };
    let (tx_map, tx) = map(d.tx_ring_ref, "tx")?;
    let (rx_map, rx) = map(d.rx_ring_ref, "rx")?;
    let port = events::bind_interdomain(vif.dom, Port(d.event_channel))
        .map_err(|e| format!("cannot bind port {}: {e}", d.event_channel))?;
    events::on(port, on_event);
    Ok(Link {
        dp: Datapath::new(Back::new(tx), Back::new(rx), vif.mac),
        _tx: tx_map,
        _rx: rx_map,
        port,
    })
}

/// Steps `vif`'s handshake by its front end's state.
fn handshake(vif: &mut Vif) {
    if !store::changed_since(&mut vif.seen) {
        return;
    }
    let front =
        store::read(&format!("{}/state", vif.front_dir())).and_then(|v| XenbusState::parse(&v));
    match handshake::step(vif.phase, front) {
        Step::Wait => {}
        Step::Attach => match link(vif) {
            Ok(l) => {
                vif.link = Some(l);
                vif.phase = Phase::Connected;
                store::set_state(&vif.back_dir(), XenbusState::Connected);
                println!(
                    "dom0: netback: {} connected, mac {}",
                    vif.name(),
                    core::str::from_utf8(&netif::format_mac(vif.mac)).unwrap_or("?")
                );
                // Frames may wait already (the front end posted buffers).
                KICK.store(true, Ordering::Release);
            }
            Err(why) => close(vif, &why),
        },
        Step::Detach => {
            unlink(vif);
            vif.phase = Phase::Closed;
            store::set_state(&vif.back_dir(), XenbusState::Closed);
            println!("dom0: netback: {} closed by its front end", vif.name());
        }
        Step::Reset => {
            vif.phase = Phase::Waiting;
            store::set_state(&vif.back_dir(), XenbusState::InitWait);
        }
    }
}

/// Stops serving `vif` because its front end broke the rules.
fn close(vif: &mut Vif, why: &str) {
    unlink(vif);
    vif.phase = Phase::Closed;
    store::set_state(&vif.back_dir(), XenbusState::Closed);
    println!("dom0: netback: {}: {why}; closed", vif.name());
}

/// Grant copies to and from one front end's pages.
struct GrantCopy(DomainId);

impl GrantCopy {
    fn ptr(&self, (gref, offset): (u32, usize)) -> GrantPtr {
        GrantPtr {
            domid: self.0,
            gref: GrantRef(gref),
            offset,
        }
    }
}

fn outcomes(batch: &mut CopyBatch<'_>, idx: &[Option<usize>]) -> Vec<bool> {
    if batch.run().is_err() {
        return alloc::vec![false; idx.len()];
    }
    idx.iter()
        .map(|i| i.is_some_and(|i| batch.status(i).is_ok()))
        .collect()
}

impl FrameCopy for GrantCopy {
    fn read_guest(&mut self, src: &[(u32, usize)], dst: &mut [Vec<u8>]) -> Vec<bool> {
        let mut batch = CopyBatch::new();
        let idx: Vec<Option<usize>> = src
            .iter()
            .zip(dst.iter_mut())
            .map(|(&s, d)| batch.from_grant(self.ptr(s), d).ok())
            .collect();
        outcomes(&mut batch, &idx)
    }

    fn write_guest(&mut self, dst: &[(u32, usize)], src: &[Vec<u8>]) -> Vec<bool> {
        let mut batch = CopyBatch::new();
        let idx: Vec<Option<usize>> = dst
            .iter()
            .zip(src)
            .map(|(&d, s)| batch.to_grant(s, self.ptr(d)).ok())
            .collect();
        outcomes(&mut batch, &idx)
    }
}

/// Most passes of [`poll`] over the ports while frames keep moving (each
/// pass moves up to a batch per interface), so one busy domain cannot keep
/// dom0 from its other work.
const PASSES: usize = 16;

/// Steps every handshake and moves frames between the interfaces, the NIC
/// and dom0's interface until nothing moves (or [`PASSES`] passes).
pub fn poll() {
    with(|s| {
        for v in &mut s.vifs {
            handshake(v);
        }
        s.nat.expire(now_ms());
        let mut idle = false;
        for _ in 0..PASSES {
            if pass(s) == 0 {
                idle = true;
                break;
            }
        }
        if !idle {
            // Frames still moving: dom0's loop polls only on a kick.
            KICK.store(true, Ordering::Release);
        }
    });
}

/// Puts the frames NAT sent into their switch: `nat0`'s from the gateway
/// port, the uplink bridge's from dom0's port. Returns how many.
fn route(
    out: Vec<Out>,
    uplink: &mut Switch,
    host: Option<PortId>,
    nat: &mut Switch,
    gw: Option<PortId>,
    ms: u64,
) -> u64 {
    let mut n = 0;
    for o in out {
        match (o, host, gw) {
            (Out::Outside(f), Some(h), _) => uplink.input(h, &f, ms),
            (Out::Inside(f), _, Some(g)) => nat.input(g, &f, ms),
            _ => continue,
        };
        n += 1;
    }
    n
}

/// One pass over every port; returns the frames moved.
fn pass(s: &mut Service) -> u64 {
    let now = crate::net::now();
    let ms = now_ms();
    let mut moved = 0;
    if let Some((Uplink(nic), up)) = &mut s.uplink {
        while let Some((rx, _)) = nic.receive(now) {
            let f = rx.consume(|b| b.to_vec());
            s.switch.input(*up, &f, ms);
            moved += 1;
        }
    }
    if let Some(h) = &mut s.host {
        // Frames for dom0's address: NAT's replies first, the rest (and
        // ARP) to dom0's own stack.
        s.nat.set_uplink(h.uplink());
        while let Some(f) = s.switch.pop(h.port()) {
            let c = s.nat.outside(&f, ms);
            moved += route(
                c.out,
                &mut s.switch,
                Some(h.port()),
                &mut s.nat_switch,
                s.gw_port,
                ms,
            );
            if c.pass {
                h.deliver(f);
            }
        }
        if let Some(a) = h.poll(&mut s.switch, now) {
            println!("dom0: net: {a} on {BRIDGE_NAME} (dhcp)");
        }
    }
    for v in &mut s.vifs {
        let Some(l) = &mut v.link else { continue };
        let sw = if v.nat {
            &mut s.nat_switch
        } else {
            &mut s.switch
        };
        match l.dp.pump(&mut GrantCopy(v.dom), sw, v.sw_port, ms) {
            Ok(m) => {
                moved += m.sent + m.received;
                v.frames += m.sent + m.received;
                if m.spoofed > 0 && v.spoofed == 0 {
                    println!(
                        "dom0: netback: vif{}.{}: dropping frames whose source is not its MAC",
                        v.dom.0, v.index
                    );
                }
                v.spoofed += m.spoofed;
                if m.notify {
                    // Sent when dom0 next waits (its loop does, after
                    // this pass), the last of them with its block.
                    events::send_later(l.port);
                }
            }
            Err(e) => close(v, &format!("{e}")),
        }
    }
    if let Some(gw) = s.gw_port {
        let host = s.host.as_ref().map(HostStack::port);
        while let Some(f) = s.nat_switch.pop(gw) {
            let out = s.nat.inside(&f, ms);
            moved += 1 + route(out, &mut s.switch, host, &mut s.nat_switch, Some(gw), ms);
        }
    }
    if let Some((Uplink(nic), up)) = &mut s.uplink {
        while s.switch.queued(*up) > 0 {
            let Some(tx) = nic.transmit(now) else { break };
            let Some(f) = s.switch.pop(*up) else { break };
            tx.consume(f.len(), |b| b.copy_from_slice(&f));
            moved += 1;
        }
    }
    moved
}
