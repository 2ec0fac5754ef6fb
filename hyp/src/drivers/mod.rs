//! MMIO device drivers (register blocks via `tock-registers`).

pub mod bcm2711_gpio;
pub mod bcm2835_pm;
pub mod gic;
pub mod gicv2;
pub mod gicv3;
pub mod pl011;
