//! dom0's one block back end: the virtio disks it serves from, the virtual
//! disks of every domain, and the hypercalls around [`super::engine`].
//!
//! - [`init`] takes the virtio-blk disks dom0 found (`vda` is the first);
//!   [`add`] adds another disk (an SD card) under a name of its own.
//! - [`attach`], when a domain is created (before it runs), checks its
//!   `disk = [...]` entries and writes both store directories of each
//!   virtual disk (`specs/blkif.md`, "Setting up"), back end in InitWait.
//! - [`poll`], from dom0's loops, advances each handshake without blocking
//!   (a front end in Initialised gets its ring mapped and its port bound,
//!   then Connected) and serves every connected ring a bounded number of
//!   requests, so one busy front end cannot starve the others.
//! - [`take_kick`] says whether a ring's event came (or work was left over):
//!   dom0's wait condition, so that it sleeps only when there is no work.
//! - [`release`], when a domain is destroyed, unmaps its rings, closes its
//!   ports and removes its back-end directories.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use pv_guest_sdk::abi::blkif::{
    BlkifRequest, BlkifResponse, BlkifStatus, DEVICE_KIND, KEY_FEATURE_FLUSH,
    KEY_FEATURE_PERSISTENT, KEY_MODE, KEY_SECTOR_SIZE, KEY_SECTORS,
};
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::abi::grant::GrantRef;
use pv_guest_sdk::abi::ring::{Back, RingError, SharedRing};
use pv_guest_sdk::abi::store::{StoreMsgType, XenbusState};
use pv_guest_sdk::events::{self, Port};
use pv_guest_sdk::grant::{self, Mapping};
use pv_guest_sdk::println;

use super::copier::Copier;
use super::disk::{BlockDevice, Disk, Real, SECTOR};
use super::engine;
use super::persistent::Cache;
use super::queued::{self, InFlight};
use super::request::{Checked, VDisk};
use crate::devlist::VbdRow;
use crate::devspec::DiskSpec;
use crate::store::service as store;
use crate::virtio::blk::Blk;

/// Requests served per ring per [`poll`], so that the others get their turn.
pub(super) const PER_PASS: usize = 8;

/// A connected ring: the front end's page mapped, its port bound.
pub(super) struct Conn {
    // Declared before `map`, so dropped first: it borrows the mapped page.
    pub(super) ring: Back<'static, BlkifRequest, BlkifResponse>,
    pub(super) map: Mapping,
    pub(super) port: Port,
    /// The data pages kept mapped, if both ends offered persistent grants.
    pub(super) cache: Option<Cache>,
}

pub(super) enum Phase {
    /// Waiting for the front end to publish its ring (state Initialised).
    Waiting,
    Connected(Conn),
    /// Disconnected (broken ring, failed set-up): serves nothing more.
    Closed,
}

/// One virtual disk of one domain.
pub(super) struct Vbd {
    pub(super) front: DomainId,
    pub(super) index: usize,
    /// Index into [`Blkback::disks`].
    pub(super) disk: usize,
    pub(super) vdisk: VDisk,
    pub(super) phase: Phase,
    /// Requests answered so far (`top`'s I/O column).
    pub(super) requests: u64,
    /// The store generation whose `state` this end has seen.
    pub(super) seen: u64,
    /// Names this virtual disk in [`Blkback::pending`]: never reused, so a
    /// completion for a destroyed domain's disk finds nothing.
    pub(super) serial: u64,
    /// Requests of this disk at the real disk now, and the most ever.
    pub(super) in_flight: usize,
    pub(super) peak: usize,
    /// A flush taken from the ring, waiting for the requests before it.
    pub(super) flush: Option<(BlkifRequest, Checked)>,
    /// Responses pushed since the last publish.
    pub(super) unpublished: bool,
    /// The front end broke the ring while being answered.
    pub(super) broken: Option<RingError>,
}

impl Vbd {
    fn front_dir(&self) -> String {
        front_dir(self.front, self.index)
    }
    fn back_dir(&self) -> String {
        back_dir(self.front, self.index)
    }
}

fn front_dir(front: DomainId, index: usize) -> String {
    format!("/local/domain/{}/device/{DEVICE_KIND}/{index}", front.0)
}

