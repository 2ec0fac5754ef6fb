#!/usr/bin/env bash
# The whole check, as CI runs it: format, lints (host and aarch64), host unit
# tests, image build, QEMU integration tests. Stops at the first failure and
# prints a summary with timings.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# aarch64-only crates, checked with --target in their own step. Add a crate
# here once it builds for aarch64-unknown-none.
AARCH64_CRATES=(hyp tern-abi pv-guest-sdk)
# Still placeholders (no panic handler yet): dom0 demo-guest

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

# Crates that are binaries for aarch64-unknown-none only: skipped on the host.
HOST_EXCLUDE=(dom0 demo-guest)

aarch64_args=() host_args=(--workspace)
for c in "${AARCH64_CRATES[@]}"; do aarch64_args+=(-p "$c"); done
for c in "${HOST_EXCLUDE[@]}"; do host_args+=(--exclude "$c"); done

step deps scripts/deps.sh
step fmt cargo fmt --all --check
step clippy-host cargo clippy "${host_args[@]}" --all-targets -- -D warnings
step clippy-aarch64 cargo clippy --target aarch64-unknown-none "${aarch64_args[@]}" -- -D warnings
# tern-tests' integration tests need the images: only its own unit tests here.
step unit-tests cargo test "${host_args[@]}" --exclude tern-tests
step harness-tests cargo test -p tern-tests --lib
step build scripts/build.sh
step qemu-tests cargo test -p tern-tests --test '*' -- --test-threads=2
current=""
