#!/usr/bin/env bash
# bench/runtime.sh — `berth runtime run` vs `runc run` on one busybox bundle
# running `true`. Prints each median and the ratio. Needs root, runc and
# hyperfine (falls back to a plain loop without hyperfine).
#
#   bench/runtime.sh [runs]        (default 50 runs each, 5 warm-up)
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
json.dump(c, open("config.json", "w"), indent=1)
PY

berth_cmd="$work/berth runtime --root $work/berth-state run bench-berth"
runc_cmd="runc --root $work/runc-state run bench-runc"
$berth_cmd && $runc_cmd   # both work before we time them

if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/h.json" "$berth_cmd" "$runc_cmd" >/dev/null
  python3 - "$work/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
b, c = r[0]["median"] * 1000, r[1]["median"] * 1000
print(f"berth runtime run: median {b:.1f} ms (n={len(r[0]['times'])})")
print(f"runc run:          median {c:.1f} ms (n={len(r[1]['times'])})")
print(f"ratio berth/runc:  {b / c:.2f}")
PY
else
  med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  t() { for _ in $(seq "$runs"); do s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e-s)/1000)); done | med; }
  b=$(t $berth_cmd); c=$(t $runc_cmd)
  echo "berth runtime run: median $((b/1000)) ms"; echo "runc run: median $((c/1000)) ms"
  awk -v b="$b" -v c="$c" 'BEGIN {printf "ratio berth/runc: %.2f\n", b/c}'
fi