fn back_dir(front: DomainId, index: usize) -> String {
    format!("/local/domain/0/backend/{DEVICE_KIND}/{}/{index}", front.0)
}

#[derive(Default)]
struct Blkback {
    disks: Vec<Disk>,
    vbds: Vec<Vbd>,
    /// dom0's data buffer for blocking requests: grant copies in and out,
    /// and DMA for the disk.
    buf: Vec<u8>,
    /// Requests in flight at queued disks.
    queued: InFlight,
    /// The next [`Vbd::serial`].
    next_serial: u64,
}

static BACK: spin::Mutex<Option<Blkback>> = spin::Mutex::new(None);
/// Set by a ring's event (or by [`poll`] leaving work), taken by [`take_kick`].
static KICK: AtomicBool = AtomicBool::new(false);

fn on_event(_: Port) {
    KICK.store(true, Ordering::Release);
}

/// Whether a block event came (or work is waiting) since the last call:
/// call [`poll`] when it is `true`.
pub fn take_kick() -> bool {
    // A completion at a queued disk is work too (its interrupt's event
    // woke dom0). The lock is free here unless another vCPU serves.
    let done = BACK.try_lock().is_some_and(|mut g| {
        g.as_mut().is_some_and(|b| {
            b.disks
                .iter_mut()
                .any(|d| d.dev.queue().is_some_and(|q| q.ready()))
        })
    });
    KICK.swap(false, Ordering::AcqRel) | done
}

/// Takes the virtio disks the back end serves from: `vda` is `disks[0]`.
pub fn init(disks: Vec<Blk>) {
    let named = disks.into_iter().enumerate().map(|(i, b)| Disk {
        name: format!("vd{}", char::from(b'a' + (i % 26) as u8)),
        dev: Box::new(b),
    });
    let mut g = BACK.lock();
    let b = g.get_or_insert_with(Blkback::default);
    b.disks.retain(|d| !d.name.starts_with("vd"));
    b.disks.splice(0..0, named);
}

/// Adds a disk the back end serves from, named `name` in `disk = [...]`
/// entries' `target` (the SD cards: `mmc0`, ...).
pub fn add(name: String, dev: Box<dyn BlockDevice>) {
    BACK.lock()
        .get_or_insert_with(Blkback::default)
        .disks
        .push(Disk { name, dev });
}

/// The index of a target name among `disks`.
fn target_index(disks: &[Disk], name: &str) -> Option<usize> {
    disks.iter().position(|d| d.name == name)
}

/// A store request of dom0's own, `path\0rest`.
fn put(ty: StoreMsgType, path: &str, rest: &[u8]) -> Result<(), String> {
    let body = [path.as_bytes(), b"\0", rest].concat();
    store::request(ty, &body)
        .map(drop)
        .map_err(|e| format!("{path}: {e}"))
}

fn write_key(dir: &str, key: &str, value: &str) -> Result<(), String> {
    put(
        StoreMsgType::Write,
        &format!("{dir}/{key}"),
        value.as_bytes(),
    )
}

fn read_key(dir: &str, key: &str) -> Option<String> {
    let path = format!("{dir}/{key}\0");
    let v = store::request(StoreMsgType::Read, path.as_bytes()).ok()?;
    String::from_utf8(v).ok()
}

/// Gives domain `id` (created, not running yet) the virtual disks `disks`
/// ask for: checks each against the real disks, then writes its two store
/// directories. On failure nothing of `id` is left; the message says why.
pub fn attach(id: DomainId, disks: &[DiskSpec]) -> Result<(), String> {
    if disks.is_empty() {
        return Ok(());
    }
    let mut g = BACK.lock();
    let b = g.get_or_insert_with(Blkback::default);
    let mut new = Vec::new();
    for (index, spec) in disks.iter().enumerate() {
        let disk = target_index(&b.disks, &spec.target)
            .ok_or_else(|| format!("{}: no disk {}", spec.vdev, spec.target))?;
        let blk = &b.disks[disk].dev;
        let read_only = spec.read_only || blk.read_only();
        let vdisk = VDisk::region(blk.capacity(), spec.start, spec.sectors, read_only, true)
            .ok_or_else(|| {
                format!(
                    "{}: region {}+{:?} is not within {} ({} sectors)",
                    spec.vdev,
                    spec.start,
                    spec.sectors,
                    spec.target,
                    blk.capacity()
                )
            })?;
        new.push(Vbd {
            front: id,
            index,
            disk,
            vdisk,
            phase: Phase::Waiting,
            requests: 0,
            seen: u64::MAX,
            serial: b.next_serial,
            in_flight: 0,
            peak: 0,
            flush: None,
            unpublished: false,
            broken: None,
        });
        b.next_serial += 1;
    }
    for v in &new {
        if let Err(e) = publish(v, &disks[v.index]) {
            drop(g);
            let _ = put(StoreMsgType::Rm, &backends_of(id), b"");
            return Err(e);
        }
    }
    b.vbds.extend(new);
    Ok(())
}

