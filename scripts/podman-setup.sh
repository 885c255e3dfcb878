#!/bin/sh
# Everything `make images` needs on a fresh Debian machine without a Docker engine or a registry for base images:
# podman with runc, a containers.conf this sandbox accepts, podman-compose, and a Debian base image with Python
# made by debootstrap from the mirror apt uses. Idempotent: each step is skipped when its result is there.
# $1: the containers.conf to write; $2: the base image's name; $3: the Python whose pip installs podman-compose.
set -eu
conf=$1 base=$2 python=$3

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap
fi
"$python" -m pip install --quiet 'podman-compose>=1.3,<2'

# The sandbox forbids raising rlimits, which podman does by default; crun refuses its hybrid cgroups (runc is used).
mkdir -p "$(dirname "$conf")"
printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >"$conf"
export CONTAINERS_CONF="$conf"

# A base from a registry (the Containerfile's default) is pulled by the build; a localhost/ one is made here.
if [ "${base#localhost/}" != "$base" ] && ! podman image exists "$base"; then
    # The Debian mirror apt uses here (deb822 or one-line sources), else Debian's own.
    mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p; s/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\/debian\) .*/\2/p' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)
    root=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" \
        "${mirror:-http://deb.debian.org/debian}"
    # The downloaded packages and apt's lists are half the tree; a build that needs apt runs apt-get update.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | podman import - "$base"
    rm -rf "$root"
fi
