#!/usr/bin/env bash
# scripts/runtime-validation.sh — the OCI runtime-tools validation suite
# (v0.9.0) against `berth runtime` and against runc in the same run, then a
# per-file comparison: berth must pass every assertion runc passes here.
#
#   scripts/runtime-validation.sh [OUTDIR]
#   scripts/runtime-validation.sh --ci [OUTDIR]
#
# --ci runs berth only, and only the files in CI_FILES below: those runc
# 1.1.5 passes on the development host plus those where berth does better,
# minus host-dependent ones (SELinux, AppArmor) and the racy killsig. Every
# one must pass: the exit status is the runner's (0 only if all pass).
# About 35 s once the suite is built (the first build adds 2-3 minutes).
#
# Builds bin/berth, then runs the shared runner
# (../shared/suites/runtime-validation.sh, see its README section 2) twice:
# OUTDIR/runc and OUTDIR/berth hold NAME.tap, NAME.err and summary.txt per
# runtime. Prints both runners' summary lines and, per test file, where
# berth passes fewer assertions than runc, or runc's file passes and
# berth's does not. The first run builds the suite (about 2-3 minutes,
# cached in $SUITES_CACHE, default /var/cache/berth-suites, which the runner
# creates); later runs take 1-2 minutes per runtime.
#
# Environment:
#   RTV_RUNNER     the shared runner (default: ../shared/suites/runtime-validation.sh
#                  next to the checkout)
#   RUNC           the reference runtime (default /usr/sbin/runc); RUNC=none
#                  runs berth only and the comparison is skipped
#   RTV_ONLY       a regexp of test file names, passed to the runner
#   RTV_TIMEOUT    per-file timeout, passed to the runner
#   BERTH          use this berth binary instead of building bin/berth
#   RTV_REUSE_RUNC 1 = keep an existing OUTDIR/runc from an earlier run (runc's
#                  results do not change with berth's code)
#
# Exit status: 0 when berth has no file and no assertion that runc passes
# and berth does not (with RUNC=none: the berth run's own status); 1
# otherwise; 2 for setup errors. Needs root.
set -euo pipefail

# The --ci set (see the header).
CI_FILES='config_updates_without_affect|create|default|delete_only_create_resources|delete_resources'
# linux_cgroups_cpus and linux_cgroups_relative_cpus are left to the full run (make rtv): once, with
# the other packages' root tests running in parallel under go test, linux_cgroups_cpus failed 6
# assertions; not reproduced alone. A flaky check would turn CI red for nothing.
CI_FILES+='|hostname|kill|kill_no_effect|linux_cgroups_pids'
CI_FILES+='|linux_cgroups_relative_pids|linux_devices|linux_masked_paths|linux_ns_itype|linux_ns_nopath'
CI_FILES+='|linux_ns_path|linux_ns_path_type|linux_readonly_paths|linux_seccomp|linux_sysctl|linux_uid_mappings'
# poststart_fail is timing-dependent in runtime-tools itself (broke once under load): full run only.
CI_FILES+='|mounts|poststop|poststop_fail|prestart_fail|process|process_capabilities_fail'
CI_FILES+='|process_oom_score_adj|process_rlimits_fail|process_user|root_readonly_true|state'

if [ "${1:-}" = --ci ]; then
	shift
	export RTV_ONLY="^($CI_FILES)\$"
	RUNC=none
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
runner=${RTV_RUNNER:-$repo/../shared/suites/runtime-validation.sh}
runc=${RUNC:-/usr/sbin/runc}
out=${1:-$(mktemp -d -t berth-rtv.XXXXXX)}

