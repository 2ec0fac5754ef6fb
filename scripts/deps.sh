#!/usr/bin/env bash
# Installs what building and testing tern needs, on Debian or Ubuntu:
#   - qemu-system-aarch64 >= 9 (from bookworm-backports on Debian 12)
#   - mke2fs (e2fsprogs), for the guest library's ext4 image
#   - the Rust targets aarch64-unknown-none(-softfloat) and rustfmt/clippy
# Idempotent, and silent when everything is already there. Can be run or sourced.

# Run in a subshell so that sourcing does not leak `set -e` or variables.
tern_deps() (
    set -euo pipefail
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "deps: need root or sudo to install packages" >&2; return 1; }
        sudo=(sudo)
    fi

    qemu_major() {
        command -v qemu-system-aarch64 >/dev/null || { echo 0; return; }
        qemu-system-aarch64 --version | sed -n '1s/.*version \([0-9]*\)\..*/\1/p'
    }

    # Prints the Debian mirror already configured for the release suite, so the
    # backports entry uses the same one as the rest of the machine.
    debian_mirror() {
        local f
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -e "$f" ] || continue
            awk -v s="$1" '
                /^[ \t]*$/ { if (ok && uri) exit; ok = 0; uri = "" }
                /^URIs:/ { uri = $2 }
                /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
                END { if (ok && uri) print uri }' "$f" | head -n1
        done | head -n1
        grep -hsE "^deb[[:space:]]+[^ ]+[[:space:]]+$1[[:space:]]" /etc/apt/sources.list \
            /etc/apt/sources.list.d/*.list | awk '{ print $2 }' | head -n1
    }

    if [ "$(qemu_major)" -lt 9 ]; then
        command -v apt-get >/dev/null || {
            echo "deps: QEMU >= 9 (qemu-system-aarch64) is needed; install it with your package manager" >&2
            return 1
        }
        . /etc/os-release
        local target=()
        if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
            # Debian 12 ships QEMU 7.2; backports has a recent one.
            if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
                local mirror
                mirror="$(debian_mirror bookworm | head -n1)"
                [ -n "$mirror" ] || { echo "deps: no Debian mirror for bookworm found in /etc/apt" >&2; return 1; }
                echo "deps: adding bookworm-backports ($mirror)"
                printf '%s\n' "Types: deb" "URIs: $mirror" "Suites: bookworm-backports" \
                    "Components: main non-free-firmware" \
                    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
                    "${sudo[@]}" tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
            fi
            target=(-t bookworm-backports)
        fi
        echo "deps: installing qemu-system-arm ${target[*]}"
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${target[@]}" qemu-system-arm >/dev/null
        if [ "$(qemu_major)" -lt 9 ]; then
            echo "deps: QEMU >= 9 needed, found: $(qemu-system-aarch64 --version | head -n1)" >&2
            return 1
        fi
    fi

    # mke2fs (e2fsprogs) makes the guest library's ext4 image (scripts/build.sh)
    # and the images dom0's filesystem host tests read.
    if ! PATH="$PATH:/sbin:/usr/sbin" command -v mke2fs >/dev/null; then
        command -v apt-get >/dev/null || {
            echo "deps: mke2fs (e2fsprogs) is needed; install it with your package manager" >&2
            return 1
        }
        echo "deps: installing e2fsprogs"
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq e2fsprogs >/dev/null
    fi

    if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
        echo "deps: cargo and rustup are needed: install rustup (Debian 13+/Ubuntu 24.04+: apt install rustup; otherwise see rustup.rs) and re-run" >&2
        return 1
    fi
    cd "$root"
    # rust-toolchain.toml names the channel, components and target; rustup
    # installs whatever of them is missing when the toolchain is first used.
    local t
    for t in aarch64-unknown-none aarch64-unknown-none-softfloat; do
        if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
            echo "deps: rustup target add $t"
            rustup target add "$t" >/dev/null
        fi
    done
    local c
    for c in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
            echo "deps: rustup component add $c"
            rustup component add "$c" >/dev/null
        fi
    done
)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    tern_deps
fi