fn backends_of(front: DomainId) -> String {
    format!("/local/domain/0/backend/{DEVICE_KIND}/{}", front.0)
}

/// Writes `v`'s front-end directory (state Initialising) and back-end
/// directory (its keys, then state InitWait). Each directory gets its
/// permissions before its keys, which inherit them.
fn publish(v: &Vbd, spec: &DiskSpec) -> Result<(), String> {
    let (front, back) = (v.front_dir(), v.back_dir());
    let f = v.front.0;
    put(StoreMsgType::Mkdir, &front, b"")?;
    put(
        StoreMsgType::SetPerms,
        &front,
        format!("n{f}\0r0\0").as_bytes(),
    )?;
    write_key(&front, "backend-id", "0")?;
    write_key(&front, "virtual-device", &spec.vdev)?;
    write_key(
        &front,
        "state",
        &format!("{}", XenbusState::Initialising.raw()),
    )?;
    put(StoreMsgType::Mkdir, &back, b"")?;
    put(
        StoreMsgType::SetPerms,
        &back,
        format!("n0\0r{f}\0").as_bytes(),
    )?;
    write_key(&back, "frontend-id", &format!("{f}"))?;
    write_key(&back, KEY_SECTORS, &format!("{}", v.vdisk.sectors))?;
    write_key(&back, KEY_SECTOR_SIZE, &format!("{SECTOR}"))?;
    write_key(&back, KEY_MODE, if v.vdisk.read_only { "r" } else { "w" })?;
    write_key(
        &back,
        KEY_FEATURE_FLUSH,
        if v.vdisk.flush { "1" } else { "0" },
    )?;
    write_key(&back, KEY_FEATURE_PERSISTENT, "1")?;
    write_key(&back, "state", &format!("{}", XenbusState::InitWait.raw()))
}

/// Maps the ring the front end published and binds its port.
fn connect(v: &Vbd) -> Result<Conn, String> {
    let front = v.front_dir();
    let number = |key: &str| -> Result<u32, String> {
        read_key(&front, key)
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("{front}/{key} missing or not a number"))
    };
    let (gref, remote) = (
        GrantRef(number("ring-ref")?),
        Port(number("event-channel")?),
    );
    let map = grant::map(v.front, gref, false).map_err(|e| format!("map ring {}: {e}", gref.0))?;
    let Some(page) = map.shared() else {
        return Err("ring mapped read-only".into());
    };
    // SAFETY: the page stays mapped at its fixed IPA until `map` is dropped,
    // which `Conn`'s field order makes happen after `ring`; the 'static
    // reference never leaves the `Conn`. The page is atomics throughout.
    let shared: &'static SharedRing = unsafe { &*(page.as_ring() as *const SharedRing) };
    let port = events::bind_interdomain(v.front, remote)
        .map_err(|e| format!("bind port {}: {e}", remote.0))?;
    events::on(port, on_event);
    let persistent = read_key(&front, KEY_FEATURE_PERSISTENT).is_some_and(|s| s.trim() == "1");
    Ok(Conn {
        ring: Back::new(shared),
        map,
        port,
        cache: persistent.then(Cache::default),
    })
}

/// Waits until `disk` gave back every request: before a ring's cache is
/// dropped, as the disk may still be reading into its pages.
fn settle(disk: &mut dyn BlockDevice) {
    if let Some(q) = disk.queue() {
        q.settle();
    }
}

