# lib-berth.sh — a private berth daemon and hyperfine summaries for the
# scripts that compare berth with docker (bench/engine.sh, network.sh,
# build.sh, scripts/build-compare.sh). Source it after bench/compare-daemons.sh (for
# bench_umount_under). The caller sets:
#   BERTH          the berth binary
#   B              the daemon's directory (socket, data, exec root, log)
#   BERTH_BRIDGE   its bridge name (<= 15 characters)
#   BERTH_SUBNET   its bridge subnet
# and OUT (results) for berth_summarize.

berth_pid=""

# berth_daemon_start: start the daemon on unix://$B/berth.sock and wait
# for its socket; its log is $B/daemon.log.
berth_daemon_start() {
	"$BERTH" daemon -H "unix://$B/berth.sock" --data-root "$B/data" --exec-root "$B/exec" \
		--bridge-name "$BERTH_BRIDGE" --bridge-subnet "$BERTH_SUBNET" >"$B/daemon.log" 2>&1 &
	berth_pid=$!
	for _ in $(seq 1 200); do [ -S "$B/berth.sock" ] && return 0; sleep 0.05; done
	echo "berth daemon did not start; $B/daemon.log:" >&2
	cat "$B/daemon.log" >&2
	return 1
}

# berth_daemon_stop: remove the daemon's containers, stop the daemon and
# then its keeper by PID, unmount what is left under $B, remove the
# containers' cgroups, its bridge and nft table. Safe to call when nothing
# was started; never fails (it runs from EXIT traps).
berth_daemon_stop() {
	local ids="" id
	if [ -n "$berth_pid" ]; then
		ids=$("$BERTH" -H "unix://$B/berth.sock" ps -aq --no-trunc 2>/dev/null)
		[ -n "$ids" ] && "$BERTH" -H "unix://$B/berth.sock" rm -f $ids >/dev/null 2>&1
		kill -TERM "$berth_pid" 2>/dev/null
		wait "$berth_pid" 2>/dev/null
		berth_pid=""
	fi
	# The keeper outlives the daemon by design: stop it by its pid file.
	[ -f "$B/exec/keeper.pid" ] && kill -TERM "$(cat "$B/exec/keeper.pid")" 2>/dev/null
	bench_umount_under "$B/"
	# Only our containers' cgroups: other berth daemons share /berth.
	for id in $ids; do
		bench_rmdir_cgroup "berth/$id"
	done
	ip link del "$BERTH_BRIDGE" 2>/dev/null
	nft delete table inet "berth-$BERTH_BRIDGE" 2>/dev/null
	return 0
}

# berth_summarize NAME REF LABEL: a markdown table of the medians in
# $OUT/NAME.json (a hyperfine export of N runs), in seconds, with each
# command's ratio to the REF-th command (1-based; -1 is the last), whose
# name LABEL gives the ratio column. Appended to $OUT/summary.md.
berth_summarize() {
	python3 - "$OUT/$1.json" "$1" "${N:-?}" "$2" "$3" <<'PY' | tee -a "$OUT/summary.md"
import json, sys
path, name, runs, ref, label = sys.argv[1:6]
r = json.load(open(path))["results"]
i = int(ref)
base = r[i - 1 if i > 0 else i]["median"]
print(f"## {name} (median of {runs} runs)")
print()
print(f"| client -> daemon | median s | min s | max s | / {label} |")
print("|---|---:|---:|---:|---:|")
for x in r:
    print(f"| {x['command']} | {x['median']:.3f} | {x['min']:.3f} | {x['max']:.3f} | {x['median']/base:.2f} |")
print()
PY
}
