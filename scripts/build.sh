#!/usr/bin/env bash
# Builds the aarch64 images into target/images/ (or $CARGO_TARGET_DIR/images/):
#   hyp.elf      the hypervisor ELF (QEMU -kernel with secure=on: EL3 entry)
#   hyp.bin      the raw arm64 Image (QEMU -kernel: EL2 entry, x0 = DTB)
#   bundle.cpio  the boot modules (dom0, demo guest, echo guest, their configs), passed as -initrd
#   bundle-tests.cpio  dom0 with the ABI-check, printer and hostile test guests
#   bundle-sched-*.cpio, bundle-events*.cpio, bundle-rings*.cpio  one per
#                QEMU test of the scheduler, event channels and shared rings
#                (tests/tests/sched.rs, events.rs, rings.rs), each with only
#                the guests that test boots
#   bundle-net.cpio, bundle-net-hostile.cpio  the network tests' domains
#                (tests/tests/net.rs)
#   bundle-store.cpio  the configuration store's two test domains
#                (tests/tests/store.rs, driven through dom0's shell)
#   bundle-lifecycle.cpio  crash policy, shutdown and reboot
#                (tests/tests/lifecycle.rs, driven through dom0's shell)
#   library.img  the guest library: an ext4 disk image with guest
#                configurations and images (`create /guests/demo.toml`)
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
# The echo guest (not autostarted: run.sh asks for it with dom0.start=echo).
"$PACK" bundle -o "$IMAGES/bundle.cpio" \
    "dom0=$OUT/dom0" "demo-guest=$OUT/demo-guest" "demo.toml=guests/demo/demo.toml" \
    "echo-guest=$OUT/echo-guest" "echo.toml=guests/demo/echo.toml"

# bundle-tests.cpio: dom0 with every test guest and its configuration.
args=("dom0=$OUT/dom0")
for g in "${TEST_GUESTS[@]}"; do
    args+=("$g=$OUT/$g" "$g.toml=guests/tests/configs/$g.toml")
done
"$PACK" bundle -o "$IMAGES/bundle-tests.cpio" "${args[@]}"

# The scheduler and event-channel tests each boot a bundle of their own, so
# that each runs only what it measures. `name=path` pairs after dom0; dom0
# starts the configured domains in this order.
CONFIGS=guests/tests/configs
test_bundle() {
    local name=$1
    shift
    "$PACK" bundle -o "$IMAGES/bundle-$name.cpio" "dom0=$OUT/dom0" "$@"
}
# Weights 1:2:4 on one CPU.
test_bundle sched-weights "burn=$OUT/burn" \
    "burn-w256.toml=$CONFIGS/burn-w256.toml" \
    "burn-w512.toml=$CONFIGS/burn-w512.toml" \
    "burn-w1024.toml=$CONFIGS/burn-w1024.toml"
# A capped domain and an uncapped one, each with a CPU to spare.
test_bundle sched-cap "burn=$OUT/burn" \
    "burn-cap25.toml=$CONFIGS/burn-cap25.toml" \
    "burn-alone.toml=$CONFIGS/burn-alone.toml"
# Three domains checking that their FP/SIMD registers survive each other's
# (lazy FP switching in the hypervisor).
test_bundle sched-fp "fp-check=$OUT/fp-check" \
    "fp-check-a.toml=$CONFIGS/fp-check-a.toml" \
    "fp-check-b.toml=$CONFIGS/fp-check-b.toml" \
    "fp-check-c.toml=$CONFIGS/fp-check-c.toml"
# Eight identical single-vCPU burners for four CPUs: their configurations
# differ only in the name, so they are written here.
SMP_CONFIGS="$TARGET_DIR/sched-smp-configs"
mkdir -p "$SMP_CONFIGS"
args=("burn=$OUT/burn")
for i in 1 2 3 4 5 6 7 8; do
    printf '# Written by scripts/build.sh: one of 8 burners on 4 CPUs.\nname = "burn-%s"\nmemory = 4\nimage = "burn"\ncmdline = "ms=3000"\n' \
        "$i" >"$SMP_CONFIGS/burn-$i.toml"
    args+=("burn-$i.toml=$SMP_CONFIGS/burn-$i.toml")
done
test_bundle sched-smp "${args[@]}"
# Event channels: 100,000 inter-domain round trips on their own (ping right
# before pong: they name each other as the next and the previous domain).
test_bundle events-100k \
    "evtchn-ping=$OUT/evtchn-ping" "evtchn-ping.toml=$CONFIGS/evtchn-ping-100k.toml" \
    "evtchn-pong=$OUT/evtchn-pong" "evtchn-pong.toml=$CONFIGS/evtchn-pong-100k.toml"
# ... and the rest: 1,000 inter-domain round trips, IPIs between two vCPUs
# of one domain, timer deadlines, bad ports.
test_bundle events \
    "evtchn-ping=$OUT/evtchn-ping" "evtchn-ping.toml=$CONFIGS/evtchn-ping.toml" \
    "evtchn-pong=$OUT/evtchn-pong" "evtchn-pong.toml=$CONFIGS/evtchn-pong.toml" \
    "ipi-pingpong=$OUT/ipi-pingpong" "ipi-pingpong.toml=$CONFIGS/ipi-pingpong.toml" \
    "timer-check=$OUT/timer-check" "timer-check.toml=$CONFIGS/timer-check.toml" \
    "evtchn-bad=$OUT/evtchn-bad" "evtchn-bad.toml=$CONFIGS/evtchn-bad.toml"
