#!/usr/bin/env bash
# Builds the aarch64 images into target/images/ (or $CARGO_TARGET_DIR/images/):
#   hyp.elf      the hypervisor ELF (QEMU -kernel with secure=on: EL3 entry)
#   hyp.bin      the raw arm64 Image (QEMU -kernel: EL2 entry, x0 = DTB)
#   bundle.cpio  the boot modules (dom0, demo guest, its config), passed as -initrd
#   bundle-tests.cpio  dom0 with the ABI-check, printer and hostile test guests
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
IMAGES="$TARGET_DIR/images"
# The hypervisor is soft-float (its code never touches FP/SIMD registers, so a
# guest's FP state survives traps untouched); guests and dom0 may use FP.
HYP_TRIPLE=aarch64-unknown-none-softfloat
GUEST_TRIPLE=aarch64-unknown-none
GUEST_PACKAGES=(-p dom0 -p demo-guest -p test-guests)
# The bins of test-guests that go into the test bundle.
TEST_GUESTS=(abi-check printer hostile-read-hyp hostile-read-dom0 hostile-write-domu
    hostile-gic hostile-uart hostile-undef hostile-smc
    evtchn-ping evtchn-pong evtchn-bad timer-check)

echo "build: cargo build --release --target $HYP_TRIPLE -p hyp"
cargo build --release --target "$HYP_TRIPLE" -p hyp
echo "build: cargo build --release --target $GUEST_TRIPLE ${GUEST_PACKAGES[*]}"
cargo build --release --target "$GUEST_TRIPLE" "${GUEST_PACKAGES[@]}"
cargo build --quiet --release -p tern-pack
PACK="$TARGET_DIR/release/tern-pack"
HYP_OUT="$TARGET_DIR/$HYP_TRIPLE/release"
OUT="$TARGET_DIR/$GUEST_TRIPLE/release"

mkdir -p "$IMAGES"
cp "$HYP_OUT/hyp" "$IMAGES/hyp.elf"
"$PACK" image "$HYP_OUT/hyp" -o "$IMAGES/hyp.bin"

# bundle.cpio: what scripts/run.sh boots: dom0 and the demo guest.
"$PACK" bundle -o "$IMAGES/bundle.cpio" \
    "dom0=$OUT/dom0" "demo-guest=$OUT/demo-guest" "demo.toml=guests/demo/demo.toml"

# bundle-tests.cpio: dom0 with every test guest and its configuration.
args=("dom0=$OUT/dom0")
for g in "${TEST_GUESTS[@]}"; do
    args+=("$g=$OUT/$g" "$g.toml=guests/tests/configs/$g.toml")
done
"$PACK" bundle -o "$IMAGES/bundle-tests.cpio" "${args[@]}"

echo "build: images in $IMAGES:"
ls -l "$IMAGES" | sed 1d
