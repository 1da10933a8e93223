#!/usr/bin/env bash
# moby-integration.sh — run moby's own Engine API integration tests
# (github.com/moby/moby/v2 ./integration/container by default) against a
# throw-away berth daemon. Run by `make moby`; needs root.
#
#   scripts/moby-integration.sh [PACKAGE...]
#
# Steps: build bin/berth; start `berth daemon` with its data root, exec root
# and socket in a new temp dir; write the busybox fixture tar (mkfixtures) and
# hand it to the shared runner as MOBY_IT_IMAGE_TAR; run the runner
# (../shared/suites/moby-integration.sh, or $MOBY_IT_RUNNER); then stop the
# daemon and its keeper by PID, unmount what is left below the temp dir,
# remove the containers' cgroups and the temp dir.
#
# The suite is DESTRUCTIVE for its target (it deletes everything it did not
# find), which is why it only ever sees the private daemon started here.
#
# Environment: everything the shared runner reads (MOBY_IT_RUN, MOBY_IT_SKIP,
# MOBY_IT_OUTDIR, ...), plus
#   MOBY_IT_RUNNER   path of the shared runner script
#   MOBY_IT_KEEP=1   keep the temp dir (data root, exec root) for debugging
# The daemon's and keeper's logs are copied to MOBY_IT_OUTDIR (a new temp dir
# unless set) as berth-daemon.log and berth-keeper.log.
# In remote mode (MOBY_IT_LOCAL=0) MOBY_IT_SKIP defaults to the tests that want to
# start a dockerd of their own and fail on every target ("Please set the
# DOCKER_INTEGRATION_DAEMON_DEST or the DEST environment variable").
# See docs/moby-integration.md.
# The last line of output is the summary line:
#   moby-integration(./integration/container): pass=N fail=N skip=N
#
# MOBY_IT_LOCAL=1 (the default; MOBY_IT_LOCAL=0 for the runner's remote mode)
# runs the tests in local-daemon mode: DOCKER_REMOTE_DAEMON is not set, so
# the "IsRemoteDaemon" tests run too and may look at host paths (/proc,
# cgroups, the data root). That is legitimate because the berth daemon
# runs on this host. The shared runner always sets DOCKER_REMOTE_DAEMON=1, so
# it is used only to build the test binary and to prepare the frozen images
# (with a -test.run that matches no test); the script then runs the cached
# binary itself from its package directory. The local-mode MOBY_IT_SKIP adds
# the tests that start a dockerd of their own through testutil/daemon.New
# (they need DOCKER_INTEGRATION_DAEMON_DEST and a dockerd binary, and test
# dockerd's flags and restarts, not the daemon under test).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS=-mod=mod

