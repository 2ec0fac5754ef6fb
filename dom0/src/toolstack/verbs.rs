//! The shell's monitoring verbs: `top`, `block-list` and `network-list`.
//! What they print is made in dom0's library ([`dom0::top`],
//! [`dom0::devlist`]); this file gathers it from the hypervisor and the back
//! ends.

use alloc::vec::Vec;
use dom0::devlist;
use dom0::format;
use dom0::shell::Dom;
use dom0::shell_io;
use dom0::store::service as store;
use dom0::top::{Row, Screen};
use dom0::{blkback, netback};
use dom0::{shell_print as print, shell_println as println};
use pv_guest_sdk::abi::domctl::{DomainId, DomainInfo};
use pv_guest_sdk::events;
use pv_guest_sdk::time::Deadline;

/// Time between two `top` frames.
const REFRESH_MS: u64 = 1000;
/// How often `top` looks at the console for a key while it waits.
// ABI-PENDING: block on a console-input event instead, once dom0 has one.
const KEY_POLL_MS: u64 = 50;
/// Clears the terminal and homes the cursor, so each frame replaces the
/// last (as `xl top` does).
const CLEAR: &str = "\x1b[2J\x1b[H";

/// What dom0's back ends served for a domain: block requests and frames.
fn io_of(id: DomainId) -> u64 {
    blkback::service::requests(id) + netback::service::frames(id)
}

/// Every domain as a row of the `top` screen, or `None` after an error line.
fn sample() -> Option<Vec<Row>> {
    match super::all_domains() {
        Ok(all) => Some(
            all.iter()
                .map(|d| Row::of(d, io_of(DomainId(d.domain_id))))
                .collect(),
        ),
        Err(e) => {
            error!("top: cannot list domains: {e}");
            None
        }
    }
}

/// `top`: a frame at once, then one every [`REFRESH_MS`], until a key is
/// pressed (the key is consumed). The back ends and the store are served
/// meanwhile, so the domains' I/O goes on while they are watched.
pub(super) fn top() {
    // An empty first sample: the first frame shows totals, no rates.
    let mut screen = Screen::new(pv_guest_sdk::time::now(), Vec::new());
    let mut next = Deadline::after_ms(0);
    let mut key = [0u8; 16];
    loop {
        if next.passed() {
            let Some(rows) = sample() else { return };
            let lines = screen.frame(pv_guest_sdk::time::now(), rows);
            print!("{CLEAR}");
            for l in &lines {
                println!("{l}");
            }
            shell_io::flush();
            next = Deadline::after_ms(REFRESH_MS);
        }
        if shell_io::read(&mut key) > 0 {
            return;
        }
        let wake = Deadline::after_ms(KEY_POLL_MS).0.min(next.0);
        events::wait_until(
            || store::take_kick() | blkback::service::take_kick() | netback::service::take_kick(),
            Some(wake),
        );
        store::serve();
        blkback::service::poll();
        netback::service::poll();
    }
}

/// The domains `doms` names, or every domain that has a device of the kind
/// `rows_of` reports when it names none; `None` after an error line.
fn devices<R>(
    verb: &str,
    doms: &[Dom],
    rows_of: fn(DomainId) -> Vec<R>,
) -> Option<Vec<(DomainInfo, Vec<R>)>> {
    let shown = super::select(verb, doms)?;
    Some(
        shown
            .into_iter()
            .map(|d| (d, rows_of(DomainId(d.domain_id))))
            .filter(|(_, rows)| !doms.is_empty() || !rows.is_empty())
            .collect(),
    )
}

/// `block-list [<Domain> ...]`: per domain a line naming it, xl's header,
/// one line per virtual disk (a domain without one: the header alone).
pub(super) fn block_list(doms: &[Dom]) {
    let Some(all) = devices("block-list", doms, blkback::service::list) else {
        return;
    };
    if all.is_empty() {
        return println!("No domain has a virtual block device");
    }
    for (d, rows) in &all {
        println!("{} ({}):", format::name(d), d.domain_id);
        println!("{}", devlist::block_header());
        for r in rows {
            println!("{}", devlist::block_row(r));
        }
    }
}

/// `network-list [<Domain> ...]`: as [`block_list`], for interfaces.
pub(super) fn network_list(doms: &[Dom]) {
    let Some(all) = devices("network-list", doms, netback::service::list) else {
        return;
    };
    if all.is_empty() {
        return println!("No domain has a virtual network interface");
    }
    for (d, rows) in &all {
        println!("{} ({}):", format::name(d), d.domain_id);
        println!("{}", devlist::network_header());
        for r in rows {
            println!("{}", devlist::network_row(r));
        }
    }
}
