//! The console back end's hypercalls: the `console/0` back-end directory
//! of each new domain, mapping its console page and binding its port when
//! its front end is ready, moving bytes, and the attached terminal of the
//! shell's `console` verb.
//!
//! dom0's loops call [`take_kick`] in their wait condition and [`poll`]
//! after waking; [`poll`] never blocks. The toolstack calls [`attach`] for
//! a new domain before unpausing it and [`detach`] before destroying it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use pv_guest_sdk::abi::conif::{
    ConsEndpoint, ConsSide, DEVICE_TYPE, KEY_EVENT_CHANNEL, KEY_RING_REF, SharedConsPage,
};
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::store::{Access, StoreError, StoreMsgType, StorePerm, XenbusState};
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::{self, GrantRef, Mapping};
use pv_guest_sdk::{hypercall, println};

use super::output::Output;
use crate::netback::handshake::{self, Phase, Step};
use crate::store::service as store;

/// A connected console: the mapped page, this end's indices, the port.
struct Link {
    map: Mapping,
    ep: ConsEndpoint,
    port: Port,
}

impl Link {
    fn page(&self) -> &SharedConsPage {
        // SAFETY: `map` maps one page read-write at `map.ipa()` (page
        // aligned, VA == IPA) while it lives, which the borrow of `self`
        // outlives; `SharedConsPage` is one page of atomics, so the
        // domain's concurrent writes break no assumption of this reference.
        unsafe { &*(self.map.ipa() as usize as *const SharedConsPage) }
    }
}

struct Cons {
    dom: DomainId,
    name: String,
    phase: Phase,
    link: Option<Link>,
    out: Output,
    /// The store generation whose `state` this end has seen.
    seen: u64,
}

impl Cons {
    fn back_dir(&self) -> String {
        format!("/local/domain/0/backend/{DEVICE_TYPE}/{}/0", self.dom.0)
    }

    fn front_dir(&self) -> String {
        format!("/local/domain/{}/device/{DEVICE_TYPE}/0", self.dom.0)
    }
}

#[derive(Default)]
struct Service {
    consoles: Vec<Cons>,
    /// The domain whose console the shell shows (`console <Domain>`).
    attached: Option<DomainId>,
}

static CONS: spin::Mutex<Option<Service>> = spin::Mutex::new(None);
/// Set by every console port's event handler, taken by [`take_kick`].
static KICK: AtomicBool = AtomicBool::new(false);

fn with<R>(f: impl FnOnce(&mut Service) -> R) -> R {
    f(CONS.lock().get_or_insert_with(Service::default))
}

fn on_event(_: Port) {
    KICK.store(true, Ordering::Release);
}

/// Whether a console has moved bytes (for the main loop's wait condition;
/// call [`poll`] when it is `true`).
pub fn take_kick() -> bool {
    KICK.swap(false, Ordering::AcqRel)
}

/// Creates the back-end directory (owned by dom0, readable by the front
/// end) with `frontend-id` and state InitWait.
fn publish(c: &Cons) -> Result<(), StoreError> {
    let dir = c.back_dir();
    store::request(StoreMsgType::Mkdir, &[dir.as_bytes(), b"\0"].concat())?;
    let mut body = [dir.as_bytes(), b"\0"].concat();
    for p in [
        StorePerm {
            dom: 0,
            access: Access::None,
        },
        StorePerm {
            dom: c.dom.0,
            access: Access::Read,
        },
    ] {
        body.extend_from_slice(format!("{p}\0").as_bytes());
    }
    store::request(StoreMsgType::SetPerms, &body)?;
    store::write(
        &format!("{dir}/frontend-id"),
        format!("{}", c.dom.0).as_bytes(),
    )?;
    store::write(
        &format!("{dir}/state"),
        format!("{}", XenbusState::InitWait.raw()).as_bytes(),
    )
}

