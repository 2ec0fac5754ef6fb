//! Supplies the linker script of `bench-bare`, the compute kernel started by
//! QEMU at EL1 with no hypervisor and no SDK. The SDK guests of this crate get
//! theirs from `pv-guest-sdk`'s build script.
//!
//! Link address: QEMU `virt` puts the DTB at the base of RAM (0x4000_0000)
//! for an ELF kernel, so the image starts 2 MiB above it, well clear.

use std::{env, fs, path::PathBuf};

/// Where `bench-bare` is linked and loaded (QEMU `virt` RAM + 2 MiB).
const BARE_BASE: u64 = 0x4020_0000;
/// Its stack, in the image's bss.
const BARE_STACK: u64 = 64 * 1024;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("TARGET").unwrap_or_default() != "aarch64-unknown-none" {
        return;
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = out.join("bench-bare.ld");
    fs::write(&script, bare_script()).expect("write bench-bare.ld");
    println!("cargo:rustc-link-arg-bin=bench-bare=-T{}", script.display());
}

fn bare_script() -> String {
    format!(
        r#"ENTRY(_start)
SECTIONS
{{
    . = {BARE_BASE:#x};
    .text : {{ KEEP(*(.text.boot)) *(.text .text.*) }}
    .rodata : ALIGN(16) {{ *(.rodata .rodata.*) }}
    .data : ALIGN(16) {{ *(.data .data.*) }}
    .bss (NOLOAD) : ALIGN(16) {{
        __bare_bss_start = .;
        *(.bss .bss.*) *(COMMON)
        . = ALIGN(16);
        __bare_bss_end = .;
        . += {BARE_STACK:#x};
        __bare_stack_top = .;
    }}
    /DISCARD/ : {{ *(.comment) *(.note .note.*) }}
}}
"#
    )
}
