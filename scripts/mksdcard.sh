#!/usr/bin/env bash
# Builds a ready-to-write Raspberry Pi 4 SD-card image from the images of
# scripts/build.sh (run it first, or pass --build):
#
#   target/images/sdcard.img    256 MiB, MBR:
#     p1  64 MiB FAT32 (type 0x0c, bootable), label TERN-BOOT: the Pi 4
#         firmware (start4.elf, fixup4.dat from Debian's raspi-firmware,
#         non-free-firmware), bcm2711-rpi-4-b.dtb, config.txt, kernel8.img
#         (= hyp.bin), bundle.cpio (the boot modules, loaded as initramfs)
#     p2  the rest (type 0xda, "non-FS data"), unformatted: guest disks
#   target/images/sdcard.bmap   block map for `bmaptool copy`
#   target/images/sdcard/       the boot partition's files, as staged
#
# No mounts and no loop devices: the FAT is made in a file with mkfs.fat,
# filled with mtools and written into the image at the partition's offset.
# The tools (fdisk's sfdisk, dosfstools, mtools, bmap-tools) are installed
# with apt if missing; the firmware package is downloaded and unpacked, not
# installed. The device tree is $RPI4_DTB if set, else Debian's
# bcm2711-rpi-4-b.dtb kept in the repository (also what `run.sh --board
# rpi4` boots with).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
IMAGES="$TARGET_DIR/images"
DTB="${RPI4_DTB:-$ROOT/hyp/src/platform/testdata/bcm2711-rpi-4-b.dtb}"
FIRMWARE_CACHE="$TARGET_DIR/raspi-firmware"

# Layout, in 512-byte sectors: the boot partition starts at 1 MiB (erase-block
# aligned, as the Pi's own images do); the whole image is a power of two, which
# QEMU's SD card model requires should it ever be attached with -drive if=sd.
SECTOR=512
MIB=$((1024 * 1024))
IMAGE_MIB=256
BOOT_START_MIB=1
BOOT_MIB=64

usage() {
    cat <<'USAGE'
usage: scripts/mksdcard.sh [--build] [--bundle FILE] [--cmdline TEXT] [--out FILE]

  --build           run scripts/build.sh first
  --bundle FILE     boot modules to put on the card as bundle.cpio
                    (default target/images/bundle.cpio)
  --cmdline TEXT    write TEXT as cmdline.txt: the hypervisor's command
                    line (words after -- go to dom0); default: none
  --out FILE        the image to write (default target/images/sdcard.img;
                    its .bmap and staged files go next to it)
  -h, --help        this text

See the README, "Raspberry Pi 4" (and "On a real Raspberry Pi 4 (cycles)"
for the benchmark cards scripts/bench.sh --sdcards makes with it).
USAGE
}

build=0 bundle="" cmdline="" out=""
while (($#)); do
    case "$1" in
        --build) build=1; shift ;;
        --bundle) bundle="${2:?--bundle needs a file}"; shift 2 ;;
        --cmdline) cmdline="${2?--cmdline needs a text}"; shift 2 ;;
        --out) out="${2:?--out needs a file}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "mksdcard: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

