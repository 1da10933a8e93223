#!/usr/bin/env bash
# compare-daemons.sh — reference timings from docker and podman on this machine.
#
# Sourced, it only defines helpers for other bench scripts:
#   bench_docker_start        start a private dockerd (own data root, exec root,
#                             socket, pidfile, cgroup parent and bridge), wait for it
#   bench_docker_stop         stop it by PID and remove its bridge and mounts
#   bench_docker ARGS...      the docker CLI against it
#   bench_podman ARGS...      podman with a private root/runroot
#   bench_podman_clean        remove podman's private storage
#   bench_fixtures            write busybox.tar/hello.tar (scripts/mkfixtures)
# Run, it measures `run --rm busybox true` with both, 10 runs each (hyperfine).
#
# The private dockerd never touches the host's docker: it gets its own bridge
# (bench-docker0, 10.213.0.1/24) instead of docker0, and --iptables=false.
# Never use --bridge=none here: it deletes the host's docker0.
# BENCH_DOCKER_EXTRA_ARGS is appended to dockerd's flags (the last value of a
# flag wins): bench/network.sh passes --userland-proxy=true.
# Needs root and Debian's docker.io and podman (apt-get install docker.io podman).

BENCH_ROOT=${BENCH_ROOT:-/tmp/bench-docker}
BENCH_DOCKER_SOCK=unix://$BENCH_ROOT/docker.sock
BENCH_BRIDGE=${BENCH_BRIDGE:-bench-docker0}
BENCH_BRIDGE_CIDR=${BENCH_BRIDGE_CIDR:-10.213.0.1/24}
BENCH_PODMAN_ROOT=${BENCH_PODMAN_ROOT:-/tmp/bench-podman}
BENCH_FIXTURES=${BENCH_FIXTURES:-/tmp/bench-fixtures}
# /usr/local/bin/docker (CLI 28.x) must win over Debian's /usr/bin/docker (20.10).
if [ -z "${BENCH_DOCKER_CLI:-}" ]; then
	BENCH_DOCKER_CLI=/usr/local/bin/docker
	[ -x "$BENCH_DOCKER_CLI" ] || BENCH_DOCKER_CLI=$(command -v docker || echo docker)
fi

bench_docker() { "$BENCH_DOCKER_CLI" -H "$BENCH_DOCKER_SOCK" "$@"; }

bench_docker_start() {
	mkdir -p "$BENCH_ROOT"
	if [ -f "$BENCH_ROOT/docker.pid" ] && kill -0 "$(cat "$BENCH_ROOT/docker.pid")" 2>/dev/null; then
		echo "bench dockerd already running (pid $(cat "$BENCH_ROOT/docker.pid"))" >&2
		return 0
	fi
	if ! ip link show "$BENCH_BRIDGE" >/dev/null 2>&1; then
		ip link add "$BENCH_BRIDGE" type bridge
		ip addr add "$BENCH_BRIDGE_CIDR" dev "$BENCH_BRIDGE"
		ip link set "$BENCH_BRIDGE" up
	fi
	# dockerd starts its own containerd under --exec-root/--data-root.
	dockerd \
		--data-root "$BENCH_ROOT/data" \
		--exec-root "$BENCH_ROOT/exec" \
		-H "$BENCH_DOCKER_SOCK" \
		--pidfile "$BENCH_ROOT/docker.pid" \
		--bridge "$BENCH_BRIDGE" \
		--iptables=false \
		--cgroup-parent bench-docker \
		--userland-proxy=false \
		--group root \
		${BENCH_DOCKER_EXTRA_ARGS:-} \
		>"$BENCH_ROOT/dockerd.log" 2>&1 </dev/null &
	local pid=$! i
	for i in $(seq 1 150); do
		if bench_docker version >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "bench dockerd exited; log follows" >&2
			tail -20 "$BENCH_ROOT/dockerd.log" >&2
			return 1
		fi
		sleep 0.2
	done
	echo "bench dockerd did not answer within 30 s; see $BENCH_ROOT/dockerd.log" >&2
	return 1
}

bench_docker_stop() {
	local pidfile=$BENCH_ROOT/docker.pid pid i
	if [ -f "$pidfile" ]; then
		pid=$(cat "$pidfile")
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "bench dockerd $pid ignored SIGTERM for 20 s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	# Whatever dockerd left mounted under its roots (overlay, netns, shm).
	bench_umount_under "$BENCH_ROOT/"
	if ip link show "$BENCH_BRIDGE" >/dev/null 2>&1; then
		ip link del "$BENCH_BRIDGE" || true
	fi
	bench_rmdir_cgroup bench-docker
	# Remove the private roots only once nothing is mounted below them.
	if ! grep -q " $BENCH_ROOT/" /proc/self/mounts; then
		rm -rf "$BENCH_ROOT/data" "$BENCH_ROOT/exec"
	fi
}

