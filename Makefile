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

.PHONY: all help deps build test unit fixtures quickstart bench lint clean

all: build

help:
	@echo "make build       bin/berth (static) and the bin/berth-runtime link"
	@echo "make test        deps, build, all Go tests (what CI runs)"
	@echo "make quickstart  start a private daemon, load and run the hello image"
	@echo "make bench       run every bench/*.sh"
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

bench: build
	@set -e; found=0; \
	for f in bench/*.sh; do \
		[ -f "$$f" ] || continue; found=1; \
		echo "== $$f"; bash "$$f"; \
	done; \
	[ $$found = 1 ] || echo "no bench/*.sh scripts yet"

lint:
	@out=$$(find . -name '*.go' -not -path './.git/*' -not -path './bin/*' -not -path '*/testdata/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
