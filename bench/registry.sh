#!/usr/bin/env bash
# registry.sh — pull, push and registry serving, side by side in one run, on
# loopback (distribution issue "Must show").
#
#   pull  of a ~200 MB, 4-layer image from berth's registry:
#         berth daemon vs docker (private dockerd) vs skopeo (copy to dir:)
#   push  of the same image into an empty registry: the same three clients
#   serve 8 concurrent clients doing layer GETs, manifest GETs and blob
#         uploads (bench/registryload): berth registry serve vs Debian's
#         docker-registry (distribution 2.8)
#
# The image is generated deterministically (seeded random file content that
# gzip cannot shrink, 4 layers of 50 MiB) and pushed once into each registry
# by bench/registryload. Medians of N runs (default 3) from hyperfine.
# Results: $OUT/*.json and bench/RESULTS-registry.md. Needs root, hyperfine,
# docker-registry; dockerd and skopeo columns are skipped when missing.
# Everything started here is stopped by PID on exit, also on failure.
# SHORT=1 checks the script in a minute: one run, 4 layers of 8 MiB, a
# lighter serving load, results only in $OUT/summary.md (marked rough).
# The berth daemon gets its own bridge ($BERTH_BRIDGE, $BERTH_SUBNET).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/compare-daemons.sh
SHORT=${SHORT:-0}
N=${N:-3}
LAYER_MB=${LAYER_MB:-50}
LOAD_ARGS="-c 8 -blobs 32 -manifests 2000 -pushes 16 -push-mb 16"
B=/tmp/bench-registry
OUT=${OUT:-$B/results}
BERTH=${BERTH:-$PWD/bin/berth}
RESULTS=${RESULTS:-$PWD/bench/RESULTS-registry.md}
if [ "$SHORT" = 1 ]; then
	N=1 LAYER_MB=8 LOAD_ARGS="-c 8 -blobs 8 -manifests 500 -pushes 4 -push-mb 4"
	RESULTS=$OUT/summary-short.md
