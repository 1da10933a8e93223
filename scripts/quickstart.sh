#!/usr/bin/env bash
# quickstart.sh — the five-minute tour, run by `make quickstart` after
# `make build`: start a private daemon, build the hello image from
# examples/hello/Dockerfile with `berth build`, run it, stop.
#
# Everything lives under /tmp/berth-quickstart (data root, exec root,
# socket, log), so it never meets a system daemon. The data root is kept
# between runs: loading the same image twice is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

QS=${BERTH_QUICKSTART_DIR:-/tmp/berth-quickstart}
SOCK=$QS/berth.sock
export DOCKER_HOST=unix://$SOCK
berth() { bin/berth -H "$DOCKER_HOST" "$@"; }

if [ "$(id -u)" != 0 ]; then
	echo "quickstart: the daemon needs root (namespaces, mounts, cgroups); run: sudo make quickstart" >&2
	exit 1
fi
[ -x bin/berth ] || { echo "quickstart: bin/berth missing; run make build" >&2; exit 1; }

mkdir -p "$QS"
echo "==> writing the hello and busybox images to $QS"
if ! out=$(GOFLAGS=-mod=mod go run ./scripts/mkfixtures -o "$QS" 2>&1); then
	echo "$out" >&2
	exit 1
fi

echo "==> starting bin/berth daemon (log: $QS/daemon.log)"
rm -f "$SOCK"
bin/berth daemon --data-root "$QS/data" --exec-root "$QS/exec" -H "$DOCKER_HOST" \
	>"$QS/daemon.log" 2>&1 </dev/null &
daemon=$!
stop_daemon() {
	kill -TERM "$daemon" 2>/dev/null || return 0
	for _ in $(seq 1 50); do
		kill -0 "$daemon" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "quickstart: daemon $daemon ignored SIGTERM for 5 s; killing it" >&2
	kill -KILL "$daemon" 2>/dev/null || true
}
trap stop_daemon EXIT

for _ in $(seq 1 100); do
	[ -S "$SOCK" ] && break
	if ! kill -0 "$daemon" 2>/dev/null; then
		echo "quickstart: the daemon exited; its log:" >&2
		tail -20 "$QS/daemon.log" >&2
		exit 1
	fi
	sleep 0.1
done
[ -S "$SOCK" ] || { echo "quickstart: no socket at $SOCK after 10 s; see $QS/daemon.log" >&2; exit 1; }

echo "==> berth build -t hello examples/hello (FROM scratch + the static program, built by go)"
ctx=$QS/hello-context
rm -rf "$ctx" && mkdir -p "$ctx"
cp examples/hello/Dockerfile "$ctx/"
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$ctx/hello" ./examples/hello
berth build -t hello "$ctx"
echo "==> berth run --rm hello"
berth run --rm hello
echo "==> done; stopping the daemon"
