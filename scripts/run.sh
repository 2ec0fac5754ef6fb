#!/usr/bin/env bash
# Builds tern and boots it in QEMU with the serial console on this terminal.
# Quit QEMU with Ctrl-A X. See --help.
#
# The QEMU command line is built here in shell; the test harness
# (tests/src/qemu.rs) builds the same one in Rust, with the same defaults.
# Change both together. The demo's NIC and disk are not harness defaults:
# the tests that need them add them (tests/tests/net.rs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IMAGES="${CARGO_TARGET_DIR:-$ROOT/target}/images"
RPI4_DTB="${RPI4_DTB:-$ROOT/hyp/src/platform/testdata/bcm2711-rpi-4-b.dtb}"

usage() {
    cat <<'USAGE'
usage: scripts/run.sh [options] [-- QEMU arguments...]

  --board NAME     virt (default), or rpi4: QEMU raspi4b (Raspberry Pi 4B,
                   4 CPUs, 2 GiB, GIC-400) booting hyp.bin as kernel8.img
                   with the Pi 4 device tree ($RPI4_DTB, default the one
                   scripts/mksdcard.sh puts on the card); --smp, --gic,
                   --cpu, --mem and --el3 apply to virt only
  --smp N          number of CPUs (default 4)
  --gic 2|3        GIC version (default 3)
  --cpu NAME       QEMU CPU model (default cortex-a72)
  --mem SIZE       RAM size (default 1G)
  --el3            boot hyp.elf with secure=on: entered at EL3
                   (default: raw hyp.bin entered at EL2 with x0 = DTB)
  --append ARGS    boot arguments (/chosen/bootargs), e.g. "hyp.test=fault";
                   dom0's come after "--"
  --no-shell       do not pass dom0.shell: dom0 starts the configured
                   domains and powers off when they are done (by default it
                   then opens its shell on the console; 'poweroff' quits)
  --no-build       boot the images already in target/images
  --net-port N     host port forwarded (127.0.0.1 only) to the echo guest's
                   TCP port 7 (default 5555: try `nc 127.0.0.1 5555`)
  --no-net         no NIC, and the echo guest is not started
  --demo-disk FILE the echo guest's disk, dom0's first virtio disk (vda;
                   default $IMAGES/demo-disk.img, made as 8 MiB of zeros
                   if missing: it keeps a boot counter across runs)
  --no-disk        no virtio disk (the echo guest, which needs one, fails to start)
  --print-cmd      print the QEMU command line and exit
  -h, --help       this text
USAGE
}

board=virt smp=4 gic=3 cpu=cortex-a72 mem=1G el3=0 append="" build=1 print=0 shell=1
net=1 net_port=5555 disk=1 demo_disk="$IMAGES/demo-disk.img"
extra=()
while (($#)); do
    case "$1" in
        --board) board="$2"; shift 2 ;;
        --smp) smp="$2"; shift 2 ;;
        --gic) gic="$2"; shift 2 ;;
        --cpu) cpu="$2"; shift 2 ;;
        --mem) mem="$2"; shift 2 ;;
        --el3) el3=1; shift ;;
        --append) append="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --no-shell) shell=0; shift ;;
        --net-port) net_port="$2"; shift 2 ;;
        --no-net) net=0; shift ;;
        --demo-disk) demo_disk="$2"; shift 2 ;;
        --no-disk) disk=0; shift ;;
        --print-cmd) print=1; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

case "$board" in
    virt | rpi4) ;;
    *) echo "run.sh: unknown board $board" >&2; exit 2 ;;
esac
if [ "$board" = rpi4 ] && ((el3)); then
    echo "run.sh: --el3 is for virt only (raspi4b enters raw images at EL2)" >&2
    exit 2
fi
case "$gic" in
    2 | 3) ;;
    *) echo "run.sh: --gic must be 2 or 3" >&2; exit 2 ;;
esac

kernel="$IMAGES/hyp.bin"
if [ "$board" = rpi4 ]; then
    # raspi4b fixes CPUs, RAM and the GIC; it loads the given device tree and
    # fills in /memory and /chosen (initrd, bootargs). Its first serial port
    # is the PL011 (uart0), which tern uses as its console.
    cmd=(qemu-system-aarch64 -machine raspi4b -dtb "$RPI4_DTB")
