//! Arm-specific layer. TODO(owner: boot helper)
