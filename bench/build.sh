#!/usr/bin/env bash
# build.sh — berth's builder vs docker's classic builder, side by side in one
# run (issue: builder).
#
#   ten     a 10-step Dockerfile on busybox (3 RUN, 2 COPY, 5 metadata steps)
#   multi   three stages: two independent builder stages and a final one
#           copying from both
#   ctx50   a 50 MB context (500 files of 100 KB): ctx50-send only sends it
#           (LABEL), ctx50-copy sends it and COPYs it into the image
# each built cold (--no-cache) and, for ten and multi, rebuilt with every
# step a cache hit. Clients: berth CLI -> berth, docker CLI -> berth (the
# legacy POST /build path), docker CLI (DOCKER_BUILDKIT=0) -> a private
# dockerd 20.10. BuildKit is measured only when the docker CLI has the buildx
# plugin (docker CLI 28 builds with BuildKit only through buildx).
#
# Medians from hyperfine (N runs, default 5). Goals (issue 5): cache-hit
# rebuild <= 1/3 of docker's time; cold build faster than docker's; the
# 50 MB context <= 0.5 s. BERTH=/path/to/berth measures another build.
# A short run: SETS="ten-cached ctx50-send" (default: all six sets) and
# DOCKER_SIDE=0 (berth only; ratios are then to the berth CLI's time).
# Everything started here (both daemons, the keeper, bridges, the nft table,
# mounts, the contexts) is stopped by PID and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_ROOT=${BENCH_ROOT:-/tmp/bench-build-docker}
export BENCH_BRIDGE=${BENCH_BRIDGE:-bbld-d0}
export BENCH_BRIDGE_CIDR=${BENCH_BRIDGE_CIDR:-10.232.0.1/24}
source bench/compare-daemons.sh
source bench/lib-berth.sh
N=${N:-5}
B=${B:-/tmp/bench-build-berth}
BERTH_BRIDGE=${BERTH_BRIDGE:-bbld-b0}
BERTH_SUBNET=${BERTH_SUBNET:-10.232.1.0/24}
OUT=${OUT:-$B/results}
BERTH=${BERTH:-$PWD/bin/berth}
DOCKER=$BENCH_DOCKER_CLI
[ "$(id -u)" = 0 ] || { echo "build bench needs root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "build bench needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
[ -x "$BERTH" ] || { echo "no $BERTH: run make build first" >&2; exit 1; }
SETS=${SETS:-ten-cold ten-cached multi-cold multi-cached ctx50-send ctx50-copy}
have_docker=0; command -v dockerd >/dev/null && have_docker=1
[ $have_docker = 1 ] || echo "note: dockerd not installed, docker columns skipped (apt-get install docker.io)"
[ "${DOCKER_SIDE:-1}" = 0 ] && have_docker=0
have_buildkit=0
if [ $have_docker = 1 ] && "$DOCKER" buildx version >/dev/null 2>&1; then have_buildkit=1; fi

cleanup() {
	set +e
	berth_daemon_stop
	[ $have_docker = 1 ] && bench_docker_stop
	grep -q " $B/" /proc/self/mounts || rm -rf "$B/data" "$B/exec" "$B/ctx"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$B" "$OUT"
: >"$OUT/summary.md"
note() { echo "$*"; echo "$*" >>"$OUT/summary.md"; }

# The contexts.
C=$B/ctx
rm -rf "$C"
mkdir -p "$C/ten" "$C/multi" "$C/ctx50/files"
echo "first file" >"$C/ten/a.txt"
echo "second file" >"$C/ten/b.txt"
cat >"$C/ten/Dockerfile" <<'EOF'
FROM busybox
ENV APP=/app MODE=bench
WORKDIR /app
COPY a.txt ./
RUN echo one > one.txt
COPY b.txt ./
RUN cat a.txt b.txt > both.txt
RUN mkdir -p /data && echo "$MODE" > /data/mode
LABEL bench=ten
EXPOSE 8080
CMD ["cat", "/app/both.txt"]
EOF
cat >"$C/multi/Dockerfile" <<'EOF'
FROM busybox AS one
RUN echo one > /one && sleep 0.1
FROM busybox AS two
WORKDIR /w
RUN echo two > /w/two && sleep 0.1
FROM busybox
COPY --from=one /one /out/one
COPY --from=two /w/two /out/two
CMD ["cat", "/out/one", "/out/two"]
EOF
head -c $((500 * 100 * 1024)) /dev/urandom | split -b $((100 * 1024)) -d -a 3 - "$C/ctx50/files/f"
printf 'FROM busybox\nCOPY files /data/\n' >"$C/ctx50/Dockerfile"
# The same 50 MB context, not copied: the context transfer alone.
mkdir -p "$C/ctx50-send"
cp -al "$C/ctx50/files" "$C/ctx50-send/files"
printf 'FROM busybox\nLABEL sent=50MB\n' >"$C/ctx50-send/Dockerfile"

bench_fixtures >/dev/null
berth_daemon_start
"$BERTH" -H "unix://$B/berth.sock" load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
if [ $have_docker = 1 ]; then
	bench_docker_start
	bench_docker load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
fi

note "# build bench $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
note ""
if [ $have_docker = 1 ] && [ $have_buildkit = 0 ]; then
	note "BuildKit: not measured — the docker CLI has no buildx plugin, and docker CLI 28 builds with BuildKit only through buildx."
	note ""
fi

# bench NAME CTX BUILD-ARGS: one hyperfine set over every client.
bench() {
	local name=$1 ctx=$C/$2 args=$3 cmds
	cmds=(-n "berth CLI -> berth" "$BERTH -H unix://$B/berth.sock build -q $args -t bench/$2 $ctx"
	      -n "docker CLI -> berth" "env DOCKER_BUILDKIT=0 $DOCKER -H unix://$B/berth.sock build -q $args -t bench/$2 $ctx")
	[ $have_buildkit = 1 ] && cmds+=(-n "docker CLI -> dockerd (BuildKit)" "env DOCKER_BUILDKIT=1 $DOCKER -H $BENCH_DOCKER_SOCK build -q $args -t bench/$2-bk $ctx")
	[ $have_docker = 1 ] && cmds+=(-n "docker CLI -> dockerd (classic)" "env DOCKER_BUILDKIT=0 $DOCKER -H $BENCH_DOCKER_SOCK build -q $args -t bench/$2 $ctx")
	hyperfine -N --runs "$N" --warmup 1 --export-json "$OUT/$name.json" "${cmds[@]}" >/dev/null
	if [ $have_docker = 1 ]; then
		berth_summarize "$name" -1 "docker classic"
	else
		berth_summarize "$name" 1 "berth CLI"
	fi
}

for set in $SETS; do
	case $set in
	ten-cold) bench ten-cold ten --no-cache ;;
	ten-cached) bench ten-cached ten "" ;;
	multi-cold) bench multi-cold multi --no-cache ;;
	multi-cached) bench multi-cached multi "" ;;
	ctx50-send) bench ctx50-send ctx50-send --no-cache ;;
	ctx50-copy) bench ctx50-copy ctx50 --no-cache ;;
	*) echo "unknown set $set (SETS: ten-cold ten-cached multi-cold multi-cached ctx50-send ctx50-copy)" >&2; exit 2 ;;
	esac
done

note "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
