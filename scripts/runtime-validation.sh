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
# About 25 s once the suite is built (the first build adds 2-3 minutes).
#
# Builds bin/berth, then runs the shared runner
# (../shared/suites/runtime-validation.sh, see its README section 2) twice:
# OUTDIR/runc and OUTDIR/berth hold NAME.tap, NAME.err and summary.txt per
# runtime. Prints both runners' summary lines and a table with one line per
# test file: runc's and berth's file status and passed/failed assertions,
# and a verdict. Assertions are compared by their text (as a multiset), not
# only counted: a file is WORSE when runc passes it and berth does not, or
# when any assertion runc passes is failing or absent in berth's output
# (listed as "runc only:"). Exceptions, each printed: a *_fail file berth
# passes with no output (it refused the invalid config, as it must) while
# runc ran the container. A WORSE file is rerun for berth alone up to
# RTV_RERUN times; one that matches runc in a rerun is reported FLAKY (a
# race in the test itself, e.g. killsig, which runc loses at about the same
# rate), with the rerun's directory. The first run builds the suite (about
# 2-3 minutes, cached in $SUITES_CACHE, default /var/cache/berth-suites,
# which the runner creates); later runs take 1-2 minutes per runtime.
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
#   RTV_RERUN      reruns of a WORSE file before it counts as worse (default 2)
#   RTV_STRICT     1 = FLAKY files count as worse for the exit status
#
# Exit status: 0 when no file is WORSE, i.e. berth passes every file and
# every assertion runc passes, at least in one of the reruns (with
# RUNC=none: the berth run's own status); 1 otherwise; 2 for setup errors.
# Needs root.
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

# Per file, every assertion by its text: the "ok" / "not ok" lines minus
# skips and todos, with the TAP number stripped and UUIDs and temp names
# blanked so runs compare. Numbers stay: "RLIMIT_NOFILE soft 1024" and
# "... 2048" are different checks.
texts() { # ok|notok TAPFILE
	[ -f "$2" ] || return 0
	local re='^ok( |$)'
	[ "$1" = notok ] && re='^not ok( |$)'
	{ grep -E "$re" "$2" || true; } | { grep -viE '# *(skip|todo)' || true; } |
		sed -E 's/^(not )?ok *[0-9]* *-? *//
			s/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uuid>/g
			s/(ocitest|runtime-validation-bundles\.)[A-Za-z0-9_.]+/\1<tmp>/g' | LC_ALL=C sort
}
status_of() { [ -f "$1/summary.txt" ] || return 0; awk -v n="$2" '$1 == n { print $2 }' "$1/summary.txt"; }

# judge RUNCDIR BERTHDIR FILE sets rs bs (file status), rp rf bp bf (passed
# and failed assertions), missing (runc's passing assertions berth does not
# pass, as a multiset, each tagged with what berth did instead) and verdict:
# WORSE, better, same.
judge() {
	local rdir=$1 bdir=$2 f=$3
	rs=$(status_of "$rdir" "$f") bs=$(status_of "$bdir" "$f")
	rp=$(texts ok "$rdir/$f.tap" | wc -l) rf=$(texts notok "$rdir/$f.tap" | wc -l)
	bp=$(texts ok "$bdir/$f.tap" | wc -l) bf=$(texts notok "$bdir/$f.tap" | wc -l)
	missing=$(LC_ALL=C comm -23 <(texts ok "$rdir/$f.tap") <(texts ok "$bdir/$f.tap") | LC_ALL=C sort -u |
		while IFS= read -r a; do
			if texts notok "$bdir/$f.tap" | grep -qxF -- "$a"; then echo "$a  [berth: not ok]"
			else echo "$a  [berth: absent]"; fi
		done)
	verdict=same note=same
	if [ "$bs" = PASS ] && [ "$rs" != PASS ] && [ ! -s "$bdir/$f.tap" ] && [[ $f == *_fail ]]; then
		# A *_fail test passes with no output when the runtime refuses the
		# invalid config, as it must; runc ran the container instead and its
		# assertions come from inside it. Not a loss.
		verdict=better note="berth refused the invalid config; runc ran it ($rs)"
	elif [ "$rs" = PASS ] && [ "$bs" != PASS ]; then
		verdict=WORSE note="runc passes the file, berth is ${bs:-missing}"
	elif [ -n "$missing" ]; then
		verdict=WORSE note="berth lacks $(echo "$missing" | wc -l) of runc's passing assertions"
	elif [ "$rs" != PASS ] && [ "$bs" = PASS ]; then
		verdict=better note="berth passes the file, runc is $rs"
	elif [ "$bp" -gt "$rp" ] || [ "$bf" -lt "$rf" ]; then
		verdict=better note="berth passes more assertions"
	fi
}

echo "== per-file comparison (berth vs runc; pass/fail = assertions)"
rerun=${RTV_RERUN:-2}
worse=() flaky=() better=0 same=0
printf '%-32s %-16s %-16s %s\n' FILE RUNC BERTH NOTE
for f in $(awk '$2 ~ /^(PASS|FAIL|BROKEN)$/ { print $1 }' "$out/runc/summary.txt" "$out/berth/summary.txt" | sort -u); do
	judge "$out/runc" "$out/berth" "$f"
	if [ -z "$rs" ] || [ -z "$bs" ]; then # RTV_ONLY differed between the runs
		printf '%-32s %-16s %-16s %s\n' "$f" "${rs:--}" "${bs:--}" "not run by both, not compared"
		continue
	fi
	cols=$(printf '%-32s %-16s %-16s' "$f" "$rs $rp/$rf" "$bs $bp/$bf")
	first_missing=$missing first_note=$note
	if [ "$verdict" = WORSE ]; then
		# A loss that does not come back in a rerun is a race in the test
		# (killsig: a signal sent before the shell has set its trap is
		# dropped by the kernel, for any runtime). Say so, never hide it.
		k=1
		while [ "$verdict" = WORSE ] && [ "$k" -le "$rerun" ]; do
			rd=$out/rerun-$f-$k
			rm -rf "$rd" "$rd.log"
			RTV_ONLY="^$f\$" RTV_RUNTIME_ARGS=runtime "$runner" "$berth" "$rd" >"$rd.log" 2>&1 || true
			judge "$out/runc" "$rd" "$f"
			k=$((k + 1))
		done
		if [ "$verdict" = WORSE ]; then
			worse+=("$f")
			echo "$cols WORSE: $first_note (also in $rerun reruns, the last: $note)"
		else
			flaky+=("$f")
			echo "$cols FLAKY: worse in the first run, as good as runc in rerun $((k - 1)) ($rd)"
		fi
		[ -z "$first_missing" ] || echo "$first_missing" | awk 'NR <= 5' | sed 's/^/    runc only: /'
		continue
	fi
	case $verdict in better) better=$((better + 1)) ;; same) same=$((same + 1)) ;; esac
	echo "$cols $note"
done
echo "runc:  $(tail -n 1 "$out/runc/summary.txt")"
echo "berth: $(tail -n 1 "$out/berth/summary.txt")"
echo "runtime-validation compare: berth worse than runc in ${#worse[@]} files${worse:+ (${worse[*]})}," \
	"flaky ${#flaky[@]}${flaky:+ (${flaky[*]})}, better in $better, same in $same (output in $out)"
[ "${#worse[@]}" = 0 ] && { [ "${RTV_STRICT:-0}" = 0 ] || [ "${#flaky[@]}" = 0 ]; }
