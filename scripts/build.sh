#!/usr/bin/env bash
# Builds the aarch64 images into target/images/ (or $CARGO_TARGET_DIR/images/):
#   hyp.elf      the hypervisor ELF (QEMU -kernel with secure=on: EL3 entry)
#   hyp.bin      the raw arm64 Image (QEMU -kernel: EL2 entry, x0 = DTB)
#   bundle.cpio  the boot modules (dom0, guests, configs), passed as -initrd
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
IMAGES="$TARGET_DIR/images"
TRIPLE=aarch64-unknown-none

# Boot modules, as "<name in the bundle>=<cargo package>". The bin of each
# package must be named like the package. Add entries as the crates come alive;
# the bundle is only written when this list is not empty.
MODULES=(
    # "dom0=dom0"
    # "demo-guest=demo-guest"
)
# Domain configurations packed as-is under their file name.
CONFIGS=(
    # "guests/demo/demo.toml"
)

packages=(-p hyp)
for m in "${MODULES[@]}"; do
    packages+=(-p "${m#*=}")
done

echo "build: cargo build --release --target $TRIPLE ${packages[*]}"
cargo build --release --target "$TRIPLE" "${packages[@]}"
cargo build --quiet --release -p tern-pack
PACK="$TARGET_DIR/release/tern-pack"
OUT="$TARGET_DIR/$TRIPLE/release"

mkdir -p "$IMAGES"
cp "$OUT/hyp" "$IMAGES/hyp.elf"
"$PACK" image "$OUT/hyp" -o "$IMAGES/hyp.bin"

if ((${#MODULES[@]})); then
    args=()
    for m in "${MODULES[@]}"; do
        args+=("${m%%=*}=$OUT/${m#*=}")
    done
    for c in "${CONFIGS[@]}"; do
        args+=("$(basename "$c")=$c")
    done
    "$PACK" bundle -o "$IMAGES/bundle.cpio" "${args[@]}"
else
    # A stale bundle from an older build would otherwise be booted by run.sh.
    rm -f "$IMAGES/bundle.cpio"
fi

echo "build: images in $IMAGES:"
ls -l "$IMAGES" | sed 1d
