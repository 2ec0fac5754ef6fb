#!/usr/bin/env bash
# Benchmarks in executed instructions (README "Benchmarks"): builds the images,
# the bench guests and the tern-bench QEMU plugin, runs every benchmark under
# QEMU TCG with -icount, prints a table (figure | target | Xen 4.17 yardstick |
# status) and writes $TARGET/bench/results.json and results.svg.
#
#   scripts/bench.sh            full run
#   scripts/bench.sh --short    fewer iterations (scripts/test.sh): checks that
#                               every benchmark completes and prints its figures
#   scripts/bench.sh --profile  also the hottest EL2 code, by function, and the
#                               hvc and timer-interrupt paths instruction by
#                               instruction
#   scripts/bench.sh --no-build use the images already built
#   scripts/bench.sh --pmu      the guests also read the cycle counter at
#                               their markers (hyp.guest_pmu=1, pmu=1) and
#                               the cycles lines are listed after the table
#                               (QEMU's cycles are not a Cortex-A72's: this
#                               is for --sdcards and checks the path)
#   scripts/bench.sh --sdcards  implies --pmu; also writes one Raspberry Pi 4
#                               SD-card image per benchmark bundle,
#                               $TARGET/bench/sdcard-<bundle>.img (README,
#                               "On a real Raspberry Pi 4 (cycles)")
#
# Exits non-zero if a benchmark does not complete or prints no figure; never
# because a figure misses its target.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
IMAGES="$TARGET_DIR/images"
BENCH="$TARGET_DIR/bench"
RUNS="$BENCH/runs"
GUEST_TRIPLE=aarch64-unknown-none
OUT="$TARGET_DIR/$GUEST_TRIPLE/release"
PLUGIN_SRC=tools/qemu-plugin/tern-bench.c
PLUGIN="$BENCH/tern-bench.so"
# Per QEMU run; a hung benchmark fails instead of blocking CI.
RUN_TIMEOUT=300

short=0 profile=0 build=1 pmu=0 sdcards=0
while (($#)); do
    case "$1" in
        --short) short=1 ;;
        --profile) profile=1 ;;
        --no-build) build=0 ;;
        --pmu) pmu=1 ;;
        --sdcards) pmu=1 sdcards=1 ;;
        -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

if ((short)); then
    hvc_iters=50 yield_iters=20 evtchn_iters=50 virq_iters=20 grant_iters=20 blk_iters=50
    net_iters=20
    mode=short
else
    hvc_iters=1000 yield_iters=1000 evtchn_iters=1000 virq_iters=1000 grant_iters=1000
    blk_iters=1000 net_iters=1000 mode=full
fi

# Tools: a C compiler for the plugin, python3 for the report, and (profile)
# an AArch64 disassembler and symbolizer for hyp.elf.
need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
command -v python3 >/dev/null || need_apt+=(python3)
objdump="" addr2line=""
if ((profile)); then
    if ! command -v llvm-objdump >/dev/null || ! command -v llvm-addr2line >/dev/null; then
        need_apt+=(llvm)
    fi
