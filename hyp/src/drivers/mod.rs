//! MMIO device drivers (register blocks via `tock-registers`).

pub mod gic;
pub mod gicv2;
pub mod gicv3;
pub mod pl011;