else
    machine="virt,virtualization=on,gic-version=$gic"
    if ((el3)); then
        machine+=",secure=on"
        kernel="$IMAGES/hyp.elf"
    fi
    cmd=(qemu-system-aarch64 -machine "$machine" -cpu "$cpu" -smp "$smp" -m "$mem")
fi
cmd+=(-nographic -kernel "$kernel")
if [ -f "$IMAGES/bundle.cpio" ]; then
    # QEMU loads an initrd only for Linux-style images: with --el3 (an ELF) it
    # is silently ignored.
    ((el3)) && echo "run.sh: note: QEMU does not load -initrd for ELF kernels (--el3)" >&2
    cmd+=(-initrd "$IMAGES/bundle.cpio")
fi
# The network demo (virt only): QEMU user networking behind a virtio-net NIC,
# which dom0 makes the uplink of its virtual switch; the echo guest
# (guests/demo/echo.toml, address 10.0.2.100) serves TCP echo on port 7, and
# hostfwd forwards 127.0.0.1:$net_port of this machine to it (nothing is
# reachable from other machines).
if [ "$board" = virt ] && ((net)); then
    cmd+=(-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$net_port-10.0.2.100:7"
        -device virtio-net-device,netdev=n0)
    if [[ " $append " == *" -- "* ]]; then append+=" dom0.start=echo"; else append+=" -- dom0.start=echo"; fi
    append="${append# }"
fi
# Disks (virt only): dom0 drives each as a virtio-blk device, vda first, and
# serves domains' `disk = [...]` entries from them. The demo disk is the echo
# guest's (echo.toml: target=vda). The guest library (library.img, an ext4
# image of configurations and guest images made by scripts/build.sh) comes
# next, read-only: dom0 finds it by its filesystem, `fs-ls` lists it and
# `create /guests/demo.toml` starts a guest from it. More images go into
# `disks` (and `disk_flags`, "" or ",readonly=on"), in order.
disks=() disk_flags=()
if [ "$board" = virt ] && ((disk)); then
    disks+=("$demo_disk") disk_flags+=("")
fi
if [ "$board" = virt ] && [ -f "$IMAGES/library.img" ]; then
    disks+=("$IMAGES/library.img") disk_flags+=(",readonly=on")
fi
# QEMU's virt board hands virtio-mmio transports out from the top address
# down, in command-line order, and dom0 names disks by ascending address: so
# the disks go on the command line last first, for vda to be the first.
for ((i = ${#disks[@]} - 1; i >= 0; i--)); do
    cmd+=(-drive "file=${disks[$i]},if=none,format=raw,id=d$i${disk_flags[$i]}"
        -device "virtio-blk-device,drive=d$i")
done
# dom0's flags follow the first "--" of the boot arguments.
if ((shell)); then
    if [[ " $append " == *" -- "* ]]; then append+=" dom0.shell"; else append+=" -- dom0.shell"; fi
    append="${append# }"
fi
[ -n "$append" ] && cmd+=(-append "$append")
cmd+=("${extra[@]}")

# Shell-quotes only the words that need it, so the line stays readable.
show() {
    local w out=()
    for w in "$@"; do
        if [[ "$w" =~ ^[A-Za-z0-9_./=,:+@%-]+$ ]]; then out+=("$w"); else out+=("$(printf '%q' "$w")"); fi
    done
    echo "${out[*]}"
}

if ((print)); then
    show "${cmd[@]}"
    exit 0
fi

"$ROOT/scripts/deps.sh"
if ((build)); then
    "$ROOT/scripts/build.sh"
fi
if ((${#disks[@]})) && [ ! -e "$demo_disk" ]; then
    mkdir -p "$(dirname "$demo_disk")"
    truncate -s 8M "$demo_disk"
    echo "run.sh: made $demo_disk (8 MiB, the echo guest's disk)" >&2
fi
echo "run.sh: $(show "${cmd[@]}")" >&2
echo "run.sh: Ctrl-A X quits QEMU" >&2
exec "${cmd[@]}"
