//! dom0's SD host controller driver: the SDHCI controllers the hypervisor
//! gave it (`sdhci` lines of the `dom0-devices` list: the Raspberry Pi 4's
//! EMMC2, its SD-card slot, and its Arasan controller, where QEMU's
//! `raspi4b` attaches `-drive if=sd`), each with an SD memory card in it
//! becoming a [`host::Card`], a [`crate::blkback::disk::BlockDevice`] that
//! the block back end serves like a virtio disk (named `mmc0`, `mmc1`, ...
//! in the order found).
//!
//! | module | holds |
//! |---|---|
//! | [`regs`] | the register block, by name |
//! | [`card`] | the SD protocol's commands, bits, CSD and clock arithmetic (host-tested) |
//! | [`host`] | the driver: controller reset, clock, power, card init, PIO transfers |

pub mod card;
pub mod host;
pub mod regs;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use pv_guest_sdk::println;

use crate::blkback::disk::BlockDevice;
use crate::virtio::devices::{Device, Kind};
use host::Card;

/// Whether [`probe`] ran: a second run would reset controllers in use.
static PROBED: AtomicBool = AtomicBool::new(false);

/// Initialises the card behind every SDHCI controller of `list` and
/// reports each; returns the cards, in list order. Runs once; later calls
/// find nothing.
pub fn probe(list: &[Device]) -> Vec<Card> {
    let mut cards = Vec::new();
    if PROBED.swap(true, Ordering::AcqRel) {
        return cards;
    }
    for d in list.iter().filter(|d| d.kind == Kind::Sdhci) {
        // SAFETY: the hypervisor identity-mapped the controller's registers
        // into dom0's device window for dom0's life (the device list names
        // only mapped ones), and `PROBED` makes this the only driver.
        match unsafe { Card::init(d.base as usize) } {
            Ok(c) => {
                println!(
                    "dom0: sdhci {:#x}: SD card mmc{}: {} sectors ({} MiB), {}",
                    d.base,
                    cards.len(),
                    c.capacity(),
                    c.capacity() / 2048,
                    if c.read_only() {
                        "read-only"
                    } else {
                        "read-write"
                    }
                );
                cards.push(c);
            }
            Err(e) => println!("dom0: sdhci {:#x}: {e}", d.base),
        }
    }
    cards
}
