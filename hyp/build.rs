//! Links the bare-metal `hyp` binary with `link.ld` as a position-independent
//! executable. Host builds (the library's unit tests) are left alone.

use std::env;
use std::path::PathBuf;

/// The target the hypervisor image is built for.
const HYP_TARGET: &str = "aarch64-unknown-none-softfloat";

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");

    // The hypervisor is built for the soft-float target so that its own code
    // never uses FP/SIMD registers: a guest's FP state then stays live across
    // traps and is only switched with the vCPU.
    if env::var("TARGET").as_deref() != Ok(HYP_TARGET) {
        return;
    }
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let script = dir.join("link.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    // The code is compiled with the target's default (static) relocation model:
    // with the small code model every symbol reference in code is PC-relative
    // (`adrp`/`add`), so only absolute pointers stored in data need fixing up.
    // `-pie` makes lld emit those as R_AARCH64_RELATIVE entries in `.rela.dyn`,
    // which the entry code applies. `-z notext` allows such entries in read-only
    // sections (vtables in .rodata): nothing is write-protected until the MMU is
    // on, and relocation happens before that.
    println!("cargo:rustc-link-arg-bins=-pie");
    println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    println!("cargo:rustc-link-arg-bins=-znotext");
    // Pack those entries in the RELR format (`.relr.dyn`): one 64-bit word per
    // run of up to 63 neighbouring pointers instead of 24 bytes per pointer,
    // which keeps about 7 KiB of relocations out of the image (issue 9's size
    // target). The entry code applies both tables.
    println!("cargo:rustc-link-arg-bins=-zpack-relative-relocs");
    // Also store the link-time value at each relocated location, so the ELF is
    // correct as loaded even before the entry code has run its relocation loop.
    println!("cargo:rustc-link-arg-bins=--apply-dynamic-relocs");
    // The GNU hash / symbol tables of a PIE are of no use to us.
    println!("cargo:rustc-link-arg-bins=--hash-style=sysv");
}