# Shared rings: 100,000 checksummed requests from ring-front to ring-back
# (front right before back: they name each other as the next and the previous
# domain).
test_bundle rings \
    "ring-front=$OUT/ring-front" "ring-front.toml=$CONFIGS/ring-front.toml" \
    "ring-back=$OUT/ring-back" "ring-back.toml=$CONFIGS/ring-back.toml"
# ... and an honest front end facing a hostile back end.
test_bundle rings-hostile \
    "ring-victim=$OUT/ring-victim" "ring-victim.toml=$CONFIGS/ring-victim.toml" \
    "ring-hostile=$OUT/ring-hostile" "ring-hostile.toml=$CONFIGS/ring-hostile.toml"

# ... and a hostile front end facing an honest, tolerant back end.
test_bundle rings-rogue \
    "ring-rogue=$OUT/ring-rogue" "ring-rogue.toml=$CONFIGS/ring-rogue.toml" \
    "ring-back=$OUT/ring-back" "ring-back.toml=$CONFIGS/ring-back-tolerant.toml"

# The SD card on the Pi 4 (tests/tests/rpi4.rs): a guest whose disk is a
# region of dom0's SD card.
test_bundle sd "blk-io=$OUT/blk-io" "sd-data.toml=$CONFIGS/sd-data.toml"

# The configuration store: two domains that use it (and hand a device to
# each other through it), driven with dom0's shell (tests/tests/store.rs).
test_bundle store \
    "store-a=$OUT/store-a" "store-a.toml=$CONFIGS/store-a.toml" \
    "store-b=$OUT/store-b" "store-b.toml=$CONFIGS/store-b.toml"

# The split console (tests/tests/console.rs): a guest that echoes lines typed
# on its console device, attached with the shell's `console` verb.
test_bundle console \
    "console-echo=$OUT/console-echo" "console-echo.toml=$CONFIGS/console-echo.toml"

# Domain life cycle through dom0's shell (tests/tests/lifecycle.rs): guests
# that crash at once (on_crash restart / preserve), one that honours shutdown
# and reboot requests, one that ignores them; none autostarts.
args=("lifecycle=$OUT/lifecycle")
for c in restart preserve idle deaf; do
    args+=("lifecycle-$c.toml=$CONFIGS/lifecycle-$c.toml")
done
test_bundle lifecycle "${args[@]}"

# The block back end: dom0 serves blk-io's and blk-hostile's virtual disks
# from a virtio disk (tests/tests/blk.rs, driven through dom0's shell).
args=("blk-io=$OUT/blk-io" "blk-hostile=$OUT/blk-hostile")
for c in blk-data blk-ro blk-kill blk-check blk-busy blk-hostile; do
    args+=("$c.toml=$CONFIGS/$c.toml")
done
test_bundle blk "${args[@]}"

# Networks (tests/tests/net.rs): the echo guest and a client that checks 1 MiB
# of echo over dom0's switch; then the same with a hostile front end first.
test_bundle net \
    "echo-guest=$OUT/echo-guest" "net-echo.toml=$CONFIGS/net-echo.toml" \
    "net-client=$OUT/net-client" "net-client.toml=$CONFIGS/net-client.toml"
test_bundle net-hostile \
    "net-hostile=$OUT/net-hostile" "net-hostile.toml=$CONFIGS/net-hostile.toml" \
    "echo-guest=$OUT/echo-guest" "net-echo.toml=$CONFIGS/net-echo.toml" \
    "net-client=$OUT/net-client" "net-client.toml=$CONFIGS/net-client.toml"

# library.img: the guest library, an ext4 filesystem on a disk of dom0's
# from which the shell's `create /guests/<name>.toml` and `fs-ls` read
# (dom0/src/fs): the demo and echo guests under /guests; under /tests what
# tests/tests/library.rs creates (a guest that runs until asked to shut
# down, a configuration whose image is missing). bundle-library.cpio is dom0
# alone, for that test.
LIBRARY="$TARGET_DIR/library"
rm -rf "$LIBRARY" "$IMAGES/library.img"
mkdir -p "$LIBRARY/guests" "$LIBRARY/tests"
cp guests/demo/demo.toml guests/demo/echo.toml "$OUT/demo-guest" "$OUT/echo-guest" "$LIBRARY/guests/"
cp "$CONFIGS/lifecycle-idle.toml" "$OUT/lifecycle" "$LIBRARY/tests/"
printf '# Written by scripts/build.sh: its image is missing.\nname = "lost"\nmemory = 4\nimage = "missing-guest"\n' \
    >"$LIBRARY/tests/lost.toml"
MKE2FS="$(PATH="$PATH:/sbin:/usr/sbin" command -v mke2fs)" ||
    { echo "build: mke2fs not found (scripts/deps.sh installs e2fsprogs)" >&2; exit 1; }
"$MKE2FS" -q -F -t ext4 -b 4096 -L tern-library -E root_owner=0:0 -d "$LIBRARY" \
    "$IMAGES/library.img" 16M >/dev/null
test_bundle library

echo "build: images in $IMAGES:"
ls -l "$IMAGES" | sed 1d
