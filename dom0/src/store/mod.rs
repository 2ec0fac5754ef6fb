//! The configuration store that dom0 serves to every domain
//! (`specs/store.md`): a xenstore-like tree with per-node permissions and
//! watches, one shared page and event channel per domain.
//!
//! | module | holds |
//! |---|---|
//! | [`tree`] | nodes, paths, the permission rules, quotas on nodes |
//! | [`watch`] | watches and which ones a change fires |
//! | [`server`] | connections, request decoding and answers, [`server::Server::service`] |
//! | [`listing`] | the shell's `store-ls` tree |
//! | [`service`] | dom0's one server: creating and releasing domains' connections with hypercalls, serving them from the main loop |
//!
//! Everything but [`service`] is plain logic, tested on the host.

pub mod listing;
pub mod server;
pub mod service;
pub mod tree;
pub mod watch;

pub use server::Server;

#[cfg(test)]
mod tests;