/// Gives domain `id` (created, not yet unpaused) its console device. A
/// domain without a store keeps printing through the hypervisor, so a
/// failure here is reported and otherwise ignored.
pub fn attach(id: DomainId, name: &str) {
    let c = Cons {
        dom: id,
        name: name.into(),
        phase: Phase::Waiting,
        link: None,
        out: Output::new(),
        seen: u64::MAX,
    };
    if let Err(e) = publish(&c) {
        println!("dom0: consback: {name}: no console device ({e})");
        return;
    }
    with(|s| s.consoles.push(c));
}

/// Reads what is left of domain `id`'s output, prints it, then unmaps its
/// page, closes its port and removes its back-end directory.
pub fn detach(id: DomainId) {
    let gone: Vec<Cons> = with(|s| {
        if s.attached == Some(id) {
            s.attached = None;
        }
        let (gone, kept) = core::mem::take(&mut s.consoles)
            .into_iter()
            .partition(|c| c.dom == id);
        s.consoles = kept;
        gone
    });
    for mut c in gone {
        drain(&mut c, false);
        c.out.flush(&mut |l: &[u8]| print_line(&c.name, l));
        unlink(&mut c);
        let dir = format!("/local/domain/0/backend/{DEVICE_TYPE}/{}", id.0);
        let _ = store::request(StoreMsgType::Rm, &[dir.as_bytes(), b"\0"].concat());
    }
}

fn print_line(name: &str, line: &[u8]) {
    println!("[{name}] {}", String::from_utf8_lossy(line));
}

fn unlink(c: &mut Cons) {
    if let Some(link) = c.link.take() {
        events::off(link.port);
        let _ = events::close(link.port);
        drop(link.map);
    }
}

/// Maps `c`'s page and binds its port from the front end's details.
fn link(c: &Cons) -> Result<Link, String> {
    let dir = c.front_dir();
    let number = |k: &str| -> Option<u32> {
        let v = store::read(&format!("{dir}/{k}"))?;
        core::str::from_utf8(&v).ok()?.trim().parse().ok()
    };
    let (Some(gref), Some(port)) = (number(KEY_RING_REF), number(KEY_EVENT_CHANNEL)) else {
        return Err("details missing or not numbers".into());
    };
    let map = grant::map(c.dom, GrantRef(gref), false)
        .map_err(|e| format!("cannot map the page (gref {gref}): {e}"))?;
    if !map.is_writable() {
        return Err("page mapped read-only".into());
    }
    let port = events::bind_interdomain(c.dom, Port(port))
        .map_err(|e| format!("cannot bind port {port}: {e}"))?;
    events::on(port, on_event);
    // SAFETY: as in `Link::page`: the mapping is live and one page of atomics.
    let page = unsafe { &*(map.ipa() as usize as *const SharedConsPage) };
    let ep = ConsEndpoint::new(ConsSide::Back, page);
    Ok(Link { map, ep, port })
}

/// Steps `c`'s handshake by its front end's state.
fn handshake(c: &mut Cons) {
    if !store::changed_since(&mut c.seen) {
        return;
    }
    let front =
        store::read(&format!("{}/state", c.front_dir())).and_then(|v| XenbusState::parse(&v));
    match handshake::step(c.phase, front) {
        Step::Wait => {}
        Step::Attach => match link(c) {
            Ok(l) => {
                c.link = Some(l);
                c.phase = Phase::Connected;
                store::set_state(&c.back_dir(), XenbusState::Connected);
                // Output may wait already.
                KICK.store(true, Ordering::Release);
            }
            Err(why) => close(c, &why),
        },
        Step::Detach => {
            drain(c, false);
            unlink(c);
            c.phase = Phase::Closed;
            store::set_state(&c.back_dir(), XenbusState::Closed);
        }
        Step::Reset => {
            c.phase = Phase::Waiting;
            store::set_state(&c.back_dir(), XenbusState::InitWait);
        }
    }
}

/// Stops serving `c` because its front end broke the rules.
fn close(c: &mut Cons, why: &str) {
    unlink(c);
    c.phase = Phase::Closed;
    store::set_state(&c.back_dir(), XenbusState::Closed);
    println!("dom0: consback: {}: {why}; closed", c.name);
}

