//! MMIO device drivers (register blocks via tock-registers). TODO(owner: boot helper)