# Installs the Debian packages whose commands are missing (idempotent).
need_tools() {
    local missing=() cmd pkg
    for pair in sfdisk:fdisk mkfs.fat:dosfstools mcopy:mtools bmaptool:bmap-tools; do
        cmd="${pair%%:*}" pkg="${pair#*:}"
        command -v "$cmd" >/dev/null || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "mksdcard: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Downloads and unpacks raspi-firmware into the cache once; prints the
# directory holding start4.elf.
firmware_dir() {
    local dir="$FIRMWARE_CACHE/root/usr/lib/raspi-firmware"
    if [ ! -f "$dir/start4.elf" ]; then
        mkdir -p "$FIRMWARE_CACHE"
        (
            cd "$FIRMWARE_CACHE"
            rm -f raspi-firmware_*.deb
            # apt-get download drops privileges to _apt, which may not write
            # here; the warning about that is harmless.
            apt-get download raspi-firmware 2>/dev/null ||
                { "${sudo[@]}" apt-get update -qq && apt-get download raspi-firmware 2>/dev/null; }
            rm -rf root
            dpkg-deb -x raspi-firmware_*.deb root
        ) >&2
    fi
    echo "$dir"
}

if ((build)); then
    "$ROOT/scripts/build.sh"
fi
BUNDLE="${bundle:-$IMAGES/bundle.cpio}"
OUT="${out:-$IMAGES/sdcard.img}"
OUT_DIR="$(dirname "$OUT")"
OUT_BASE="$(basename "$OUT" .img)"
for f in "$IMAGES/hyp.bin" "$BUNDLE" "$DTB"; do
    [ -f "$f" ] || { echo "mksdcard: $f is missing (run scripts/build.sh)" >&2; exit 1; }
done
need_tools
FW="$(firmware_dir)"

# The boot partition's files, staged so that tests can compare against them.
STAGE="$OUT_DIR/$OUT_BASE"
mkdir -p "$OUT_DIR"
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp "$FW/start4.elf" "$FW/fixup4.dat" "$STAGE/"
cp "$FIRMWARE_CACHE/root/usr/share/doc/raspi-firmware/copyright" "$STAGE/COPYING.firmware"
cp "$DTB" "$STAGE/bcm2711-rpi-4-b.dtb"
cp "$IMAGES/hyp.bin" "$STAGE/kernel8.img"
cp "$BUNDLE" "$STAGE/bundle.cpio"
# The firmware passes the first line to the kernel as /chosen bootargs.
[ -z "$cmdline" ] || printf '%s\n' "$cmdline" >"$STAGE/cmdline.txt"
cat >"$STAGE/config.txt" <<'CONFIG'
# tern on the Raspberry Pi 4, written by scripts/mksdcard.sh.
# The firmware's built-in ARM stub starts the kernel at EL2 and parks the
# other CPUs on the spin table the device tree describes: keep it (no
# armstub= line) and keep the GIC-400 on (enable_gic).
arm_64bit=1
kernel=kernel8.img
initramfs bundle.cpio followkernel
device_tree=bcm2711-rpi-4-b.dtb
enable_gic=1
# Console: tern drives the PL011 (uart0), puts it on GPIO14/15 itself and
# programs 115200 8N1 from this clock.
enable_uart=1
init_uart_clock=48000000
init_uart_baud=115200
CONFIG

BOOT_IMG="$OUT_DIR/$OUT_BASE-boot.vfat"
BMAP="$OUT_DIR/$OUT_BASE.bmap"
rm -f "$OUT" "$BOOT_IMG" "$BMAP"

# FAT32 in a file of the partition's size; -h: the sectors before it on the
# card (the BPB's hidden sectors).
mkfs.fat -F 32 -n TERN-BOOT -h $((BOOT_START_MIB * MIB / SECTOR)) \
    -C "$BOOT_IMG" $((BOOT_MIB * 1024)) >/dev/null
for f in "$STAGE"/*; do
    mcopy -i "$BOOT_IMG" "$f" "::$(basename "$f")"
done

truncate -s $((IMAGE_MIB * MIB)) "$OUT"
boot_start=$((BOOT_START_MIB * MIB / SECTOR))
boot_size=$((BOOT_MIB * MIB / SECTOR))
sfdisk --quiet --no-reread --no-tell-kernel "$OUT" <<TABLE
label: dos
unit: sectors
start=$boot_start, size=$boot_size, type=c, bootable
start=$((boot_start + boot_size)), type=da
TABLE
dd if="$BOOT_IMG" of="$OUT" bs=$MIB seek=$BOOT_START_MIB conv=notrunc,sparse status=none
rm -f "$BOOT_IMG"
bmaptool -q create -o "$BMAP" "$OUT"

echo "mksdcard: $OUT"
sfdisk --dump "$OUT" | sed -n 's/^/mksdcard:   /; /start=/p'
mdir -i "$OUT@@$((BOOT_START_MIB * MIB))" -b :: | sed 's/^/mksdcard:   /'