RUNNER=${MOBY_IT_RUNNER:-$(cd .. && pwd)/shared/suites/moby-integration.sh}
[ -x "$RUNNER" ] || { echo "moby-integration: runner $RUNNER not found (set MOBY_IT_RUNNER)" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
	echo "moby-integration: the berth daemon needs root; run: sudo make moby" >&2
	exit 2
fi

LOCAL=${MOBY_IT_LOCAL:-1}
if [ "$LOCAL" = 1 ]; then
	# Tests that call testutil/daemon.New (directly or through
	# testDaemonIpcPrivateShareable / testRunWithCgroupNs /
	# testCreateFailureWithCgroupNs), plus the volume panic below.
	: "${MOBY_IT_SKIP=^(TestAttachDisconnectLeak|TestCDI.*|TestCreateWithCDIDevices|TestEtcCDI|TestContainerShmSize|TestCopyToContainerXZBinaryNotExecutedOnDaemon|TestContainerStartOnDaemonRestart|TestDaemonRestartIpcMode|TestDaemonHostGatewayIP|TestRestartDaemonWithRestartingContainer|TestHardRestartWhenContainerIsRunning|TestContainerKillOnDaemonStart|TestNetworkStateCleanupOnDaemonStart|TestExportContainerAfterDaemonRestart|TestRemoveDeadContainersOnDaemonRestart|TestDaemonRestartKillContainers|TestCgroupNamespacesRun.*|TestRunWithAlternativeContainerdShim|TestMacAddressIsAppliedToMainNetworkWithShortID|TestStaticIPOutsideSubpool|TestDaemonIpcMode.*)\$}"
else
	: "${MOBY_IT_SKIP=^(TestAttachDisconnectLeak|TestCDISpecDirsAreInSystemInfo|TestContainerShmSize)\$}"
fi
export MOBY_IT_SKIP

echo "==> building bin/berth"
CGO_ENABLED=0 go build -trimpath -o bin/berth ./cmd/berth

DIR=$(mktemp -d -t berth-moby.XXXXXX)
# The runner's logs, and the daemon's and keeper's logs copied at the end.
export MOBY_IT_OUTDIR=${MOBY_IT_OUTDIR:-$(mktemp -d -t moby-integration.XXXXXX)}
mkdir -p "$MOBY_IT_OUTDIR"
SOCK=$DIR/berth.sock
DATA=$DIR/data
EXEC=$DIR/exec
daemon=

cleanup() {
	local rc=$?
	if [ -n "$daemon" ]; then
		kill -TERM "$daemon" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	cp "$DIR/daemon.log" "$MOBY_IT_OUTDIR/berth-daemon.log" 2>/dev/null || true
	cp "$EXEC/keeper.log" "$MOBY_IT_OUTDIR/berth-keeper.log" 2>/dev/null || true
	# The keeper holds the containers; killing it ends them (their init
	# processes die with their pid namespaces).
	if [ -f "$EXEC/keeper.pid" ]; then
		kp=$(cat "$EXEC/keeper.pid")
		case "$kp" in '' | *[!0-9]*) ;; *) [ "$kp" -gt 1 ] && kill -KILL "$kp" 2>/dev/null || true ;; esac
	fi
	sleep 0.3
	# Unmount deepest first whatever is still mounted below the temp dir.
	awk -v d="$DIR" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	# Cgroups of containers this daemon still knew about; their processes
	# may take a moment to leave them.
	if [ -d "$DATA/containers" ]; then
		for id in $(ls "$DATA/containers"); do
			for cg in /sys/fs/cgroup/*/berth/"$id"; do
				for _ in $(seq 1 30); do
					[ -d "$cg" ] || break
					rmdir "$cg" 2>/dev/null && break
					sleep 0.1
				done
			done
		done
	fi
	if [ "${MOBY_IT_KEEP:-0}" = 1 ]; then
		echo "moby-integration: kept $DIR (daemon log: $DIR/daemon.log)" >&2
	else
		rm -rf "$DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> writing the busybox fixture to $DIR"
go run ./scripts/mkfixtures -o "$DIR/fixtures" 2>/dev/null

echo "==> starting bin/berth daemon (log: $DIR/daemon.log)"
bin/berth daemon -H "unix://$SOCK" --data-root "$DATA" --exec-root "$EXEC" \
	>"$DIR/daemon.log" 2>&1 </dev/null &
daemon=$!
for _ in $(seq 1 200); do
	[ -S "$SOCK" ] && break
	if ! kill -0 "$daemon" 2>/dev/null; then
		echo "moby-integration: the daemon exited; its log:" >&2
		tail -20 "$DIR/daemon.log" >&2
		exit 2
	fi
	sleep 0.1
done
[ -S "$SOCK" ] || { echo "moby-integration: no socket at $SOCK after 20 s" >&2; exit 2; }

if [ "$LOCAL" != 1 ]; then
	set +e
	MOBY_IT_IMAGE_TAR=$DIR/fixtures/busybox.tar "$RUNNER" "unix://$SOCK" "$@"
	rc=$?
	set -e
	exit $rc
fi

# Local mode. The runner builds the binaries and tags the frozen images; no
# test matches its -test.run.
echo "==> preparing the target with the shared runner (log: $MOBY_IT_OUTDIR/prepare.log)"
if ! MOBY_IT_IMAGE_TAR=$DIR/fixtures/busybox.tar MOBY_IT_RUN='^$' MOBY_IT_SKIP= \
	MOBY_IT_OUTDIR=$MOBY_IT_OUTDIR/prepare "$RUNNER" "unix://$SOCK" "$@" >"$MOBY_IT_OUTDIR/prepare.log" 2>&1; then
	echo "moby-integration: preparing the target failed:" >&2
	tail -20 "$MOBY_IT_OUTDIR/prepare.log" >&2
	exit 2
fi
SRC=${SUITES_CACHE:-/var/cache/berth-suites}/moby/v2.0.0-beta.24/src
BIN=$(dirname "$SRC")/bin
if [ -z "${TEST_INTEGRATION_USE_GRAPHDRIVER+x}" ] &&
	! curl -sS --unix-socket "$SOCK" http://localhost/info | grep -q io.containerd.snapshotter; then
	export TEST_INTEGRATION_USE_GRAPHDRIVER=1
fi
flags=(-test.v "-test.timeout=${MOBY_IT_TIMEOUT:-60m}")
[ -n "${MOBY_IT_RUN:-}" ] && flags+=("-test.run=$MOBY_IT_RUN")
[ -n "${MOBY_IT_SKIP:-}" ] && flags+=("-test.skip=$MOBY_IT_SKIP")
# shellcheck disable=SC2206
[ -n "${MOBY_IT_TESTFLAGS:-}" ] && flags+=(${MOBY_IT_TESTFLAGS})
[ $# -gt 0 ] || set -- ./integration/container
overall=0
lines=()
for p in "$@"; do
	p=./${p#./}
	name=${p#./integration/}
	name=${name//\//-}
	log=$MOBY_IT_OUTDIR/$name.log
	echo "==> running $p in local-daemon mode (log: $log)"
	set +e
	(cd "$SRC/${p#./}" && env -u DOCKER_REMOTE_DAEMON DOCKER_HOST="unix://$SOCK" \
		"$BIN/$name.test" "${flags[@]}") 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
	[ "$rc" = 0 ] || overall=1
	pass=$(grep -c '^--- PASS: ' "$log" || true)
	fail=$(grep -c '^--- FAIL: ' "$log" || true)
	skip=$(grep -c '^--- SKIP: ' "$log" || true)
	grep '^--- FAIL: ' "$log" | sed "s|^|  $p |" >>"$MOBY_IT_OUTDIR/summary.txt" || true
	lines+=("moby-integration($p): pass=$pass fail=$fail skip=$skip")
done
printf '%s\n' "${lines[@]}" | tee -a "$MOBY_IT_OUTDIR/summary.txt"
exit $overall
