#!/usr/bin/env bash
# distribution-conformance.sh — run the OCI distribution-spec conformance
# suite against `berth registry serve`. Run by `make conformance`.
#
#   scripts/distribution-conformance.sh [VAR=VAL...]
#
# Steps: build bin/berth; start `berth registry serve` on a free 127.0.0.1
# port with a new temp dir as its root; wait for /v2/; run the shared runner
# (../shared/suites/distribution-conformance.sh, or $DIST_CONF_RUNNER) with
# the given VAR=VAL settings (e.g. OCI_VERSION=1.0); stop the server by its
# PID and remove the temp dir.
#
# Environment: everything the shared runner reads (DIST_CONF_OUTDIR,
# DIST_CONF_VERBOSE, OCI_*), plus
#   DIST_CONF_RUNNER  path of the shared runner script
#   DIST_CONF_KEEP=1  keep the temp dir (registry root and server log)
# The last line of output is the runner's summary line:
#   distribution-conformance: pass=N fail=N skip=N total=N
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS=-mod=mod

RUNNER=${DIST_CONF_RUNNER:-$(cd .. && pwd)/shared/suites/distribution-conformance.sh}
[ -x "$RUNNER" ] || { echo "distribution-conformance: runner $RUNNER not found (set DIST_CONF_RUNNER)" >&2; exit 2; }

echo "==> building bin/berth"
CGO_ENABLED=0 go build -trimpath -o bin/berth ./cmd/berth

DIR=$(mktemp -d -t berth-registry.XXXXXX)
PID=
cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	if [ "${DIST_CONF_KEEP:-}" = 1 ]; then
		echo "distribution-conformance: kept $DIR" >&2
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT

# A free loopback port: bind port 0, read what the kernel chose, release it.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
ADDR=127.0.0.1:$PORT

bin/berth registry serve --addr "$ADDR" --root "$DIR/root" >"$DIR/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
	curl -fsS -o /dev/null "http://$ADDR/v2/" 2>/dev/null && break
	kill -0 "$PID" 2>/dev/null || { cat "$DIR/server.log" >&2; echo "distribution-conformance: server exited" >&2; exit 2; }
	sleep 0.1
done

echo "==> running the suite against berth registry serve at $ADDR (root $DIR/root)"
rc=0
"$RUNNER" "$ADDR" "$@" || rc=$?
exit $rc