# bench_umount_under PREFIX: lazily unmount every mount point below PREFIX,
# deepest first. Cleanup helpers must not fail: they run from EXIT traps
# under set -e.
bench_umount_under() {
	local m
	{ grep -oE " $1[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
}

# bench_rmdir_cgroup NAME: remove an (empty) cgroup NAME left in any v1
# hierarchy or the unified one.
bench_rmdir_cgroup() {
	local d
	for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
		if [ -d "$d" ]; then
			find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		fi
	done
}

# podman raises RLIMIT_NOFILE and RLIMIT_NPROC in every container by default;
# root here lacks CAP_SYS_RESOURCE, so runc fails with EPERM ("error setting
# rlimit type 6/7"). Ask for limits below what its runc inherits (measured:
# nproc 30000 works, 40000 does not, whatever `ulimit -Hu` says). docker does
# not set rlimits by default, so it needs nothing of the kind.
BENCH_PODMAN_ULIMITS="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"

# podman picks crun when it is installed, and crun refuses this host's hybrid
# cgroup layout ("cgroups in hybrid mode not supported"): pin runc, which
# docker uses too.
BENCH_PODMAN_RUNTIME=${BENCH_PODMAN_RUNTIME:-runc}
BENCH_PODMAN_GLOBAL="--root $BENCH_PODMAN_ROOT/root --runroot $BENCH_PODMAN_ROOT/run --runtime $BENCH_PODMAN_RUNTIME --cgroup-manager cgroupfs --events-backend file"

bench_podman() {
	podman $BENCH_PODMAN_GLOBAL "$@"
}

bench_podman_clean() {
	# Not `podman system reset`: it also resets host-wide network config.
	# `podman rm` leaves cleanup processes behind (`podman ... container
	# cleanup`, run by conmon) that mount the storage again: wait for them.
	local i
	for i in $(seq 1 50); do
		pgrep -f -- "--root $BENCH_PODMAN_ROOT/root" >/dev/null || break
		sleep 0.1
	done
	for i in 1 2 3 4 5; do
		bench_umount_under "$BENCH_PODMAN_ROOT/"
		grep -q " $BENCH_PODMAN_ROOT/" /proc/self/mounts || break
		sleep 0.2
	done
	bench_rmdir_cgroup libpod_parent
	if ! grep -q " $BENCH_PODMAN_ROOT/" /proc/self/mounts; then
		rm -rf "$BENCH_PODMAN_ROOT"
	fi
}

bench_fixtures() {
	local repo
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	local out
	if ! out=$(cd "$repo" && GOFLAGS=-mod=mod go run ./scripts/mkfixtures -o "$BENCH_FIXTURES" 2>&1); then
		echo "$out" >&2
		return 1
	fi
}

bench_compare_main() {
	set -euo pipefail
	if [ "$(id -u)" != 0 ]; then
		echo "compare-daemons: needs root" >&2
		exit 1
	fi
	local missing=""
	for tool in dockerd podman hyperfine; do
		command -v "$tool" >/dev/null || missing="$missing $tool"
	done
	if [ -n "$missing" ]; then
		echo "compare-daemons: skipped, missing:$missing (apt-get install docker.io podman hyperfine)" >&2
		exit 0
	fi
	bench_fixtures
	trap 'bench_docker_stop; bench_podman_clean' EXIT
	bench_docker_start
	bench_docker load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
	bench_docker run --rm busybox true
	bench_podman load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
	bench_podman run --rm --network none $BENCH_PODMAN_ULIMITS busybox true

	local docker_run podman_run
	docker_run="$BENCH_DOCKER_CLI -H $BENCH_DOCKER_SOCK run --rm busybox true"
	podman_run="podman $BENCH_PODMAN_GLOBAL run --rm --network none $BENCH_PODMAN_ULIMITS busybox true"
	hyperfine --runs 10 --warmup 1 --export-markdown "$BENCH_ROOT/compare.md" \
		-n "docker run --rm busybox true" "$docker_run" \
		-n "docker run --rm --network none busybox true" "${docker_run/--rm/--rm --network none}" \
		-n "podman run --rm --network none busybox true" "$podman_run"
}

# Run only when executed, not when sourced.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	bench_compare_main "$@"
fi