fi
if ((${#need_apt[@]})); then
    sudo=""
    ((EUID)) && sudo=sudo
    echo "bench: installing ${need_apt[*]}"
    $sudo apt-get update -qq
    $sudo apt-get install -y --no-install-recommends "${need_apt[@]}"
fi
if ((profile)); then
    objdump="$(command -v llvm-objdump)" addr2line="$(command -v llvm-addr2line)"
fi

if ((build)); then
    scripts/build.sh
    echo "bench: cargo build --release --target $GUEST_TRIPLE -p bench-guests"
    cargo build --release --target "$GUEST_TRIPLE" -p bench-guests
fi
mkdir -p "$BENCH" "$RUNS"
if [ ! -f "$PLUGIN" ] || [ "$PLUGIN_SRC" -nt "$PLUGIN" ]; then
    echo "bench: gcc $PLUGIN_SRC -> $PLUGIN"
    gcc -std=gnu11 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
        -o "$PLUGIN" "$PLUGIN_SRC"
fi

# Bundles: dom0 plus the bench guests, with configurations written here so
# that --short can change the iteration counts.
cfg="$BENCH/configs"
mkdir -p "$cfg"
# console=hypercall: no console ring (dom0 would relay every line while the
# others measure), and the first port and grant are the ones the guests expect.
# --pmu: pmu=1 makes the bench guests read the cycle counter at their markers.
pmu_arg=""
((pmu)) && pmu_arg=" pmu=1"
domain_config() { # name image cmdline
    printf 'name = "%s"\nmemory = 4\nimage = "%s"\ncmdline = "%s%s console=hypercall"\n' \
        "$1" "$2" "$3" "$pmu_arg" >"$cfg/$1.toml"
}
domain_config bench-hvc bench-hvc "iters=$hvc_iters"
domain_config bench-cpu bench-cpu ""
domain_config yield-a bench-yield "role=measure iters=$yield_iters"
domain_config yield-b bench-yield "role=partner iters=$yield_iters"
# ping is created first, so pong is the next domain id (see bench-evtchn.rs).
domain_config evtchn-ping bench-evtchn "role=ping peer=+1 iters=$evtchn_iters"
domain_config evtchn-pong bench-evtchn "role=pong peer=-1 iters=$evtchn_iters"
domain_config bench-virq bench-virq "iters=$virq_iters"
# front is created first, so back is the next domain id (see bench-grant.rs).
domain_config grant-front bench-grant "role=front peer=+1 iters=$grant_iters"
domain_config grant-back bench-grant "role=back peer=-1 iters=$grant_iters"
domain_config bench-virq-irq bench-virq "iters=$virq_iters phases=irq"
# The first 4 MiB of the scratch disk (blk-read-4k reads its first 256 KiB).
domain_config bench-blk bench-blk "iters=$blk_iters"
printf 'disk = ["target=vda, start=0, sectors=8192"]\n' >>"$cfg/bench-blk.toml"
# net-pingpong: ping is created first; both on br0 (no NIC needed).
domain_config net-ping bench-net "role=ping iters=$net_iters"
domain_config net-pong bench-net "role=pong"
for d in net-ping net-pong; do printf 'vif = ["bridge=br0"]\n' >>"$cfg/$d.toml"; done
PACK="$TARGET_DIR/release/tern-pack"
"$PACK" bundle -o "$BENCH/hvc.cpio" "dom0=$OUT/dom0" "bench-hvc=$OUT/bench-hvc" \
    "bench-hvc.toml=$cfg/bench-hvc.toml"
"$PACK" bundle -o "$BENCH/cpu.cpio" "dom0=$OUT/dom0" "bench-cpu=$OUT/bench-cpu" \
    "bench-cpu.toml=$cfg/bench-cpu.toml"
"$PACK" bundle -o "$BENCH/yield.cpio" "dom0=$OUT/dom0" "bench-yield=$OUT/bench-yield" \
    "yield-a.toml=$cfg/yield-a.toml" "yield-b.toml=$cfg/yield-b.toml"
"$PACK" bundle -o "$BENCH/evtchn.cpio" "dom0=$OUT/dom0" "bench-evtchn=$OUT/bench-evtchn" \
    "evtchn-ping.toml=$cfg/evtchn-ping.toml" "evtchn-pong.toml=$cfg/evtchn-pong.toml"
"$PACK" bundle -o "$BENCH/grant.cpio" "dom0=$OUT/dom0" "bench-grant=$OUT/bench-grant" \
    "grant-front.toml=$cfg/grant-front.toml" "grant-back.toml=$cfg/grant-back.toml"
"$PACK" bundle -o "$BENCH/blk.cpio" "dom0=$OUT/dom0" "bench-blk=$OUT/bench-blk" \
    "bench-blk.toml=$cfg/bench-blk.toml"
"$PACK" bundle -o "$BENCH/net.cpio" "dom0=$OUT/dom0" "bench-net=$OUT/bench-net" \
    "net-ping.toml=$cfg/net-ping.toml" "net-pong.toml=$cfg/net-pong.toml"
"$PACK" bundle -o "$BENCH/virq.cpio" "dom0=$OUT/dom0" "bench-virq=$OUT/bench-virq" \
    "bench-virq.toml=$cfg/bench-virq.toml"
"$PACK" bundle -o "$BENCH/virq-irq.cpio" "dom0=$OUT/dom0" "bench-virq=$OUT/bench-virq" \
    "bench-virq.toml=$cfg/bench-virq-irq.toml"

# One CPU everywhere but evtchn-pingpong-2cpu: the figures are per operation
# on one CPU, and a single vCPU keeps the count independent of how QEMU
# interleaves CPUs (with -icount it runs them round robin in one thread, and
# a CPU spinning on a lock spins until its turn ends).
HYP_MACHINE=(-machine virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 1 -m 1G)
HYP_MACHINE_2CPU=(-machine virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 2 -m 1G)
BARE_MACHINE=(-machine virt -cpu cortex-a72 -smp 1 -m 1G)
# --pmu: the hypervisor lets guests read the cycle counter.
hyp_bootargs=""
((pmu)) && hyp_bootargs="hyp.guest_pmu=1"
hyp_append=()
((pmu)) && hyp_append=(-append "$hyp_bootargs")

# run NAME PLUGIN_ARGS QEMU_ARGS...: console to runs/NAME.console, plugin
# lines to runs/NAME.plugin. ICOUNT_SLEEP=on lets virtual time run on in real
# time while every CPU idles (a disk wait) instead of jumping to the next
# timer, which would make every wait look as long as its timeout.
run() {
    local name="$1" pargs="$2"
    shift 2
    local console="$RUNS/$name.console" lines="$RUNS/$name.plugin"
    rm -f "$console" "$lines"
    local plug="$PLUGIN,out=$lines"
    [ -n "$pargs" ] && plug+=",$pargs"
    ((profile)) && plug+=",profile=1000000"
    local cmd=(qemu-system-aarch64 "$@" -nographic -no-reboot
        -icount "shift=0,sleep=${ICOUNT_SLEEP:-off}" -plugin "$plug")
    echo "bench: $name: ${cmd[*]}"
    local rc=0
    timeout "$RUN_TIMEOUT" "${cmd[@]}" </dev/null >"$console" 2>&1 || rc=$?
    if ((rc)); then
        echo "bench: $name: QEMU exited with $rc; last console lines:" >&2
        tail -n 20 "$console" >&2
    fi
}

run hvc "" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" -initrd "$BENCH/hvc.cpio" "${hyp_append[@]}"
run virq "" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" -initrd "$BENCH/virq.cpio" "${hyp_append[@]}"
# The interrupt path alone, for its instruction-by-instruction profile.
if ((profile)); then
    run virq-irq "" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" \
        -initrd "$BENCH/virq-irq.cpio" "${hyp_append[@]}"
fi
run evtchn-pingpong "" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" -initrd "$BENCH/evtchn.cpio" "${hyp_append[@]}"
run evtchn-pingpong-2cpu "" "${HYP_MACHINE_2CPU[@]}" -kernel "$IMAGES/hyp.bin" \
    -initrd "$BENCH/evtchn.cpio" "${hyp_append[@]}"
run domain-switch "" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" -initrd "$BENCH/yield.cpio" "${hyp_append[@]}"
# ring-roundtrip, grant-map-unmap and grant-copy-4k: one run, three regions.
run grant "" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" -initrd "$BENCH/grant.cpio" "${hyp_append[@]}"
# blk-read-4k: dom0 reads the scratch disk directly (dom0.blk-bench), then
# bench-blk reads the same blocks through dom0's block back end. Guest time
# with disk waits in real time: the figure varies with the host's load.
blk_disk="$BENCH/blk-disk.img"
rm -f "$blk_disk"
truncate -s 8M "$blk_disk"
ICOUNT_SLEEP=on run blk "" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" -initrd "$BENCH/blk.cpio" \
    -append "$hyp_bootargs -- dom0.blk-bench=$blk_iters" \
    -drive "file=$blk_disk,if=none,format=raw,id=d0" -device virtio-blk-device,drive=d0
# net-pingpong: frames between two domUs through netback and the bridge.
run net-pingpong "" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" -initrd "$BENCH/net.cpio" "${hyp_append[@]}"
run cpu-domu "" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" -initrd "$BENCH/cpu.cpio" "${hyp_append[@]}"
run cpu-bare "" "${BARE_MACHINE[@]}" -kernel "$OUT/bench-bare"
# Boot: from the first instruction to the return from dom0's first hypercall,
# which is the console write of its banner "dom0: tern dom0".
run boot "from=reset,until_lower_after=1" "${HYP_MACHINE[@]}" -kernel "$IMAGES/hyp.bin" \
    -initrd "$IMAGES/bundle.cpio"

report=(python3 tools/qemu-plugin/bench_report.py --runs "$RUNS"
    --hyp-bin "$IMAGES/hyp.bin" --hyp-elf "$IMAGES/hyp.elf"
    --json "$BENCH/results.json" --svg "$BENCH/results.svg"
    --qemu "$(qemu-system-aarch64 --version | head -n 1 | sed 's/ (.*//')"
    --date "$(date -u +%Y-%m-%d)" --mode "$mode")
((profile)) && report+=(--profile --objdump "$objdump" --addr2line "$addr2line")
echo
"${report[@]}"

if ((pmu)); then
    echo
    echo "cycles (PMCCNTR_EL0 at the markers; under QEMU these are not a Cortex-A72's):"
    found=0
    for f in "$RUNS"/*.console; do
        while IFS= read -r line; do
            printf '  %-22s %s\n' "$(basename "$f" .console)" "$line"
            found=1
        done < <(grep -o "bench-[a-z]*: .*cycles/iter=[0-9]*" "$f")
    done
    ((found)) || { echo "bench: --pmu but no guest printed cycles" >&2; exit 1; }
fi

# One card per bundle: the hypervisor's command line lets guests read the
# cycle counter. blk.cpio is left out: its disk is QEMU's virtio-blk, and its
# configuration names vda, which a Pi does not have.
if ((sdcards)); then
    for b in hvc virq evtchn yield grant net cpu; do
        scripts/mksdcard.sh --bundle "$BENCH/$b.cpio" --cmdline "$hyp_bootargs" \
            --out "$BENCH/sdcard-$b.img" | sed -n 1p
    done
fi