/// Moves `c`'s output out of its ring: live to the terminal if `attached`,
/// else to the hypervisor console as the domain's own output. Each chunk is
/// out before the ring's consumer index moves past it, so a domain that
/// sees its ring empty knows its output was printed (it waits for that
/// before it shuts down: its last line comes before the hypervisor's
/// report).
fn drain(c: &mut Cons, attached: bool) {
    let Cons {
        dom,
        name,
        link,
        out,
        ..
    } = c;
    let Some(l) = link else { return };
    let mut buf = [0u8; 512];
    let mut moved = false;
    let result = loop {
        // SAFETY: as in `Link::page`: `l.map` is live for this loop and maps
        // one page of atomics (a raw pointer, as `l.ep` is borrowed too).
        let page = unsafe { &*(l.map.ipa() as usize as *const SharedConsPage) };
        let read = l.ep.read_then(page, &mut buf, |bytes| {
            if attached {
                // To the terminal the shell's `console` verb runs on.
                crate::shell_io::write(bytes);
                crate::shell_io::flush();
                out.feed_attached(bytes);
            } else {
                emit(*dom, name, out, bytes);
            }
        });
        match read {
            Ok(0) => break Ok(()),
            Ok(_) => moved = true,
            Err(e) => break Err(e),
        }
    };
    if moved {
        // The domain may wait for room, or for its output to be out.
        let _ = events::send(l.port);
    }
    if let Err(e) = result {
        close(c, &format!("{e}"));
    }
}

/// Prints `bytes` a domain wrote as its own output: through the
/// hypervisor (`console_io write_as`), which prefixes its lines and merges
/// them with what it writes directly, exactly as if it had. Only if that
/// fails does dom0 assemble and prefix the lines itself.
fn emit(dom: DomainId, name: &str, out: &mut Output, bytes: &[u8]) {
    if hypercall::console_write_as(dom, bytes).is_ok() {
        out.keep(bytes);
    } else {
        out.feed(bytes, &mut |line: &[u8]| print_line(name, line));
    }
}

/// Steps every handshake and moves every domain's output.
pub fn poll() {
    with(|s| {
        for c in &mut s.consoles {
            handshake(c);
            let attached = s.attached == Some(c.dom);
            drain(c, attached);
        }
    });
}

/// Whether domain `id` has a console device (connected or not).
pub fn has_console(id: DomainId) -> bool {
    with(|s| s.consoles.iter().any(|c| c.dom == id))
}

/// Attaches the shell's terminal to domain `id`'s console: its output goes
/// there live from now on, unprefixed. Returns the most recent output to
/// show first, or `None` if the domain has no console device.
pub fn open_terminal(id: DomainId) -> Option<Vec<u8>> {
    poll();
    with(|s| {
        let c = s.consoles.iter().find(|c| c.dom == id)?;
        let history = c.out.history();
        s.attached = Some(id);
        Some(history)
    })
}

/// Detaches the shell's terminal: output goes back to prefixed lines.
pub fn close_terminal() {
    with(|s| s.attached = None);
}

/// Sends `bytes` to the attached domain's input ring. Bytes that do not
/// fit (the domain does not read) are dropped; returns how many went.
pub fn send_input(bytes: &[u8]) -> usize {
    with(|s| {
        let Some(id) = s.attached else { return 0 };
        let Some(c) = s.consoles.iter_mut().find(|c| c.dom == id) else {
            return 0;
        };
        let Some(l) = &mut c.link else { return 0 };
        let page: *const SharedConsPage = l.page();
        // SAFETY: `page` points at the mapping `l.map`, alive for this call.
        match l.ep.write(unsafe { &*page }, bytes) {
            Ok(n) => {
                if n > 0 {
                    let _ = events::send(l.port);
                }
                n
            }
            Err(e) => {
                close(c, &format!("{e}"));
                0
            }
        }
    })
}
