#!/usr/bin/env bash
# The whole check, as CI runs it: format, lints (host and aarch64), host unit
# tests, image build, QEMU integration tests. Stops at the first failure and
# prints a summary with timings.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Crates checked for the board, each with its target: the hypervisor is
# soft-float (it never touches a guest's FP/SIMD registers); dom0, the SDK
# and guests use the FP-enabled target.
HYP_CRATES=(hyp tern-abi)
GUEST_CRATES=(tern-abi pv-guest-sdk dom0 demo-guest test-guests bench-guests)

names=() times=()
summary() {
    local rc=$? i
    echo
    echo "==== test.sh summary ===="
    for i in "${!names[@]}"; do
        printf '  %-28s %s\n' "${names[$i]}" "${times[$i]}"
    done
    if ((rc)); then
        echo "  FAILED at: ${current:-setup}"
    else
        echo "  all steps passed"
    fi
}
trap summary EXIT

step() {
    current="$1"
    shift
    echo
    echo "==== $current: $* ===="
    local t0=$SECONDS
    "$@"
    names+=("$current") times+=("ok  $((SECONDS - t0)) s")
}

hyp_args=() guest_args=() host_args=(--workspace)
for c in "${HYP_CRATES[@]}"; do hyp_args+=(-p "$c"); done
for c in "${GUEST_CRATES[@]}"; do guest_args+=(-p "$c"); done

step deps scripts/deps.sh
step fmt cargo fmt --all --check
step clippy-host cargo clippy "${host_args[@]}" --all-targets -- -D warnings
step clippy-hyp cargo clippy --target aarch64-unknown-none-softfloat "${hyp_args[@]}" -- -D warnings
step clippy-guests cargo clippy --target aarch64-unknown-none "${guest_args[@]}" -- -D warnings
# tern-tests' integration tests need the images: only its own unit tests here.
step unit-tests cargo test "${host_args[@]}" --exclude tern-tests
step harness-tests cargo test -p tern-tests --lib
step build scripts/build.sh
# The Raspberry Pi 4 SD card, checked by tests/tests/rpi4.rs in qemu-tests.
step sdcard scripts/mksdcard.sh
step qemu-tests cargo test -p tern-tests --test '*' -- --test-threads=2
# Every benchmark once, briefly: fails only if one does not complete or does
# not print its figures, never on the figures themselves.
step bench scripts/bench.sh --short
current=""