/// Unmaps the ring and closes the port. The disk must hold none of its
/// requests ([`settle`]): their data may go straight into the cache's pages.
fn disconnect(c: Conn) {
    // The ring's borrow of the page ends here, before the unmap.
    let Conn {
        ring: _,
        map,
        port,
        cache,
    } = c;
    // Its pages are unmapped with it: the front end may end their grants.
    drop(cache);
    let _ = events::close(port);
    if let Err(e) = map.unmap() {
        println!("dom0: blkback: unmapping a ring: {e}");
    }
}

/// Advances every handshake and serves every connected ring (see the
/// module documentation). Never blocks but for the disks' own requests.
/// The events of the front ends it answered are marked
/// ([`events::send_later`]): dom0's next wait sends them, the last with its
/// block (one hypercall for both).
pub fn poll() {
    let mut g = BACK.lock();
    let Some(b) = g.as_mut() else {
        return;
    };
    let Blkback {
        disks,
        vbds,
        buf,
        queued,
        ..
    } = b;
    queued::collect(disks, vbds, queued);
    for v in vbds.iter_mut() {
        if matches!(v.phase, Phase::Waiting) {
            if !store::changed_since(&mut v.seen) {
                continue;
            }
            let state =
                read_key(&v.front_dir(), "state").and_then(|s| XenbusState::parse(s.as_bytes()));
            if !matches!(
                state,
                Some(XenbusState::Initialised | XenbusState::Connected)
            ) {
                continue;
            }
            match connect(v) {
                Ok(c) => {
                    v.phase = Phase::Connected(c);
                    store::set_state(&v.back_dir(), XenbusState::Connected);
                    // Requests may be waiting already.
                    KICK.store(true, Ordering::Release);
                }
                Err(e) => {
                    println!(
                        "dom0: blkback: domain {} vbd {}: cannot connect: {e}",
                        v.front.0, v.index
                    );
                    v.phase = Phase::Closed;
                    store::set_state(&v.back_dir(), XenbusState::Closed);
                }
            }
            continue;
        }
        let dev = &mut *disks[v.disk].dev;
        let served = if dev.queue().is_some() {
            queued::serve(v, dev, queued, buf)
        } else {
            serve_blocking(v, dev, buf)
        };
        let Phase::Connected(c) = &mut v.phase else {
            continue;
        };
        let broken = match served {
            Ok(stop) => {
                if v.unpublished && c.ring.publish() {
                    events::send_later(c.port);
                }
                v.unpublished = false;
                // Work left, or arrived after the last look (the final
                // check asks the front end for an event first). Waiting
                // for the disk needs no kick: its completion's event comes.
                let more = match stop {
                    Stop::Limit => true,
                    Stop::Empty => c.ring.final_check().unwrap_or(false),
                    Stop::Wait => false,
                };
                if more {
                    KICK.store(true, Ordering::Release);
                }
                v.broken.take()
            }
            Err(e) => Some(e),
        };
        if let Some(e) = broken {
            println!(
                "dom0: blkback: domain {} vbd {}: {e}: disconnected",
                v.front.0, v.index
            );
            if v.in_flight > 0 {
                settle(&mut *disks[v.disk].dev);
            }
            if let Phase::Connected(c) = core::mem::replace(&mut v.phase, Phase::Closed) {
                disconnect(c);
            }
            store::set_state(&v.back_dir(), XenbusState::Closed);
        }
    }
}

/// Why a pass over one ring stopped.
pub(super) enum Stop {
    /// The ring is empty.
    Empty,
    /// [`PER_PASS`] requests taken: more may wait.
    Limit,
    /// Waiting for the disk: a full queue, or a flush for earlier requests.
    Wait,
}

/// Answers `req` with `status` (published later, once per pass).
pub(super) fn respond(
    ring: &mut Back<'static, BlkifRequest, BlkifResponse>,
    req: &BlkifRequest,
    status: BlkifStatus,
) -> Result<(), RingError> {
    answer_with(ring, req.id, req.op, status)
}

/// Answers the request `id` of operation `op` with `status`.
pub(super) fn answer_with(
    ring: &mut Back<'static, BlkifRequest, BlkifResponse>,
    id: u64,
    op: u8,
    status: BlkifStatus,
) -> Result<(), RingError> {
    ring.push(&BlkifResponse {
        id,
        op,
        status: status.raw(),
        ..BlkifResponse::default()
    })
}

