//! Building and tearing down domains: create, sched parameters, image,
//! store, console, disks and vifs, unpause; and destroy, retried while the
//! hypervisor is still letting go.

use dom0::blkback::service as blkback;
use dom0::config::DomainConfig;
use dom0::consback::service as consback;
use dom0::netback::service as netback;
use dom0::store::service as store;
use pv_guest_sdk::abi::Error;
use pv_guest_sdk::abi::domctl::DomainId;
use pv_guest_sdk::{domctl, println};

/// Tries to destroy a domain this many times while the hypervisor answers
/// `Busy` (a vCPU of it is still on another CPU, or its pages are mapped).
const DESTROY_TRIES: u32 = 1000;

/// Destroys a domain, yielding and retrying while the hypervisor is busy
/// letting go of it.
pub(crate) fn destroy(id: DomainId) -> Result<(), Error> {
    netback::detach(id);
    consback::detach(id);
    let mut tries = 0;
    loop {
        match domctl::destroy(id) {
            Err(Error::Busy) if tries < DESTROY_TRIES => {
                tries += 1;
                pv_guest_sdk::yield_now();
            }
            Ok(()) => {
                // Gone: its store home, port and page can go too, and
                // its virtual disks (served until it could not use them).
                store::release(id);
                blkback::release(id);
                return Ok(());
            }
            r => return r,
        }
    }
}

/// Where a domain's ELF image comes from.
pub(crate) enum Image<'a> {
    /// The boot module of this name.
    Module(&'a str),
    /// These bytes in dom0's memory (read from the guest library).
    Bytes(&'a [u8]),
}

/// Creates, loads and unpauses one domain from its boot-module image
/// (`cfg.image`).
pub(crate) fn start(cfg: &DomainConfig) -> Result<DomainId, (&'static str, Error)> {
    start_from(cfg, Image::Module(&cfg.image))
}

/// Creates one domain, loads `image` into it and unpauses it. On failure
/// the half-built domain is destroyed and the failing step is named.
pub(crate) fn start_from(
    cfg: &DomainConfig,
    image: Image,
) -> Result<DomainId, (&'static str, Error)> {
    let id = domctl::create(&cfg.to_create()).map_err(|e| ("create", e))?;
    let loaded = apply_sched(id, cfg)
        .map_err(|e| ("sched_set", e))
        .and_then(|()| {
            match image {
                Image::Module(name) => domctl::load_image_from_module(id, name),
                Image::Bytes(bytes) => domctl::load_image_from_memory(id, bytes),
            }
            .map_err(|e| ("load image", e))
        })
        .map(|_| {
            // A domain without a store still runs (it may not need one).
            match store::introduce(id, &cfg.name) {
                Ok(()) => consback::attach(id, &cfg.name),
                Err((step, e)) => {
                    println!("dom0: {}: no configuration store ({step}: {e})", cfg.name)
                }
            }
        })
        .and_then(|()| {
            blkback::attach(id, &cfg.disks).map_err(|msg| {
                println!("dom0: {}: disk: {msg}", cfg.name);
                ("disk", Error::InvalidArgument)
            })
        })
        .and_then(|()| netback::attach(id, &cfg.vifs))
        .and_then(|()| domctl::unpause(id).map_err(|e| ("unpause", e)));
    if let Err(failure) = loaded {
        let _ = destroy(id);
        return Err(failure);
    }
    Ok(id)
}

/// Gives a new domain the weight and cap its configuration sets (the other
/// of the two stays as the hypervisor has it), and reports what is in force.
fn apply_sched(id: DomainId, cfg: &DomainConfig) -> Result<(), Error> {
    if cfg.weight.is_none() && cfg.cap.is_none() {
        return Ok(());
    }
    let now = domctl::sched_get(id)?;
    domctl::sched_set(
        id,
        domctl::SchedParams {
            weight: cfg.weight.unwrap_or(now.weight),
            cap: cfg.cap.unwrap_or(now.cap),
        },
    )?;
    let set = domctl::sched_get(id)?;
    println!(
        "dom0: {} (domain {}): weight {}, cap {}",
        cfg.name, id.0, set.weight, set.cap
    );
    Ok(())
}
