# berth — build, test, quickstart, benchmarks. `make help` lists the targets.

export PATH := /usr/local/go/bin:$(PATH)
export GOFLAGS := -mod=mod
export CGO_ENABLED := 0

GO        ?= go
BIN       := bin
# Root tests in several packages share the machine; 15 min bounds a hang
# well inside CI's 20.
TESTFLAGS ?= -count=1 -timeout 15m
FIXTURES  := $(BIN)/fixtures

.PHONY: all help deps build test unit fixtures quickstart bench lint clean moby build-compare

all: build

help:
	@echo "make build       bin/berth (static) and the bin/berth-runtime link"
	@echo "make test        deps, build, all Go tests (what CI runs)"
	@echo "make quickstart  start a private daemon, build the hello image and run it"
	@echo "make bench       bench/engine.sh, runtime.sh, registry.sh, network.sh, build.sh (berth vs docker, podman, runc, crun, skopeo, distribution)"
	@echo "make rtv         OCI runtime-tools validation: berth vs runc"
	@echo "make build-compare  build the builder corpus with dockerd and berth, print the differences"
	@echo "make moby        moby integration/container tests against a throw-away berth daemon"
	@echo "make lint        gofmt and go vet"
	@echo "make fixtures    write hello.tar, busybox.tar, busybox-oci.tar to $(FIXTURES)"

deps:
	@scripts/deps.sh

build:
	$(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/berth ./cmd/berth
	@ln -sfn berth $(BIN)/berth-runtime

test: deps build unit

unit:
	$(GO) test $(TESTFLAGS) ./...

fixtures:
	$(GO) run ./scripts/mkfixtures -o $(FIXTURES)

quickstart: build
	@scripts/quickstart.sh

# moby's own Engine API tests (../shared/suites) against a private daemon.
moby:
	@scripts/moby-integration.sh

# bench/compare-daemons.sh only holds helpers (private dockerd, podman) that
# engine.sh sources; run on its own it is a quick docker/podman reference.
bench: build
	bash bench/engine.sh
	bash bench/runtime.sh
	bash bench/registry.sh
	bash bench/network.sh
	bash bench/build.sh

lint:
	@out=$$(find . -name '*.go' -not -path './.git/*' -not -path './bin/*' -not -path '*/testdata/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN)

# OCI runtime-tools validation suite: berth runtime and runc side by side,
# compared per file (scripts/runtime-validation.sh; about 3 minutes, plus
# 2-3 minutes the first time to build the suite). CI runs the must-pass
# subset through `go test` (TestOCIRuntimeValidation).
.PHONY: rtv
rtv:
	@scripts/runtime-validation.sh $(RTV_OUT)

# OCI distribution-spec conformance suite (../shared/suites) against
# `berth registry serve` on a free loopback port with a temp root
# (scripts/distribution-conformance.sh; seconds, plus about a minute the
# first time to build the suite).
.PHONY: conformance
conformance:
	@scripts/distribution-conformance.sh $(DIST_CONF_ARGS)

# The builder corpus built by a private dockerd and by berth, field by field
# (docs/builder-compat.md explains each remaining difference).
build-compare: build
	@scripts/build-compare.sh
