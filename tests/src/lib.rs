//! Host-side QEMU harness for tern's integration tests.
//!
//! A test builds a QEMU command line with [`Qemu::builder`], boots the images
//! that `scripts/build.sh` left in `target/images/`, and asserts on the serial
//! console:
//!
//! ```no_run
//! use std::time::Duration;
//! use tern_tests::{Entry, Qemu, re};
//!
//! let mut vm = Qemu::builder().gic(2).smp(1).entry(Entry::El3).spawn().unwrap();
//! vm.expect("tern hypervisor v", Duration::from_secs(10)).unwrap();
//! let m = vm.expect(&re(r"all (\d+) CPUs online"), Duration::from_secs(10)).unwrap();
//! assert_eq!(m.group(1), "1");
//! ```
//!
//! Every running [`Qemu`] has a global time limit; when it is dropped while the
//! test is failing it kills QEMU and prints the whole console log, so that CI
//! output shows what the hypervisor said.
//!
//! `run.sh` builds its own QEMU command line in shell; the two agree on the
//! defaults (virt, GICv3, cortex-a72, 4 CPUs, 1 GiB, raw image at EL2).

mod console;
pub mod disk;
mod error;
mod images;
mod net;
mod pattern;
mod qemu;
pub mod shell;

pub use console::Qemu;
pub use error::Error;
pub use images::{image, images_dir, target_dir};
pub use net::{echo_round_trip, free_port};
pub use pattern::{Match, Pattern, re};
pub use qemu::{Board, Entry, QemuBuilder, rpi4_dtb};
pub use regex_lite::Regex;
