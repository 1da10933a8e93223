#!/usr/bin/env bash
# engine.sh — berth vs docker vs podman, side by side in one run (issue: engine).
#
#   run --rm busybox true / echo hello   berth CLI, docker CLI -> berth, docker -> dockerd, podman
#   20 containers started in parallel    wall time until all 20 run
#   exec latency                         exec <c> true
#   engine-side memory per idle container  keeper RSS/PSS growth vs containerd-shim / conmon
#
# Medians from hyperfine (N runs, default 20). docker and podman parts are
# skipped with a note when dockerd/podman are not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/compare-daemons.sh
N=${N:-20}
B=/tmp/bench-berth
OUT=${OUT:-$B/results}
BERTH=$PWD/bin/berth
DOCKER=$BENCH_DOCKER_CLI
[ "$(id -u)" = 0 ] || { echo "engine bench needs root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "engine bench needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }

have_docker=0; command -v dockerd >/dev/null && have_docker=1
have_podman=0; command -v podman >/dev/null && have_podman=1

berth_pid=""
cleanup() {
	set +e
	if [ -n "$berth_pid" ]; then
		$BERTH -H unix://$B/berth.sock ps -aq 2>/dev/null | xargs -r $BERTH -H unix://$B/berth.sock rm -f >/dev/null 2>&1
		kill -TERM "$berth_pid" 2>/dev/null; wait "$berth_pid" 2>/dev/null
	fi
	[ -f $B/exec/keeper.pid ] && kill -KILL "$(cat $B/exec/keeper.pid)" 2>/dev/null
	bench_umount_under "$B/"
	bench_rmdir_cgroup berth
	[ $have_docker = 1 ] && { bench_docker ps -aq 2>/dev/null | xargs -r "$DOCKER" -H "$BENCH_DOCKER_SOCK" rm -f >/dev/null 2>&1; bench_docker_stop; }
	[ $have_podman = 1 ] && { bench_podman rm -af >/dev/null 2>&1; bench_podman_clean; }
	grep -q " $B/" /proc/self/mounts || rm -rf "$B/data" "$B/exec"
}
trap cleanup EXIT

