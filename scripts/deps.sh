#!/usr/bin/env bash
# deps.sh — install what berth's build and tests need on Debian bookworm.
# Idempotent and quiet: when everything is present it only checks (well
# under a second). Needs root only when an apt package is missing.
#
#   apt: busybox-static (test images), runc (reference runtime for tests),
#        iproute2 (network tests), hyperfine (benchmarks)
#   go:  the toolchain in /usr/local/go (not packaged by Debian at this
#        version) and the modules listed in go.mod
# Extra apt packages can be asked for with BERTH_DEPS_EXTRA="pkg1 pkg2".
set -euo pipefail
cd "$(dirname "$0")/.."

# docker-registry: the distribution 2.8 reference registry the registry
# client and push/pull tests run against; podman (installed with its
# recommends: conmon, netavark) runs containers on berth's runtime in a test;
# git: the builder clones ADD's git sources with it; binutils: a test
# reassembles the runtime's user-namespace helper from its source with as;
# iputils-ping: moby's TestStatsNetworkStats pings a container from the host.
packages=(busybox-static runc iproute2 hyperfine docker-registry podman git binutils iputils-ping ${BERTH_DEPS_EXTRA:-})

# dpkg-query prints one "ii name" line per installed package; anything else
# (not installed, half-configured, unknown) counts as missing.
installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${packages[@]}" 2>/dev/null | awk '$1 == "ii" {print $2}' || true)
missing=()
for p in "${packages[@]}"; do
	grep -qx -- "$p" <<<"$installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing apt packages: ${missing[*]} (run as root: $0)" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	plain=()
	for p in "${missing[@]}"; do
		[ "$p" = podman ] || plain+=("$p")
	done
	if [ ${#plain[@]} -gt 0 ]; then
		apt-get install -y -qq --no-install-recommends "${plain[@]}" >/dev/null
	fi
	if [[ " ${missing[*]} " == *" podman "* ]]; then
		apt-get install -y -qq podman >/dev/null
	fi
fi

export PATH=/usr/local/go/bin:$PATH
if ! command -v go >/dev/null; then
	echo "deps: no Go toolchain; install Go $(awk '$1 == "go" {print $2}' go.mod) in /usr/local/go (https://go.dev/dl/)" >&2
	exit 1
fi
# A cached module set makes this a no-op; an older toolchain fetches the
# version go.mod asks for through the module proxy (GOTOOLCHAIN=auto).
GOFLAGS=-mod=mod go mod download
