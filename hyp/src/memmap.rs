//! TODO(owner: host-core helper)