/// Serves `v`'s ring on a disk without a queue: one request at a time.
fn serve_blocking(
    v: &mut Vbd,
    dev: &mut dyn BlockDevice,
    buf: &mut Vec<u8>,
) -> Result<Stop, RingError> {
    let Phase::Connected(c) = &mut v.phase else {
        return Ok(Stop::Empty);
    };
    let mut real = Real(dev);
    let pass = engine::serve(
        &mut c.ring,
        &v.vdisk,
        &mut real,
        &mut Copier::new(v.front, c.cache.as_mut()),
        buf,
        PER_PASS,
    )?;
    v.requests += pass.answered as u64;
    v.unpublished |= pass.answered > 0;
    Ok(if pass.more { Stop::Limit } else { Stop::Empty })
}

/// `block-list`'s rows for domain `front`'s virtual disks, in index order:
/// what the back end holds, with the numbers the front end published and
/// the back end's state from the store.
pub fn list(front: DomainId) -> Vec<VbdRow> {
    let g = BACK.lock();
    let Some(b) = g.as_ref() else {
        return Vec::new();
    };
    b.vbds
        .iter()
        .filter(|v| v.front == front)
        .map(|v| {
            let (fd, bd) = (v.front_dir(), v.back_dir());
            let number = |dir: &str, key: &str| {
                crate::devlist::store_number(read_key(dir, key).as_deref().map(str::as_bytes))
            };
            VbdRow {
                vdev: read_key(&fd, "virtual-device").unwrap_or_else(|| "?".into()),
                handle: v.index as u32,
                state: number(&bd, "state").unwrap_or(0),
                evtch: number(&fd, "event-channel"),
                ring_ref: number(&fd, "ring-ref"),
                target: b.disks[v.disk].name.clone(),
                start: v.vdisk.start,
                sectors: v.vdisk.sectors,
                read_only: v.vdisk.read_only,
                requests: v.requests,
            }
        })
        .collect()
}

/// Requests the back end answered for domain `front`, all disks together.
pub fn requests(front: DomainId) -> u64 {
    BACK.lock().as_ref().map_or(0, |b| {
        b.vbds
            .iter()
            .filter(|v| v.front == front)
            .map(|v| v.requests)
            .sum()
    })
}

/// Domain `id` is being destroyed: its rings are unmapped, its ports
/// closed, its back-end directories removed.
pub fn release(id: DomainId) {
    let gone: Vec<Vbd> = {
        let mut g = BACK.lock();
        let Some(b) = g.as_mut() else { return };
        let (gone, keep): (Vec<Vbd>, Vec<Vbd>) = core::mem::take(&mut b.vbds)
            .into_iter()
            .partition(|v| v.front == id);
        b.vbds = keep;
        for v in gone.iter().filter(|v| v.in_flight > 0) {
            settle(&mut *b.disks[v.disk].dev);
        }
        gone
    };
    if gone.is_empty() {
        return;
    }
    for v in gone {
        // Its requests the disk gave back (settled above) wait there;
        // `collect` drops their completions.
        let kept = match &v.phase {
            Phase::Connected(Conn {
                cache: Some(cache), ..
            }) => format!("{} data pages kept mapped", cache.len()),
            _ => String::from("no persistent grants"),
        };
        println!(
            "dom0: blkback: domain {} vbd {} released: {} requests answered, at most {} at the disk at once, {} still there, {kept}",
            id.0, v.index, v.requests, v.peak, v.in_flight
        );
        if let Phase::Connected(c) = v.phase {
            disconnect(c);
        }
    }
    let _ = put(StoreMsgType::Rm, &backends_of(id), b"");
}

/// Runs `f` on dom0's disk called `name` (`vda`, `mmc0`, ...) under the back
/// end's lock, so that it never interleaves with a request being served;
/// `None` if there is no such disk. For dom0's own reads ([`crate::fs`]'s
/// guest library).
pub fn with_disk<R>(name: &str, f: impl FnOnce(&mut dyn BlockDevice) -> R) -> Option<R> {
    let mut g = BACK.lock();
    let disk = g.as_mut()?.disks.iter_mut().find(|d| d.name == name)?;
    Some(f(disk.dev.as_mut()))
}

/// The names of dom0's disks, in the order the back end holds them.
pub fn disk_names() -> Vec<String> {
    BACK.lock().as_ref().map_or_else(Vec::new, |b| {
        b.disks.iter().map(|d| d.name.clone()).collect()
    })
}
