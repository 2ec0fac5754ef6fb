//! Naming exceptions for the report the SDK prints before crashing.

/// What entry `index` of the EL1 vector table is for, as `(kind, taken
/// from)` (Arm ARM D1.10.2: four groups of sync/IRQ/FIQ/SError).
pub fn vector_name(index: u64) -> (&'static str, &'static str) {
    let from = match index / 4 {
        0 => "EL1 with SP_EL0",
        1 => "EL1",
        2 => "EL0 (AArch64)",
        _ => "EL0 (AArch32)",
    };
    let kind = match index % 4 {
        0 => "synchronous",
        1 => "IRQ",
        2 => "FIQ",
        _ => "SError",
    };
    (kind, from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(vector_name(0), ("synchronous", "EL1 with SP_EL0"));
        assert_eq!(vector_name(4), ("synchronous", "EL1"));
        assert_eq!(vector_name(5), ("IRQ", "EL1"));
        assert_eq!(vector_name(11), ("SError", "EL0 (AArch64)"));
        assert_eq!(vector_name(14), ("FIQ", "EL0 (AArch32)"));
    }
}
