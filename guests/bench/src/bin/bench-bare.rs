//! bench-bare: the `cpu-bound` compute kernel with no hypervisor. QEMU starts
//! this ELF directly at EL1 (`-machine virt` without virtualization); it runs
//! [`bench_guests::compute`] between the region markers, prints the checksum
//! on the PL011 UART and powers the machine off through PSCI.
//!
//! QEMU `virt` only: the UART address is the board's, and PSCI is reached with
//! `hvc` because QEMU emulates PSCI itself (conduit HVC) when the machine has
//! neither EL2 nor EL3.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod bare {
    use aarch64_cpu::registers::CPACR_EL1;
    use bench_guests::{CPU_ROUNDS, compute, region_start, region_stop};
    use core::arch::{asm, global_asm};
    use core::fmt::{self, Write};
    use tock_registers::interfaces::{Readable, Writeable};
    use tock_registers::registers::{ReadOnly, ReadWrite};
    use tock_registers::{register_bitfields, register_structs};

    /// PL011 UART of QEMU `virt` (its DTB: `pl011@9000000`).
    const UART_BASE: usize = 0x0900_0000;
    /// PSCI `SYSTEM_OFF`, SMC32 (Arm DEN 0022, table 5.1).
    const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

    // Entry: EL1, MMU off. FP/SIMD enabled first (the target may use NEON
    // for memcpy and friends; CPACR_EL1.FPEN, Arm ARM D19.2.30), then the
    // stack and bss the linker script (build.rs) laid out.
    global_asm!(
        r#"
        .section .text.boot, "ax"
        .global _start
    _start:
        mov     x9, #{fpen}
        msr     cpacr_el1, x9
        isb
        adrp    x9, __bare_stack_top
        add     x9, x9, :lo12:__bare_stack_top
        mov     sp, x9
        adrp    x9, __bare_bss_start
        add     x9, x9, :lo12:__bare_bss_start
        adrp    x10, __bare_bss_end
        add     x10, x10, :lo12:__bare_bss_end
    1:  cmp     x9, x10
        b.hs    2f
        stp     xzr, xzr, [x9], #16
        b       1b
    2:  bl      bare_main
    3:  wfi
        b       3b
    "#,
        fpen = const CPACR_EL1::FPEN::TrapNothing.value,
    );

    register_bitfields! {u32,
        /// UARTFR, flag register (PL011 TRM 3.3.3).
        FR [
            /// Transmit FIFO full.
            TXFF OFFSET(5) NUMBITS(1) []
        ]
    }

    register_structs! {
        /// The PL011 registers used here (PL011 TRM table 3-1).
        Pl011 {
            (0x000 => dr: ReadWrite<u32>),
            (0x004 => _reserved),
            (0x018 => fr: ReadOnly<u32, FR::Register>),
            (0x01c => @END),
        }
    }

    /// The board UART, transmit only.
    struct Uart(&'static Pl011);

    impl Write for Uart {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for b in s.bytes() {
                while self.0.fr.is_set(FR::TXFF) {}
                self.0.dr.set(u32::from(b));
            }
            Ok(())
        }
    }

    fn uart() -> Uart {
        // SAFETY: QEMU `virt` has a PL011 at UART_BASE; with the MMU off it
        // is accessed as Device memory, and nothing else in this image uses it.
        Uart(unsafe { &*(UART_BASE as *const Pl011) })
    }

    fn system_off() -> ! {
        // SAFETY: a PSCI call to QEMU's own PSCI emulation; SYSTEM_OFF does
        // not return. x0..x3 are the SMCCC result registers.
        unsafe {
            asm!("hvc #0", inout("x0") PSCI_SYSTEM_OFF => _, out("x1") _, out("x2") _,
                out("x3") _, options(nostack));
        }
        loop {
            aarch64_cpu::asm::wfi();
        }
    }

    #[unsafe(no_mangle)]
    extern "C" fn bare_main() -> ! {
        let _ = writeln!(uart(), "bench-bare: rounds={CPU_ROUNDS}");
        region_start();
        let sum = compute(CPU_ROUNDS);
        region_stop();
        let _ = writeln!(uart(), "bench-bare: checksum={sum:#010x}");
        system_off()
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let _ = writeln!(uart(), "bench-bare: {info}");
        system_off()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    panic!("bench-bare is a bare-metal image: build it with --target aarch64-unknown-none");
}
