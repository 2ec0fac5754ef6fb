//! The image's first instructions: Linux arm64 Image header, self-relocation,
//! bss clearing, the EL3 hand-off, the secondary-CPU entry and the EL3 holding
//! pen. Everything after the stack is set goes to Rust (`early.rs`).
//!
//! Register use in the primary path (callee-saved, so they survive `bl`):
//! x19 = x0 at entry (DTB when booted as a Linux Image), x20 = runtime base of
//! the image, x21 = link base, x22 = runtime - link.

use core::arch::global_asm;

use super::cpu::{MAX_CPUS, PEN_STACK_SIZE, STACK_SIZE};

/// Image load offset from a 2 MiB-aligned base (Linux booting.rst, "Image
/// header"). 0x80000 is the traditional arm64 value and the Raspberry Pi load
/// address; on QEMU virt the raw image lands at RAM + 0x80000.
const TEXT_OFFSET: u64 = 0x8_0000;

/// Image header `flags` (booting.rst): bit 0 endianness (0 = little), bits 1-2
/// page size (1 = 4K), bit 3 physical placement (1 = anywhere, 2 MiB aligned).
const IMAGE_FLAG_LE: u64 = 0;
const IMAGE_FLAG_PAGE_4K: u64 = 1 << 1;
const IMAGE_FLAG_PLACE_ANYWHERE: u64 = 1 << 3;
const IMAGE_FLAGS: u64 = IMAGE_FLAG_LE | IMAGE_FLAG_PAGE_4K | IMAGE_FLAG_PLACE_ANYWHERE;

/// ELF `r_info` type of the only dynamic relocation a static PIE holds
/// (ELF for the Arm 64-bit Architecture, 5.7.11).
const R_AARCH64_RELATIVE: u64 = 1027;

/// Bytes a RELR bitmap word covers: 63 pointer-sized slots (its low bit only
/// tags it as a bitmap; System V gABI, "Relative relocation table").
const RELR_BITMAP_SPAN: u64 = 63 * 8;

/// MPIDR_EL1 Aff3 (bits 39:32) and Aff2..Aff0 (bits 23:0): all zero on the boot
/// CPU. Any other CPU that enters at `_start` (QEMU starts every CPU at the ELF
/// entry when it provides no PSCI, i.e. with `secure=on`) goes to the pen.
const MPIDR_AFF_MASK: u64 = 0xff_00ff_ffff;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    /* Linux arm64 Image header, 64 bytes (Documentation/arch/arm64/booting.rst). */
    b       primary_entry           /* code0 */
    .word   0                       /* code1 */
    .quad   {text_offset}           /* text_offset */
    .quad   __image_size            /* image_size (absolute symbol from link.ld) */
    .quad   {flags}                 /* flags */
    .quad   0                       /* res2 */
    .quad   0                       /* res3 */
    .quad   0                       /* res4 */
    .ascii  "ARM\x64"               /* magic */
    .word   0                       /* res5 */

    .section .text.entry, "ax"
primary_entry:
    /* All exceptions masked until the vectors and the MMU are in place. */
    msr     daifset, #0xf
    mov     x19, x0

    mrs     x1, mpidr_el1
    ldr     x2, ={aff_mask}
    tst     x1, x2
    b.ne    pen_entry

    /* Runtime and link address of the image; their difference is the
       relocation delta. The link base is an absolute symbol, so the
       movz/movk sequence needs no relocation itself. */
    adrp    x20, __image_start
    add     x20, x20, :lo12:__image_start
    movz    x21, #:abs_g3:__hyp_link_base
    movk    x21, #:abs_g2_nc:__hyp_link_base
    movk    x21, #:abs_g1_nc:__hyp_link_base
    movk    x21, #:abs_g0_nc:__hyp_link_base
    sub     x22, x20, x21

    /* Apply every Elf64_Rela {{ r_offset, r_info, r_addend }}:
       *(r_offset + delta) = r_addend + delta. */
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
1:  cmp     x1, x2
    b.hs    2f
    ldp     x3, x4, [x1], #16
    ldr     x5, [x1], #8
    cmp     x4, #{r_relative}
    b.ne    park
    add     x5, x5, x22
    str     x5, [x3, x22]
    b       1b

    /* The RELR table (build.rs: -z pack-relative-relocs) holds the same kind
       of relocation with the addend stored in place, packed: an even word is
       the link address of one pointer to fix, `where` then points past it; an
       odd word is a bitmap whose bit i (1..63) marks a pointer at
       where + 8 * (i - 1), after which `where` moves on 63 words.
       x6 = runtime `where`. */
