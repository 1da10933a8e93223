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
# MOBY_IT_SKIP defaults to the tests that, in remote-daemon mode, want to
# start a dockerd of their own and fail on every target ("Please set the
# DOCKER_INTEGRATION_DAEMON_DEST or the DEST environment variable"), and to
# TestRemoveContainerWithVolume, which indexes Mounts[0] after a failed
# check and panics the whole test binary while berth has no volumes (drop it
# from the list once volumes land). See docs/moby-integration.md.
# The last line of output is the runner's summary line:
#   moby-integration(./integration/container): pass=N fail=N skip=N
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

: "${MOBY_IT_SKIP=^(TestAttachDisconnectLeak|TestCDISpecDirsAreInSystemInfo|TestContainerShmSize|TestRemoveContainerWithVolume)\$}"
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

set +e
MOBY_IT_IMAGE_TAR=$DIR/fixtures/busybox.tar "$RUNNER" "unix://$SOCK" "$@"
rc=$?
set -e
exit $rc