mkdir -p "$B" "$OUT"
bench_fixtures
"$BERTH" daemon -H unix://$B/berth.sock --data-root $B/data --exec-root $B/exec >$B/daemon.log 2>&1 &
berth_pid=$!
for _ in $(seq 1 200); do [ -S $B/berth.sock ] && break; sleep 0.05; done
bb() { "$BERTH" -H unix://$B/berth.sock "$@"; }
db() { "$DOCKER" -H unix://$B/berth.sock "$@"; }
bb load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
bb run --rm busybox true

if [ $have_docker = 1 ]; then
	bench_docker_start
	bench_docker load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
	bench_docker run --rm busybox true
fi
PODMAN="podman --root $BENCH_PODMAN_ROOT/root --runroot $BENCH_PODMAN_ROOT/run --cgroup-manager cgroupfs --events-backend file"
if [ $have_podman = 1 ]; then
	bench_podman load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
	bench_podman run --rm --network none $BENCH_PODMAN_ULIMITS busybox true
fi

median() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; [print("%-48s %9.1f ms" % (x["command"], x["median"]*1000)) for x in r]' "$1"; }

run_set() { # name, then args after "--": hyperfine commands with names
	local name=$1; shift
	hyperfine -N --runs "$N" --warmup 2 --export-json "$OUT/$name.json" "$@" >/dev/null
	echo "== $name (median of $N)"; median "$OUT/$name.json"
}

cmds=(-n "berth CLI -> berth" "$BERTH -H unix://$B/berth.sock run --rm busybox true"
      -n "docker CLI -> berth" "$DOCKER -H unix://$B/berth.sock run --rm busybox true")
[ $have_docker = 1 ] && cmds+=(-n "docker CLI -> dockerd" "$DOCKER -H $BENCH_DOCKER_SOCK run --rm busybox true")
[ $have_podman = 1 ] && cmds+=(-n "podman (--network none)" "$PODMAN run --rm --network none $BENCH_PODMAN_ULIMITS busybox true")
run_set run-true "${cmds[@]}"

cmds=(-n "berth CLI -> berth" "$BERTH -H unix://$B/berth.sock run --rm busybox echo hello"
      -n "docker CLI -> berth" "$DOCKER -H unix://$B/berth.sock run --rm busybox echo hello")
[ $have_docker = 1 ] && cmds+=(-n "docker CLI -> dockerd" "$DOCKER -H $BENCH_DOCKER_SOCK run --rm busybox echo hello")
[ $have_podman = 1 ] && cmds+=(-n "podman (--network none)" "$PODMAN run --rm --network none $BENCH_PODMAN_ULIMITS busybox echo hello")
run_set run-echo "${cmds[@]}"

# exec latency against an idle container
bb run -d --name exec-target busybox sleep 3600 >/dev/null
cmds=(-n "berth CLI -> berth" "$BERTH -H unix://$B/berth.sock exec exec-target true"
      -n "docker CLI -> berth" "$DOCKER -H unix://$B/berth.sock exec exec-target true")
if [ $have_docker = 1 ]; then
	bench_docker run -d --name exec-target busybox sleep 3600 >/dev/null
	cmds+=(-n "docker CLI -> dockerd" "$DOCKER -H $BENCH_DOCKER_SOCK exec exec-target true")
fi
run_set exec "${cmds[@]}"

# 20 containers started in parallel: wall time until all run
parallel20() { # cli...
	local start end
	start=$(date +%s%N)
	for i in $(seq 1 20); do "$@" run -d --name par-$i busybox sleep 3600 >/dev/null & done
	wait
	end=$(date +%s%N)
	local n; n=$("$@" ps -q --filter name=par- | wc -l)
	echo "$(( (end-start)/1000000 )) ms ($n running)"
	"$@" rm -f $(seq -f 'par-%g' 1 20) >/dev/null 2>&1 || true
}
echo "== 20 parallel starts (wall time until all run)"
echo "berth CLI -> berth      $(parallel20 "$BERTH" -H unix://$B/berth.sock)"
[ $have_docker = 1 ] && echo "docker CLI -> dockerd   $(parallel20 "$DOCKER" -H "$BENCH_DOCKER_SOCK")"

# engine-side memory per idle running container
kib() { awk -v f="$2" '$1==f":" {print $2}' /proc/$1/smaps_rollup; }
echo "== engine-side memory per idle container (10 containers)"
kp=$(cat $B/exec/keeper.pid)
r0=$(kib $kp Rss); p0=$(kib $kp Pss)
for i in $(seq 1 10); do bb run -d --name mem-$i busybox sleep 3600 >/dev/null; done
sleep 1
r1=$(kib $kp Rss); p1=$(kib $kp Pss)
echo "berth keeper: RSS $r0 -> $r1 KiB, PSS $p0 -> $p1 KiB: per container RSS $(( (r1-r0)/10 )) KiB, PSS $(( (p1-p0)/10 )) KiB (keeper total RSS $r1 KiB for all containers)"
if [ $have_docker = 1 ]; then
	for i in $(seq 1 3); do bench_docker run -d --name mem-$i busybox sleep 3600 >/dev/null; done
	sleep 1
	for pid in $(pgrep -f containerd-shim-runc-v2 | head -3); do
		echo "docker containerd-shim pid $pid: RSS $(kib $pid Rss) KiB PSS $(kib $pid Pss) KiB (one per container)"
	done
fi
if [ $have_podman = 1 ]; then
	bench_podman run -d --network none $BENCH_PODMAN_ULIMITS --name mem-1 busybox sleep 3600 >/dev/null
	sleep 1
	for pid in $(pgrep -x conmon | head -1); do
		echo "podman conmon pid $pid: RSS $(kib $pid Rss) KiB PSS $(kib $pid Pss) KiB (one per container)"
	done
fi