2:  adrp    x1, __relr_start
    add     x1, x1, :lo12:__relr_start
    adrp    x2, __relr_end
    add     x2, x2, :lo12:__relr_end
    mov     x6, x20
10: cmp     x1, x2
    b.hs    14f
    ldr     x3, [x1], #8
    tbnz    x3, #0, 11f
    add     x6, x3, x22
    ldr     x4, [x6]
    add     x4, x4, x22
    str     x4, [x6], #8
    b       10b
11: mov     x7, x6
12: lsr     x3, x3, #1
    cbz     x3, 13f
    tbz     x3, #0, 15f
    ldr     x4, [x7]
    add     x4, x4, x22
    str     x4, [x7]
15: add     x7, x7, #8
    b       12b
13: add     x6, x6, #{relr_bitmap_span}
    b       10b

    /* Clear bss (16-byte aligned at both ends, see link.ld). */
14: adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b

4:  bl      set_boot_stack
    mov     x0, x19
    mov     x1, x20
    /* Finds the DTB, does the EL3 part if entered at EL3 (then returns 1 with
       ELR_EL3/SPSR_EL3 set up to come back at el2_entry), parks at EL1. */
    bl      early_el_setup
    cbz     x0, el2_entry
    eret

el2_entry:
    /* Now at EL2h (SP_EL2 is a different register from SP_EL3). */
    bl      set_boot_stack
    bl      primary_early           /* never returns */
    b       park

/* sp = top of CPU 0's stack. */
set_boot_stack:
    adrp    x9, {stacks}
    add     x9, x9, :lo12:{stacks}
    mov     x10, #{stack_size}
    add     sp, x9, x10
    ret

/* PSCI CPU_ON target (and pen release target): x0 = logical CPU index.
   Entered at EL2 with the MMU off. */
    .global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    cmp     x0, #{max_cpus}
    b.hs    park
    mov     x19, x0
    mov     x10, #{stack_size}
    madd    x11, x0, x10, x10
    adrp    x9, {stacks}
    add     x9, x9, :lo12:{stacks}
    add     sp, x9, x11
    mov     x0, x19
    bl      secondary_early         /* never returns */
    b       park

/* Holding pen for CPUs that enter at _start but are not the boot CPU.
   Slot = Aff0; other affinity levels must be zero (one cluster). */
pen_entry:
    and     x19, x1, #0xff
    ldr     x2, ={aff_mask}
    bic     x2, x2, #0xff
    tst     x1, x2
    b.ne    park
    cmp     x19, #{max_cpus}
    b.hs    park
    /* Wait for the boot CPU to have relocated the image. */
    adrp    x2, {pen_ready}
    add     x2, x2, :lo12:{pen_ready}
5:  ldr     w3, [x2]
    cbnz    w3, 6f
    wfe
    b       5b
6:  mov     x10, #{pen_stack_size}
    madd    x11, x19, x10, x10
    adrp    x9, {pen_stacks}
    add     x9, x9, :lo12:{pen_stacks}
    add     sp, x9, x11
    mov     x0, x19
    /* Returns 1 (ELR_EL3 = pen_wait, SPSR_EL3 = EL2h) if at EL3. */
    bl      pen_setup
    cbz     x0, pen_wait
    eret

    .global pen_wait
pen_wait:
    /* At EL2, MMU off: wait for an entry point in this slot's mailbox. */
    adrp    x2, {pen_entry_box}
    add     x2, x2, :lo12:{pen_entry_box}
7:  ldr     x3, [x2, x19, lsl #3]
    cbnz    x3, 8f
    wfe
    b       7b
8:  adrp    x2, {pen_context_box}
    add     x2, x2, :lo12:{pen_context_box}
    ldr     x0, [x2, x19, lsl #3]
    br      x3

    .global park
park:
    msr     daifset, #0xf
9:  wfe
    b       9b
"#,
    text_offset = const TEXT_OFFSET,
    flags = const IMAGE_FLAGS,
    aff_mask = const MPIDR_AFF_MASK,
    r_relative = const R_AARCH64_RELATIVE,
    relr_bitmap_span = const RELR_BITMAP_SPAN,
    stack_size = const STACK_SIZE,
    pen_stack_size = const PEN_STACK_SIZE,
    max_cpus = const MAX_CPUS,
    stacks = sym super::cpu::STACKS,
    pen_stacks = sym super::cpu::PEN_STACKS,
    pen_ready = sym super::cpu::PEN_READY,
    pen_entry_box = sym super::cpu::PEN_ENTRY,
    pen_context_box = sym super::cpu::PEN_CONTEXT,
);
