#!/usr/bin/env bash
# bench/runtime.sh — `berth runtime run` vs `runc run` (and `crun run` when
# crun is installed) on one busybox bundle running `true`. Prints each
# median and the ratios. Needs root and runc; hyperfine if present (else a
# plain loop).
#
#   bench/runtime.sh [runs]        (default 50 runs each, 5 warm-up)
#
# crun 1.8 refuses a "hybrid" cgroup host (v1 controllers plus a cgroup2
# mount at /sys/fs/cgroup/unified). On such a host the whole measurement,
# for all three runtimes alike, runs in a private mount namespace
# (unshare -m) without that cgroup2 mount; the host's mounts are untouched.
# The bundle says ociVersion 1.0.2: crun 1.8 rejects newer versions.
set -euo pipefail
runs=${1:-50}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod

cd "$repo"
CGO_ENABLED=0 go build ${BERTH_BUILD_FLAGS:-} -o "$work/berth" ./cmd/berth
mkdir -p "$work/bundle/rootfs"
cat > "$work/mkrootfs.go" <<'GO'
package main

import (
	"os"

	"berth/internal/fixture"
)

func main() {
	if err := fixture.BusyboxRootfs(os.Args[1]); err != nil {
		panic(err)
	}
}
GO
printf '{"Replace":{"%s/cmd/berth-bench-mkrootfs/main.go":"%s/mkrootfs.go"}}' "$repo" "$work" > "$work/overlay.json"
go run -overlay "$work/overlay.json" ./cmd/berth-bench-mkrootfs "$work/bundle/rootfs"

cd "$work/bundle"
"$work/berth" runtime spec
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["ociVersion"] = "1.0.2"
json.dump(c, open("config.json", "w"), indent=1)
PY

crun=$(command -v crun || true)
names=("berth runtime run" "runc run")
cmds=("$work/berth runtime --root $work/berth-state run bench-berth" "runc --root $work/runc-state run bench-runc")
if [ -n "$crun" ]; then
  names+=("crun run")
  cmds+=("$crun --root $work/crun-state run bench-crun")
fi

# The timing, as a script that may run in a private mount namespace.
{
  echo 'set -euo pipefail'
  printf 'runs=%q work=%q\n' "$runs" "$work"
  printf 'cmds=('; printf '%q ' "${cmds[@]}"; echo ')'
  printf 'names=('; printf '%q ' "${names[@]}"; echo ')'
  cat <<'INNER'
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && [ ${#cmds[@]} -gt 2 ]; then
  umount /sys/fs/cgroup/unified   # private namespace: see the header
  echo "(in a private mount namespace without /sys/fs/cgroup/unified, for crun)"
fi
for c in "${cmds[@]}"; do $c; done   # each works before we time it
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/h.json" "${cmds[@]}" >/dev/null
  python3 - "$work/h.json" "${names[@]}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
med = [x["median"] * 1000 for x in r]
for n, m, x in zip(names, med, r):
    print(f"{n + ':':20s} median {m:.1f} ms (n={len(x['times'])})")
for n, m in zip(names[1:], med[1:]):
    print(f"ratio berth/{n.split()[0]}: {med[0] / m:.2f}")
PY
else
  med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  t() { for _ in $(seq "$runs"); do s=$(date +%s%N); $1 >/dev/null; e=$(date +%s%N); echo $(((e-s)/1000)); done | med; }
  b=$(t "${cmds[0]}")
  echo "${names[0]}: median $((b/1000)) ms"
  for i in $(seq 1 $((${#cmds[@]} - 1))); do
    c=$(t "${cmds[$i]}")
    echo "${names[$i]}: median $((c/1000)) ms"
    awk -v b="$b" -v c="$c" -v n="${names[$i]%% *}" 'BEGIN {printf "ratio berth/%s: %.2f\n", n, b/c}'
  done
fi
INNER
} > "$work/time.sh"

if [ -n "$crun" ] && mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
  unshare -m --propagation private bash "$work/time.sh"
else
  bash "$work/time.sh"
fi
