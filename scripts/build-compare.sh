#!/usr/bin/env bash
# build-compare.sh — build the builder corpus (internal/build/testdata/*)
# with docker's classic builder and with berth, and print a field-by-field
# difference report (image config, merged file tree, failures).
#
#   docker side: the docker CLI (DOCKER_BUILDKIT=0) -> a private dockerd
#                (bench/compare-daemons.sh's bench_docker_start)
#   berth side:  CLIENT=docker (default): the same docker CLI -> a private
#                berth daemon, so only the daemons differ;
#                CLIENT=berth: berth's own CLI (its context tarring too)
#
# Both daemons load busybox from the local fixtures (scripts/mkfixtures).
# Each successful image is saved (`docker save`) and its layers are applied
# in order by scripts/buildcompare, which compares Env, Cmd, Entrypoint,
# WorkingDir, User, Labels, ExposedPorts, Volumes, Healthcheck, StopSignal,
# Shell, OnBuild and every path's type, mode, owner, size and link target.
# Cases the classic builder rejects as BuildKit-only are reported as
# "docker classic: unsupported", not as differences.
#
#   CASES="workdir multistage" scripts/build-compare.sh   only these cases
#   OUT=/tmp/x scripts/build-compare.sh                    keep results there
#   BERTH=/path/to/berth scripts/build-compare.sh          that build (default: go build)
# Exit status: 0 when no case differs, 1 otherwise. Needs root and dockerd.
# Everything it starts (both daemons, the keeper, bridges, the nft table,
# mounts) is stopped by PID and removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=-mod=mod CGO_ENABLED=0
export BENCH_ROOT=${BENCH_ROOT:-/tmp/build-compare-docker}
export BENCH_BRIDGE=${BENCH_BRIDGE:-bcmp-d0}
export BENCH_BRIDGE_CIDR=${BENCH_BRIDGE_CIDR:-10.231.0.1/24}
export BENCH_FIXTURES=${BENCH_FIXTURES:-/tmp/build-compare-fixtures}
source bench/compare-daemons.sh
source bench/lib-berth.sh
B=${B:-/tmp/build-compare-berth}
BERTH_BRIDGE=${BERTH_BRIDGE:-bcmp-b0}
BERTH_SUBNET=${BERTH_SUBNET:-10.231.1.0/24}
OUT=${OUT:-$B/results}
CLIENT=${CLIENT:-docker}
DOCKER=$BENCH_DOCKER_CLI
[ "$(id -u)" = 0 ] || { echo "build-compare needs root" >&2; exit 1; }
command -v dockerd >/dev/null || { echo "dockerd is not installed (apt-get install docker.io): nothing to compare" >&2; exit 0; }

cleanup() {
	set +e
	berth_daemon_stop
	bench_docker_stop
	grep -q " $B/" /proc/self/mounts || rm -rf "$B/data" "$B/exec"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$B" "$OUT"
if [ -z "${BERTH:-}" ]; then
	go build -o "$B/berth" ./cmd/berth
	BERTH=$B/berth
fi
go build -o "$B/buildcompare" ./scripts/buildcompare
bench_fixtures >/dev/null
berth_daemon_start
bench_docker_start
bench_docker load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
"$DOCKER" -H "unix://$B/berth.sock" load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null

# build_case SIDE CASE: build one case and leave in $OUT/SIDE/CASE either
# image.tar or err.txt, and code (the client's exit status), out.txt.
build_case() {
	local side=$1 name=$2 ctx=$OUT/ctx/$2 dir=$OUT/$1/$2 args=() kind rest tag host cli
	rm -rf "$dir"
	mkdir -p "$dir"
	if [ -f "internal/build/testdata/$name/options" ]; then
		while read -r kind rest; do
			case $kind in
			arg) args+=(--build-arg "$rest") ;;
			label) args+=(--label "$rest") ;;
			target) args+=(--target "$rest") ;;
			esac
		done <"internal/build/testdata/$name/options"
	fi
	tag=compare/$name:latest
	if [ "$side" = docker ]; then
		host=$BENCH_DOCKER_SOCK cli=$DOCKER
	else
		host=unix://$B/berth.sock cli=$DOCKER
		[ "$CLIENT" = berth ] && cli=$BERTH
	fi
	local code=0
	DOCKER_BUILDKIT=0 "$cli" -H "$host" build --no-cache ${args[@]+"${args[@]}"} -t "$tag" "$ctx" \
		>"$dir/out.txt" 2>"$dir/err.txt" || code=$?
	echo "$code" >"$dir/code"
	if [ "$code" = 0 ]; then
		"$DOCKER" -H "$host" save -o "$dir/image.tar" "$tag"
		"$DOCKER" -H "$host" rmi -f "$tag" >/dev/null
	fi
}

cases=${CASES:-$(ls internal/build/testdata)}
for name in $cases; do
	[ -f "internal/build/testdata/$name/Dockerfile" ] || continue
	# The case directory is the context, without the test's own files.
	rm -rf "$OUT/ctx/$name"
	mkdir -p "$OUT/ctx"
	cp -a "internal/build/testdata/$name" "$OUT/ctx/$name"
	rm -f "$OUT/ctx/$name/want.txt" "$OUT/ctx/$name/options"
	build_case docker "$name"
	build_case berth "$name"
done
"$B/buildcompare" -docker "$OUT/docker" -berth "$OUT/berth" $cases | tee "$OUT/report.txt"
