//! The harness's error type.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// What went wrong while booting or talking to QEMU.
#[derive(Debug)]
pub enum Error {
    /// An image is not built; the message says how to build it.
    MissingImage(PathBuf),
    /// QEMU could not be started.
    Spawn(std::io::Error),
    /// Writing to the serial console or waiting for QEMU failed.
    Io(std::io::Error),
    /// The pattern did not show up in time.
    Timeout {
        /// What was expected.
        pattern: String,
        /// How long we waited.
        waited: Duration,
    },
    /// QEMU closed its console before the pattern showed up.
    Exited {
        /// What was expected.
        pattern: String,
        /// QEMU's exit status, if it was reaped.
        status: Option<ExitStatus>,
    },
    /// A line matched a failure marker (e.g. an unexpected exception report)
    /// while we waited for something else.
    Failure {
        /// What was expected.
        pattern: String,
        /// The console line that matched the marker.
        line: String,
    },
    /// QEMU did not exit in time.
    NoExit(Duration),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingImage(p) => write!(
                f,
                "image {} is missing: run scripts/build.sh first",
                p.display()
            ),
            Self::Spawn(e) => write!(f, "cannot start qemu-system-aarch64: {e}"),
            Self::Io(e) => write!(f, "console I/O: {e}"),
            Self::Timeout { pattern, waited } => {
                write!(f, "timed out after {waited:?} waiting for {pattern}")
            }
            Self::Exited { pattern, status } => {
                write!(f, "QEMU exited ({status:?}) while waiting for {pattern}")
            }
            Self::Failure { pattern, line } => {
                write!(f, "failure while waiting for {pattern}: {line:?}")
            }
            Self::NoExit(t) => write!(f, "QEMU still running after {t:?}"),
        }
    }
}

impl std::error::Error for Error {}
