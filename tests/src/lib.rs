//! QEMU test harness. TODO(owner: harness helper)
