//! Split devices over the store: the directories of a device's front and
//! back end and the handshake (`specs/store.md`, "Split devices").

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use tern_abi::domctl::DomainId;

use super::{Access, Error, Store, StoreError, StorePerm, XenbusState};
use crate::time::Deadline;

/// A split device between a front end and a back end
/// (`specs/store.md`, "Split devices").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its type (`vif`, `ring`, ...): a path component.
    pub kind: String,
    /// Its number among the front end's devices of that type.
    pub index: u32,
    /// The front end's domain.
    pub front: DomainId,
    /// The back end's domain.
    pub back: DomainId,
}

/// What the front end publishes for the back end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontDetails {
    /// Grant reference of the ring page, in the front end's table.
    pub ring_ref: u32,
    /// The port the front end reserved for the back end.
    pub event_channel: u32,
}

impl Device {
    /// `/local/domain/<front>/device/<type>/<n>`.
    pub fn front_dir(&self) -> String {
        alloc::format!(
            "/local/domain/{}/device/{}/{}",
            self.front.0,
            self.kind,
            self.index
        )
    }

    /// `/local/domain/<back>/backend/<type>/<front>/<n>`.
    pub fn back_dir(&self) -> String {
        alloc::format!(
            "/local/domain/{}/backend/{}/{}/{}",
            self.back.0,
            self.kind,
            self.front.0,
            self.index
        )
    }
}

pub(super) fn state_value(s: XenbusState) -> Vec<u8> {
    s.raw().to_string().into_bytes()
}

impl Store {
    /// Creates `dir` owned by `owner`, readable by `reader`.
    fn shared_dir(&mut self, dir: &str, owner: DomainId, reader: DomainId) -> Result<(), Error> {
        self.mkdir(dir)?;
        let perms = [
            StorePerm {
                dom: owner.0,
                access: Access::None,
            },
            StorePerm {
                dom: reader.0,
                access: Access::Read,
            },
        ];
        self.set_perms(dir, &perms)
    }

    /// Waits until the `state` node at `path` holds a state `want` accepts
    /// (it may not exist or be readable yet). Returns the state.
    pub fn wait_state(
        &mut self,
        path: &str,
        want: impl Fn(XenbusState) -> bool,
        deadline: Deadline,
    ) -> Result<XenbusState, Error> {
        match self.watch(path, path) {
            Ok(()) | Err(Error::Store(StoreError::Exist)) => {}
            Err(e) => return Err(e),
        }
        let r = loop {
            match self.read(path) {
                Ok(v) => {
                    if let Some(s) = XenbusState::parse(&v).filter(|&s| want(s)) {
                        break Ok(s);
                    }
                }
                Err(Error::Store(StoreError::NoEnt | StoreError::Access)) => {}
                Err(e) => break Err(e),
            }
            match self.next_event(Some(deadline)) {
                Ok(Some(_)) => {}
                Ok(None) => break Err(Error::Timeout),
                Err(e) => break Err(e),
            }
        };
        let _ = self.unwatch(path, path);
        // Events of this watch that came before the unwatch took effect.
        self.forget_events(path);
        r
    }

    /// The front end's side of the handshake: publishes `details` once the
    /// back end waits for them, and returns when both are Connected.
    pub fn front_connect(
        &mut self,
        dev: &Device,
        details: FrontDetails,
        deadline: Deadline,
    ) -> Result<(), Error> {
        let dir = dev.front_dir();
        let back_state = alloc::format!("{}/state", dev.back_dir());
        self.shared_dir(&dir, dev.front, dev.back)?;
        self.write(
            &alloc::format!("{dir}/backend-id"),
            dev.back.0.to_string().as_bytes(),
        )?;
        self.write(
            &alloc::format!("{dir}/state"),
            &state_value(XenbusState::Initialising),
        )?;
        self.wait_state(&back_state, |s| s >= XenbusState::InitWait, deadline)?;
        let ring = details.ring_ref.to_string();
        self.write(&alloc::format!("{dir}/ring-ref"), ring.as_bytes())?;
        let port = details.event_channel.to_string();
        self.write(&alloc::format!("{dir}/event-channel"), port.as_bytes())?;
        self.write(
            &alloc::format!("{dir}/state"),
            &state_value(XenbusState::Initialised),
        )?;
        self.wait_state(&back_state, |s| s == XenbusState::Connected, deadline)?;
        self.write(
            &alloc::format!("{dir}/state"),
            &state_value(XenbusState::Connected),
        )
    }

    /// The back end's side: announces InitWait, waits for the front end's
    /// details, runs `attach` with them (map the ring, bind the port), then
    /// writes Connected and waits for the front end to be Connected too.
    pub fn back_connect<R>(
        &mut self,
        dev: &Device,
        deadline: Deadline,
        attach: impl FnOnce(FrontDetails) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let dir = dev.back_dir();
        let front = dev.front_dir();
        let front_state = alloc::format!("{front}/state");
        self.shared_dir(&dir, dev.back, dev.front)?;
        self.write(
            &alloc::format!("{dir}/frontend-id"),
            dev.front.0.to_string().as_bytes(),
        )?;
        self.write(
            &alloc::format!("{dir}/state"),
            &state_value(XenbusState::InitWait),
        )?;
        self.wait_state(
            &front_state,
            |s| s == XenbusState::Initialised || s == XenbusState::Connected,
            deadline,
        )?;
        let number = |s: &mut Self, name: &str| -> Result<u32, Error> {
            let v = s.read_string(&alloc::format!("{front}/{name}"))?;
            v.trim().parse().map_err(|_| Error::Protocol)
        };
        let details = FrontDetails {
            ring_ref: number(self, "ring-ref")?,
            event_channel: number(self, "event-channel")?,
        };
        let r = attach(details)?;
        self.write(
            &alloc::format!("{dir}/state"),
            &state_value(XenbusState::Connected),
        )?;
        self.wait_state(&front_state, |s| s == XenbusState::Connected, deadline)?;
        Ok(r)
    }
}