die() { echo "runtime-validation: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (the suite creates containers)"
[ -x "$runner" ] || die "shared runner $runner not found (set RTV_RUNNER)"
mkdir -p "$out"
out=$(cd "$out" && pwd)

berth=${BERTH:-}
if [ -z "$berth" ]; then
	export PATH="/usr/local/go/bin:$PATH" GOFLAGS=-mod=mod CGO_ENABLED=0
	(cd "$repo" && go build -trimpath -ldflags '-s -w' -o bin/berth ./cmd/berth) || die "build of bin/berth failed"
	berth=$repo/bin/berth
fi

# Both runs delete the containers a failing test leaves behind.
export RTV_CLEANUP=1
status=0
if [ "$runc" != none ] && [ "${RTV_REUSE_RUNC:-0}" = 1 ] && [ -s "$out/runc/summary.txt" ]; then
	echo "== runc: reusing $out/runc"
elif [ "$runc" != none ]; then
	[ -x "$runc" ] || die "reference runtime $runc not found (set RUNC, or RUNC=none)"
	echo "== runc: $runc"
	"$runner" "$runc" "$out/runc" >"$out/runc.log" 2>&1 || true
	tail -n 3 "$out/runc.log" | grep -E '^runtime-validation: (output|pass=)' || { tail -n 20 "$out/runc.log"; die "runc run failed"; }
fi
echo "== berth: $berth runtime"
RTV_RUNTIME_ARGS=runtime "$runner" "$berth" "$out/berth" >"$out/berth.log" 2>&1 || status=$?
tail -n 3 "$out/berth.log" | grep -E '^runtime-validation: (output|pass=)' || { tail -n 20 "$out/berth.log"; die "berth run failed"; }
[ "$status" -le 1 ] || exit "$status"

if [ "$runc" = none ]; then
	grep -E '^[a-z_]+ +(FAIL|BROKEN) ' "$out/berth/summary.txt" || true
	exit "$status"
fi

# Per file: the passed assertions ("ok" lines that are not skips) by their
# description, numbers and temporary names blanked so runs compare.
passes() {
	[ -f "$1" ] || return 0
	{ grep -E '^ok( |$)' "$1" || true; } | { grep -viE '# *skip' || true; } |
		sed -E 's/^ok [0-9]+ ?-? ?//; s/[0-9]+/N/g' | sort
}
status_of() { awk -v n="$2" '$1 == n { print $2 }' "$1/summary.txt"; }

echo "== per-file comparison (berth vs runc)"
worse=0 better=0
printf '%-32s %-7s %-7s %s\n' FILE RUNC BERTH NOTE
for f in $(awk '$2 ~ /^(PASS|FAIL|BROKEN)$/ { print $1 }' "$out/berth/summary.txt"); do
	rs=$(status_of "$out/runc" "$f") bs=$(status_of "$out/berth" "$f")
	[ -n "$rs" ] || continue # not in runc's run (RTV_ONLY differed)
	rp=$(passes "$out/runc/$f.tap" | wc -l) bp=$(passes "$out/berth/$f.tap" | wc -l)
	missing=$(comm -23 <(passes "$out/runc/$f.tap") <(passes "$out/berth/$f.tap") | sort -u | awk 'NR <= 3')
	# A file berth passes while runc's does not counts as better even with
	# fewer assertions: a *_fail test passes when the runtime refuses the
	# config before the container can report anything.
	note=
	if [ "$rs" = PASS ] && [ "$bs" != PASS ]; then note="WORSE: runc passes the file"
	elif [ "$rs" != PASS ] && [ "$bs" = PASS ]; then note="better: runc $rs pass=$rp, berth $bs pass=$bp"
	elif [ -n "$missing" ]; then note="WORSE: runc passes $rp assertions, berth $bp"
	elif [ "$bp" -gt "$rp" ]; then note="better: runc $rs pass=$rp, berth $bs pass=$bp"
	fi
	case $note in
	WORSE*) worse=$((worse + 1)) ;;
	better*) better=$((better + 1)) ;;
	esac
	if [ -n "$note" ] || [ "$rs" != PASS ] || [ "$bs" != PASS ]; then
		printf '%-32s %-7s %-7s %s\n' "$f" "$rs" "$bs" "$note"
		case $note in WORSE*) [ -z "$missing" ] || echo "$missing" | sed 's/^/    runc only: /' ;; esac
	fi
done
echo "runc:  $(tail -n 1 "$out/runc/summary.txt")"
echo "berth: $(tail -n 1 "$out/berth/summary.txt")"
echo "runtime-validation compare: berth worse than runc in $worse files, better in $better (output in $out)"
[ "$worse" = 0 ]