fi
BERTH_BRIDGE=${BERTH_BRIDGE:-breg-b0}
BERTH_SUBNET=${BERTH_SUBNET:-10.234.1.0/24}
[ "$(id -u)" = 0 ] || { echo "registry bench needs root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
command -v docker-registry >/dev/null || { echo "needs docker-registry (apt-get install docker-registry)" >&2; exit 1; }
[ -x "$BERTH" ] || { echo "no $BERTH: run make build first" >&2; exit 1; }
have_docker=0; command -v dockerd >/dev/null && have_docker=1
have_skopeo=0; command -v skopeo >/dev/null && have_skopeo=1

pids=()
berth_pid=""
cleanup() {
	set +e
	if [ -n "$berth_pid" ]; then
		kill -TERM "$berth_pid" 2>/dev/null; wait "$berth_pid" 2>/dev/null
		[ -f $B/exec/keeper.pid ] && kill -TERM "$(cat $B/exec/keeper.pid)" 2>/dev/null
		ip link show "$BERTH_BRIDGE" >/dev/null 2>&1 && ip link del "$BERTH_BRIDGE"
		nft delete table inet "berth-$BERTH_BRIDGE" 2>/dev/null
	fi
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	[ $have_docker = 1 ] && bench_docker_stop
	bench_umount_under "$B/"
	grep -q " $B/" /proc/self/mounts || rm -rf "$B/data" "$B/exec" "$B/reg-"* "$B/skopeo"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$B"
mkdir -p "$B" "$OUT"

go build -o $B/registryload ./bench/registryload
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do curl -fs "http://$1/v2/" >/dev/null && return 0; sleep 0.05; done; echo "registry $1 did not come up" >&2; return 1; }

# Both starters set REG to the new registry's host:port (no subshell: the
# PID must reach pids for cleanup).
start_berth_registry() { # name
	local port; port=$(free_port)
	"$BERTH" registry serve --addr 127.0.0.1:$port --root $B/reg-$1 -l error >$B/reg-$1.log 2>&1 &
	pids+=($!)
	wait_port 127.0.0.1:$port
	REG=127.0.0.1:$port
}
start_distribution() { # name
	local port; port=$(free_port)
	mkdir -p $B/reg-$1
	cat >$B/reg-$1.yml <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $B/reg-$1/data
http:
  addr: 127.0.0.1:$port
EOF
	docker-registry serve $B/reg-$1.yml >$B/reg-$1.log 2>&1 &
	pids+=($!)
	wait_port 127.0.0.1:$port
	REG=127.0.0.1:$port
}

start_berth_registry berth; REG_BERTH=$REG
start_distribution dist; REG_DIST=$REG
start_distribution push; REG_PUSH=$REG # empty target for the push rows, wiped before each run
IMG=bench/big:v1

"$BERTH" daemon -H unix://$B/berth.sock --data-root $B/data --exec-root $B/exec \
	--bridge-name "$BERTH_BRIDGE" --bridge-subnet "$BERTH_SUBNET" >$B/daemon.log 2>&1 &
berth_pid=$!
for _ in $(seq 1 200); do [ -S $B/berth.sock ] && break; sleep 0.05; done
bb() { "$BERTH" -H unix://$B/berth.sock "$@"; }
[ $have_docker = 1 ] && bench_docker_start

: >"$OUT/summary.md"
note() { echo "$*"; echo "$*" >>"$OUT/summary.md"; }
median() { python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"; }
ratio() { python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print("%.2fx" % (a/b) if b else "-")' "$1" "$2"; }
hf() { # name prepare command
	hyperfine -N --runs "$N" --prepare "$2" --export-json "$OUT/$1.json" "$3" >/dev/null 2>"$OUT/$1.err" || { cat "$OUT/$1.err" >&2; return 1; }
	median "$OUT/$1.json"
}

short=""; [ "$SHORT" = 1 ] && short=" — SHORT mode (script check; rough numbers, not results)"
note "# registry bench $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg)$short"
note ""
t0=$(date +%s.%N)
digest=$($B/registryload push -registry $REG_BERTH -repo $IMG -mb "$LAYER_MB")
t1=$(date +%s.%N)
$B/registryload push -registry $REG_DIST -repo $IMG -mb "$LAYER_MB" >/dev/null
note "Image: 4 layers x $LAYER_MB MiB of seeded random bytes (gzip), manifest $digest; generated and pushed by bench/registryload in $(python3 -c "print('%.1f' % ($t1-$t0))") s."
note ""

# Pull: each run starts without the image.
note "## pull of $IMG from berth's registry (median of $N, seconds)"
note ""
note "| client | median s | vs berth |"
note "|---|---:|---:|"
p_berth=$(hf pull-berth "bash -c '$BERTH -H unix://$B/berth.sock rmi -f $REG_BERTH/$IMG >/dev/null 2>&1; true'" "$BERTH -H unix://$B/berth.sock pull -q $REG_BERTH/$IMG")
note "| berth daemon | $p_berth | 1.00x |"
if [ $have_docker = 1 ]; then
	p_docker=$(hf pull-docker "bash -c '$BENCH_DOCKER_CLI -H $BENCH_DOCKER_SOCK rmi -f $REG_BERTH/$IMG >/dev/null 2>&1; true'" "$BENCH_DOCKER_CLI -H $BENCH_DOCKER_SOCK pull -q $REG_BERTH/$IMG")
	note "| docker (dockerd 20.10) | $p_docker | $(ratio $p_docker $p_berth) slower |"
fi
if [ $have_skopeo = 1 ]; then
	p_skopeo=$(hf pull-skopeo "rm -rf $B/skopeo" "skopeo copy -q --src-tls-verify=false docker://$REG_BERTH/$IMG dir:$B/skopeo")
	note "| skopeo copy to dir: | $p_skopeo | $(ratio $p_skopeo $p_berth) slower |"
fi
note ""

# Push: into an empty distribution registry (its storage wiped before each
# run, so no blob is found there or mounted).
wipe="rm -rf $B/reg-push/data"
note "## push of $IMG into an empty registry (median of $N, seconds)"
note ""
note "| client | median s | vs berth |"
note "|---|---:|---:|"
bb tag $REG_BERTH/$IMG $REG_PUSH/$IMG
s_berth=$(hf push-berth "$wipe" "$BERTH -H unix://$B/berth.sock push -q $REG_PUSH/$IMG")
note "| berth daemon | $s_berth | 1.00x |"
if [ $have_docker = 1 ]; then
	bench_docker pull -q $REG_BERTH/$IMG >/dev/null
	bench_docker tag $REG_BERTH/$IMG $REG_PUSH/$IMG
	s_docker=$(hf push-docker "$wipe" "$BENCH_DOCKER_CLI -H $BENCH_DOCKER_SOCK push -q $REG_PUSH/$IMG")
	note "| docker (dockerd 20.10) | $s_docker | $(ratio $s_docker $s_berth) slower |"
fi
if [ $have_skopeo = 1 ]; then
	[ -d $B/skopeo ] || skopeo copy -q --src-tls-verify=false docker://$REG_BERTH/$IMG dir:$B/skopeo
	s_skopeo=$(hf push-skopeo "$wipe" "skopeo copy -q --dest-tls-verify=false dir:$B/skopeo docker://$REG_PUSH/$IMG")
	note "| skopeo copy from dir: | $s_skopeo | $(ratio $s_skopeo $s_berth) slower |"
fi
note ""

# Serving: 8 clients, 32 layer GETs (1.6 GiB), then 2000 manifest GETs, then
# 16 uploads of fresh 16 MiB blobs (POST, PATCH, PUT as docker pushes);
# each figure is the median over N runs. bench/registryload splices layer
# bodies into /dev/null (like a remote client, it costs the server's CPU
# nothing) and is the same client for both registries.
# The runs alternate between the registries, so a burst of load from
# elsewhere on the machine does not land on one of them only.
serve() { # host -> one line
	$B/registryload load -registry $1 -repo $IMG $LOAD_ARGS
}
med() { # key, lines -> median of key's values
	sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}
l_berth="" l_dist=""
for i in $(seq 1 "$N"); do
	l_berth+=$(serve $REG_BERTH)$'\n'
	l_dist+=$(serve $REG_DIST)$'\n'
done
note "## registry serving, 8 concurrent clients ($LOAD_ARGS; median of $N runs)"
note ""
note "| registry | layer GETs MiB/s | manifest GETs req/s | manifest p50 ms | manifest p99 ms | blob uploads MiB/s |"
note "|---|---:|---:|---:|---:|---:|"
row() { # label, lines
	note "| $1 | $(med blob_mib_s "$2") | $(med manifest_req_s "$2") | $(med manifest_p50_ms "$2") | $(med manifest_p99_ms "$2") | $(med push_mib_s "$2") |"
}
row "berth registry serve" "$l_berth"
row "distribution 2.8 (Debian docker-registry)" "$l_dist"
r() { ratio "$(med "$1" "$l_berth")" "$(med "$1" "$l_dist")"; }
rinv() { ratio "$(med "$1" "$l_dist")" "$(med "$1" "$l_berth")"; }
note "| berth / distribution | $(r blob_mib_s) | $(r manifest_req_s) | $(rinv manifest_p50_ms) lower | $(rinv manifest_p99_ms) lower | $(r push_mib_s) |"
note ""
note "Client: bench/registryload, the same for both; it splices layer bodies into /dev/null, so"
note "its CPU (on this same machine) does not cap the servers as reading them into memory did."
note ""
note "Goals: berth pull >= 2x faster than docker's; registry >= 1.5x distribution's throughput."
note "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
cp "$OUT/summary.md" "$RESULTS"
