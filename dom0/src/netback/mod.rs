//! dom0's network back end (`specs/netif.md`): for each `vif` of a domain
//! it runs the store handshake ([`handshake`]), maps the front end's tx
//! and rx rings and moves frames between them and the virtual switch
//! ([`datapath`]); [`service`] holds every interface, the switch, the
//! physical NIC as its uplink and dom0's own interface, and is driven from
//! dom0's main loop without ever blocking.
//!
//! [`handshake`] and [`datapath`] are plain logic, tested on the host.

pub mod datapath;
pub mod handshake;
pub mod service;
