#!/usr/bin/env bash
# engine.sh — berth vs docker vs podman, side by side in one run (issue: engine).
#
#   run --rm busybox true / echo hello     berth CLI, docker CLI -> berth, docker -> dockerd, podman
#   exec <idle container> true             the same clients
#   20 containers started in parallel      wall time until all 20 run
#   engine-side memory per idle container  keeper RSS/PSS growth vs containerd-shim / conmon
#
# Medians from hyperfine (N runs, default 20; N=30 bash bench/engine.sh).
# BERTH=/path/to/berth measures another build (the docker CLI -> berth rows
# then talk to that build's daemon).
# The docker and podman parts are skipped with a note when dockerd or podman
# is missing. Everything the script starts — the private berth daemon and its
# keeper, the private dockerd (bench/compare-daemons.sh), podman's private
# storage, their containers, mounts and cgroups — is removed on exit, also on
# failure. Results: $OUT/*.json (hyperfine) and $OUT/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/compare-daemons.sh
source bench/lib-berth.sh
N=${N:-20}
B=/tmp/bench-berth
BERTH_BRIDGE=${BERTH_BRIDGE:-beng-b0}
BERTH_SUBNET=${BERTH_SUBNET:-10.236.4.0/24}
OUT=${OUT:-$B/results}
BERTH=${BERTH:-$PWD/bin/berth} # BERTH=/path/to/other/build compares builds
DOCKER=$BENCH_DOCKER_CLI
[ "$(id -u)" = 0 ] || { echo "engine bench needs root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "engine bench needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
[ -x "$BERTH" ] || { echo "no $BERTH: run make build first" >&2; exit 1; }

have_docker=0; command -v dockerd >/dev/null && have_docker=1
have_podman=0; command -v podman >/dev/null && have_podman=1
[ $have_docker = 1 ] || echo "note: dockerd not installed, docker columns skipped (apt-get install docker.io)"
[ $have_podman = 1 ] || echo "note: podman not installed, podman columns skipped (apt-get install podman)"

cleanup() {
	set +e
	berth_daemon_stop
	if [ $have_docker = 1 ]; then
		bench_docker ps -aq 2>/dev/null | xargs -r "$DOCKER" -H "$BENCH_DOCKER_SOCK" rm -f >/dev/null 2>&1
		bench_docker_stop
	fi
	if [ $have_podman = 1 ]; then
		bench_podman rm -af >/dev/null 2>&1
		bench_podman_clean
	fi
	grep -q " $B/" /proc/self/mounts || rm -rf "$B/data" "$B/exec"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$B" "$OUT"
: >"$OUT/summary.md"
note() { echo "$*"; echo "$*" >>"$OUT/summary.md"; }

bench_fixtures
berth_daemon_start
bb() { "$BERTH" -H unix://$B/berth.sock "$@"; }
bb load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
bb run --rm busybox true

if [ $have_docker = 1 ]; then
	bench_docker_start
	bench_docker load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
	bench_docker run --rm busybox true
fi
PODMAN="podman $BENCH_PODMAN_GLOBAL"
if [ $have_podman = 1 ]; then
	bench_podman load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null 2>&1
	bench_podman run --rm --network none $BENCH_PODMAN_ULIMITS busybox true
fi

note "# engine bench $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
note ""

# Engine-side memory per idle running container, measured first, on a fresh
# keeper. berth's keeper holds every container: its RSS/PSS with 50 idle
# containers minus its RSS/PSS with none, divided by 50 (everything the
# containers cost it, heap growth included). docker and podman pay one
# containerd-shim / conmon process per container.
kib() { awk -v f="$2" '$1==f":" {print $2}' /proc/$1/smaps_rollup; }
note "## engine-side memory per idle running container"
note ""
kp=$(cat $B/exec/keeper.pid)
r0=$(kib $kp Rss); p0=$(kib $kp Pss)
for i in $(seq 1 50); do bb run -d --name mem-$i busybox sleep 3600 >/dev/null; done
sleep 1
r1=$(kib $kp Rss); p1=$(kib $kp Pss)
note "| engine process | RSS KiB | PSS KiB |"
note "|---|---:|---:|"
note "| berth keeper, per container: (50 containers - none) / 50 | $(( (r1-r0)/50 )) | $(( (p1-p0)/50 )) |"
note "| berth keeper, total: none -> 50 containers | $r0 -> $r1 | $p0 -> $p1 |"
bb rm -f $(seq -f 'mem-%g' 1 50) >/dev/null
if [ $have_docker = 1 ]; then
	for i in $(seq 1 3); do bench_docker run -d --name mem-$i busybox sleep 3600 >/dev/null; done
	sleep 1
	# only the shims of the private dockerd (their -address is under $BENCH_ROOT)
	for pid in $(pgrep -f "containerd-shim-runc-v2 .*$BENCH_ROOT" | head -3); do
		note "| docker containerd-shim pid $pid (one per container) | $(kib $pid Rss) | $(kib $pid Pss) |"
	done
	bench_docker rm -f mem-1 mem-2 mem-3 >/dev/null
fi
if [ $have_podman = 1 ]; then
	for i in 1 2; do bench_podman run -d --network none $BENCH_PODMAN_ULIMITS --name mem-$i busybox sleep 3600 >/dev/null; done
	sleep 1
	for pid in $(pgrep -f "^/usr/bin/conmon .*$BENCH_PODMAN_ROOT" | head -2); do
		note "| podman conmon pid $pid (one per container) | $(kib $pid Rss) | $(kib $pid Pss) |"
	done
	bench_podman rm -f mem-1 mem-2 >/dev/null
fi
note ""

# summarize NAME: medians of a hyperfine export, with the ratio of each
# command to the first (berth CLI -> berth).
summarize() {
	python3 - "$OUT/$1.json" "$1" "$N" <<'PY' | tee -a "$OUT/summary.md"
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"## {sys.argv[2]} (median of {sys.argv[3]} runs)")
print()
print("| client -> engine | median ms | min ms | max ms | x berth |")
print("|---|---:|---:|---:|---:|")
base = r[0]["median"]
for x in r:
    print(f"| {x['command']} | {x['median']*1000:.1f} | {x['min']*1000:.1f} | {x['max']*1000:.1f} | {x['median']/base:.1f} |")
print()
PY
}

run_set() { # name, then hyperfine's "-n NAME COMMAND" pairs
	local name=$1; shift
	hyperfine -N --runs "$N" --warmup 2 --export-json "$OUT/$name.json" "$@" >/dev/null
	summarize "$name"
}

for cmd in true "echo hello"; do
	cmds=(-n "berth CLI -> berth" "$BERTH -H unix://$B/berth.sock run --rm busybox $cmd"
	      -n "docker CLI -> berth" "$DOCKER -H unix://$B/berth.sock run --rm busybox $cmd")
	[ $have_docker = 1 ] && cmds+=(-n "docker CLI -> dockerd" "$DOCKER -H $BENCH_DOCKER_SOCK run --rm busybox $cmd")
	[ $have_podman = 1 ] && cmds+=(-n "podman (--network none)" "$PODMAN run --rm --network none $BENCH_PODMAN_ULIMITS busybox $cmd")
	run_set "run-${cmd// /-}" "${cmds[@]}"
done

# exec latency against an idle container
bb run -d --name exec-target busybox sleep 3600 >/dev/null
cmds=(-n "berth CLI -> berth" "$BERTH -H unix://$B/berth.sock exec exec-target true"
      -n "docker CLI -> berth" "$DOCKER -H unix://$B/berth.sock exec exec-target true")
if [ $have_docker = 1 ]; then
	bench_docker run -d --name exec-target busybox sleep 3600 >/dev/null
	cmds+=(-n "docker CLI -> dockerd" "$DOCKER -H $BENCH_DOCKER_SOCK exec exec-target true")
fi
if [ $have_podman = 1 ]; then
	bench_podman run -d --network none $BENCH_PODMAN_ULIMITS --name exec-target busybox sleep 3600 >/dev/null
	cmds+=(-n "podman" "$PODMAN exec exec-target true")
fi
run_set exec "${cmds[@]}"

# 20 containers started in parallel: wall time until all run
parallel20() { # "RUN-OPTIONS" CLI...: prints "<median ms> ms (runs: a, b, c ms; <n> running)"
	local opts=$1 start end n i k times=()
	shift
	for k in 1 2 3; do
		start=$(date +%s%N)
		for i in $(seq 1 20); do "$@" run -d $opts --name par-$i busybox sleep 3600 >/dev/null & done
		wait
		end=$(date +%s%N)
		times+=($(( (end-start)/1000000 )))
		n=$("$@" ps -q --filter name=par- | wc -l)
		"$@" rm -f $(seq -f 'par-%g' 1 20) >/dev/null 2>&1 || true
	done
	echo "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p) ms (runs: ${times[0]}, ${times[1]}, ${times[2]} ms; $n running)"
}
note "## 20 containers started in parallel (wall time until all run, median of 3)"
note ""
note "| client -> engine | wall time |"
note "|---|---:|"
note "| berth CLI -> berth | $(parallel20 "" "$BERTH" -H unix://$B/berth.sock) |"
note "| docker CLI -> berth | $(parallel20 "" "$DOCKER" -H unix://$B/berth.sock) |"
[ $have_docker = 1 ] && note "| docker CLI -> dockerd | $(parallel20 "" "$DOCKER" -H "$BENCH_DOCKER_SOCK") |"
[ $have_podman = 1 ] && note "| podman (--network none) | $(parallel20 "--network none $BENCH_PODMAN_ULIMITS" $PODMAN) |"
note ""

note ""
note "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
