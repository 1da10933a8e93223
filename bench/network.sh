#!/usr/bin/env bash
# network.sh — berth vs docker networking, side by side in one run (issue 6).
#
#   setup cost    `run --rm busybox true` on the default bridge vs --network none,
#                 hyperfine medians (N runs, default 20, in ROUNDS interleaved rounds);
#                 the difference is what the network adds to a container start
#                 (goal for berth: <= 10 ms); also as the median of PAIRS (default 30)
#                 paired bridge-minus-none differences, robust to load drift
#   throughput    host -> container through a port published on 127.0.0.1: a sink in a
#                 busybox container, bench/netload streaming NET_MB MiB (default 1024)
#                 NET_RUNS times (default 5); berth's nftables DNAT (kernel) vs docker's
#                 userland proxy (docker-proxy; dockerd runs with --iptables=false)
#   DNS latency   A lookups of a container's name from another container on a user
#                 network (bench/netload dns, DNS_N lookups, default 500): berth's
#                 resolver vs docker's embedded DNS
#
# Traffic stays on loopback and on the bridges this script creates. Everything
# it starts — a private berth daemon and keeper (bridge $BERTH_BRIDGE), a private
# dockerd (bench/compare-daemons.sh, bridge $BENCH_BRIDGE) — is removed on exit,
# also on failure. The docker columns are skipped with a note when dockerd is
# missing. BERTH=/path/to/berth measures another build. Results: $OUT/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_ROOT=${BENCH_ROOT:-/tmp/bench-net-docker}
export BENCH_BRIDGE=${BENCH_BRIDGE:-bnet-d0}
export BENCH_BRIDGE_CIDR=${BENCH_BRIDGE_CIDR:-10.236.0.1/24}
# docker's published ports through docker-proxy, the path the issue compares with.
export BENCH_DOCKER_EXTRA_ARGS=${BENCH_DOCKER_EXTRA_ARGS:---userland-proxy=true}
source bench/compare-daemons.sh
source bench/lib-berth.sh
N=${N:-20}
NET_MB=${NET_MB:-1024}
NET_RUNS=${NET_RUNS:-5}
DNS_N=${DNS_N:-500}
B=${BENCH_NET_DIR:-/tmp/bench-net-berth}
OUT=${OUT:-$B/results}
BERTH=${BERTH:-$PWD/bin/berth}
BERTH_BRIDGE=${BERTH_BRIDGE:-bnet-b0}
BERTH_SUBNET=${BERTH_SUBNET:-10.236.1.0/24}
BERTH_USERNET=${BERTH_USERNET:-10.236.2.0/24}
DOCKER_USERNET=${DOCKER_USERNET:-10.236.3.0/24}
BERTH_PORT=${BERTH_PORT:-39501}
DOCKER_PORT=${DOCKER_PORT:-39502}
DOCKER=$BENCH_DOCKER_CLI
[ "$(id -u)" = 0 ] || { echo "network bench needs root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "network bench needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
[ -x "$BERTH" ] || { echo "no $BERTH: run make build first" >&2; exit 1; }
have_docker=0; command -v dockerd >/dev/null && have_docker=1
[ $have_docker = 1 ] || echo "note: dockerd not installed, docker columns skipped (apt-get install docker.io)"

cleanup() {
	set +e
	if [ -n "$berth_pid" ]; then
		# the user network goes first; it needs its containers gone
		bb ps -aq | xargs -r "$BERTH" -H "unix://$B/berth.sock" rm -f >/dev/null 2>&1
		bb network rm bnet >/dev/null 2>&1
	fi
	berth_daemon_stop
	if [ $have_docker = 1 ]; then
		bench_docker ps -aq 2>/dev/null | xargs -r "$DOCKER" -H "$BENCH_DOCKER_SOCK" rm -f >/dev/null 2>&1
		bench_docker network rm bnet >/dev/null 2>&1
		bench_docker_stop
	fi
	grep -q " $B/" /proc/self/mounts || rm -rf "$B/data" "$B/exec"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bb() { "$BERTH" -H unix://$B/berth.sock "$@"; }
mkdir -p "$B" "$OUT"
: >"$OUT/summary.md"
note() { echo "$*"; echo "$*" >>"$OUT/summary.md"; }

bench_fixtures
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "$B/netload" ./bench/netload
berth_daemon_start
bb load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
bb run --rm busybox true
if [ $have_docker = 1 ]; then
	bench_docker_start
	bench_docker load -i "$BENCH_FIXTURES/busybox.tar" >/dev/null
	bench_docker run --rm busybox true
fi

note "# network bench $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
note ""

# 1. network setup cost per start. The runs go in ROUNDS rounds (default 4)
# of N/ROUNDS runs of each command, so that a change of the machine's load
# during the measurement weighs on bridge and none alike; the medians are
# over all runs.
ROUNDS=${ROUNDS:-4}
cmds=(-n "berth bridge" "$BERTH -H unix://$B/berth.sock run --rm busybox true"
      -n "berth none" "$BERTH -H unix://$B/berth.sock run --rm --network none busybox true")
[ $have_docker = 1 ] && cmds+=(-n "docker-bridge" "$DOCKER -H $BENCH_DOCKER_SOCK run --rm busybox true"
                               -n "docker-none" "$DOCKER -H $BENCH_DOCKER_SOCK run --rm --network none busybox true")
for r in $(seq 1 "$ROUNDS"); do
	hyperfine -N --runs $(( (N + ROUNDS - 1) / ROUNDS )) --warmup 1 --export-json "$OUT/setup-$r.json" "${cmds[@]}" >/dev/null
done
python3 - "$OUT" "$ROUNDS" <<'PY' | tee -a "$OUT/summary.md"
import json, statistics, sys
times = {}
for r in range(1, int(sys.argv[2]) + 1):
    for x in json.load(open(f"{sys.argv[1]}/setup-{r}.json"))["results"]:
        times.setdefault(x["command"], []).extend(x["times"])
r = {k: statistics.median(v) * 1000 for k, v in times.items()}
n = len(next(iter(times.values())))
print(f"## network setup cost: run --rm busybox true, bridge vs --network none (median of {n} runs in {sys.argv[2]} rounds)")
print()
print("| engine | bridge ms | none ms | setup cost ms (bridge - none) | goal |")
print("|---|---:|---:|---:|---|")
for eng, b, n in (("berth", "berth bridge", "berth none"), ("docker (--iptables=false)", "docker-bridge", "docker-none")):
    if b in r:
        print(f"| {eng} | {r[b]:.1f} | {r[n]:.1f} | {r[b]-r[n]:.1f} | {'<= 10 ms' if eng == 'berth' else ''} |")
if "docker-bridge" in r:
    print()
    print(f"berth / docker, bridge start: {r['berth bridge']/r['docker-bridge']:.2f}; "
          f"setup cost berth - docker: {(r['berth bridge']-r['berth none'])-(r['docker-bridge']-r['docker-none']):.1f} ms")
print()
PY

# 1b. the same cost as a paired measurement: PAIRS (default 30) times a bridge
# start right followed by a none start, per engine; the median of the
# per-pair differences is robust to the load drifting between hyperfine's
# batches, which dominates a few-ms difference on a busy machine.
PAIRS=${PAIRS:-30}
paired() { # label CLI...: prints "label median_bridge median_none median_diff" (ms)
	local label=$1; shift
	local i a b c
	for i in $(seq 1 "$PAIRS"); do
		a=$(date +%s%N); "$@" run --rm busybox true >/dev/null
		b=$(date +%s%N); "$@" run --rm --network none busybox true >/dev/null
		c=$(date +%s%N)
		echo "$((b - a)) $((c - b))"
	done | python3 -c '
import statistics, sys
rows = [tuple(map(int, l.split())) for l in sys.stdin if l.strip()]
med = lambda xs: statistics.median(xs) / 1e6
print(sys.argv[1], "%.1f %.1f %.1f" % (med([r[0] for r in rows]), med([r[1] for r in rows]), med([r[0] - r[1] for r in rows])))
' "$label"
}
note "## network setup cost, paired: median of $PAIRS (bridge start - none start) differences"
note ""
note "| engine | bridge ms | none ms | median paired difference ms | goal |"
note "|---|---:|---:|---:|---|"
read -r _ pb pn pd <<<"$(paired berth bb)"
note "| berth | $pb | $pn | $pd | <= 10 ms |"
if [ $have_docker = 1 ]; then
	read -r _ pb pn pd <<<"$(paired docker bench_docker)"
	note "| docker (--iptables=false) | $pb | $pn | $pd | |"
fi
note ""

# 2. throughput host -> container through a published port on 127.0.0.1
sink_args=(-d --name bnet-sink -v "$B/netload:/netload:ro" busybox /netload sink -listen :5000)
bb run -p 127.0.0.1:$BERTH_PORT:5000 "${sink_args[@]}" >/dev/null
berth_tp=$("$B/netload" send -addr 127.0.0.1:$BERTH_PORT -mb "$NET_MB" -runs "$NET_RUNS" | tee "$OUT/throughput-berth.txt" | awk '/^median_MBps/ {print $2}')
bb rm -f bnet-sink >/dev/null
docker_tp=""
if [ $have_docker = 1 ]; then
	bench_docker run -p 127.0.0.1:$DOCKER_PORT:5000 "${sink_args[@]}" >/dev/null
	docker_tp=$("$B/netload" send -addr 127.0.0.1:$DOCKER_PORT -mb "$NET_MB" -runs "$NET_RUNS" | tee "$OUT/throughput-docker.txt" | awk '/^median_MBps/ {print $2}')
	bench_docker rm -f bnet-sink >/dev/null
fi
note "## throughput host -> container, port published on 127.0.0.1 ($NET_MB MiB per run, median of $NET_RUNS runs)"
note ""
note "| engine (path) | MB/s | x docker |"
note "|---|---:|---:|"
if [ -n "$docker_tp" ]; then
	note "| berth (nftables DNAT, kernel) | $berth_tp | $(awk -v a="$berth_tp" -v b="$docker_tp" 'BEGIN {printf "%.2f", a/b}') |"
	note "| docker (docker-proxy, userland) | $docker_tp | 1.00 |"
else
	note "| berth (nftables DNAT, kernel) | $berth_tp | |"
fi
note ""

# 3. DNS lookup latency of a container name on a user network
dns_run() { # CLI... : web + client on network bnet; prints the client's result line
	"$@" run -d --name bnet-web --network bnet busybox sleep 600 >/dev/null
	"$@" run --rm --network bnet -v "$B/netload:/netload:ro" busybox /netload dns -name bnet-web -n "$DNS_N"
	"$@" rm -f bnet-web >/dev/null
}
bb network create --subnet "$BERTH_USERNET" bnet >/dev/null
berth_dns=$(dns_run bb | tee "$OUT/dns-berth.txt")
bb network rm bnet >/dev/null
docker_dns=""
if [ $have_docker = 1 ]; then
	bench_docker network create --subnet "$DOCKER_USERNET" bnet >/dev/null
	docker_dns=$(dns_run bench_docker | tee "$OUT/dns-docker.txt") || docker_dns="failed: $(tail -1 "$OUT/dns-docker.txt")"
	bench_docker network rm bnet >/dev/null
fi
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i+1)}' <<<"$2"; }
note "## DNS lookup latency of a container name from another container ($DNS_N A queries)"
note ""
note "| engine (resolver) | median µs | p90 µs | x docker (median) |"
note "|---|---:|---:|---:|"
bm=$(field median_us "$berth_dns"); dm=$(field median_us "$docker_dns")
if [ -n "$dm" ]; then
	note "| berth ($(field server "$berth_dns")) | $bm | $(field p90_us "$berth_dns") | $(awk -v a="$bm" -v b="$dm" 'BEGIN {printf "%.2f", a/b}') |"
	note "| docker embedded DNS ($(field server "$docker_dns")) | $dm | $(field p90_us "$docker_dns") | 1.00 |"
else
	note "| berth ($(field server "$berth_dns")) | $bm | $(field p90_us "$berth_dns") | |"
	[ -n "$docker_dns" ] && note "| docker embedded DNS | $docker_dns | | |"
fi
note ""
note "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
