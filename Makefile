# secrun: the targets read like the README.
GO        ?= go
BIN       := $(CURDIR)/bin
GOTEST    ?= $(GO) test
TESTFLAGS ?= -timeout 45m
export SECRUN_RUNC := $(BIN)/runc

.PHONY: all deps build install demo test bench conformance lint clean

all: build

## deps: install Debian packages, the pinned runc and cosign (idempotent)
deps:
	./scripts/deps.sh

## build: bin/secrun (the light front) and bin/secrun-engine (the full build it hands off to),
## bin/secrun-runc (+ its policy half and signature helper) and the static in-container init
build:
	CGO_ENABLED=1 $(GO) build -tags secrun_noengine -o $(BIN)/secrun ./cmd/secrun
	CGO_ENABLED=1 $(GO) build -o $(BIN)/secrun-engine ./cmd/secrun
	CGO_ENABLED=0 $(GO) build -o $(BIN)/secrun-runc ./cmd/secrun-runc
	CGO_ENABLED=1 $(GO) build -o $(BIN)/secrun-runc-admit ./cmd/secrun-runc/admit
	CGO_ENABLED=1 $(GO) build -o $(BIN)/secrun-runc-verify ./cmd/secrun-runc/verify
	CGO_ENABLED=0 $(GO) build -o $(BIN)/secrun-init ./cmd/secrun-init

## install: copy the binaries and the pinned runc they default to into $(PREFIX)/bin
PREFIX ?= /usr/local
install: build
	install -d $(PREFIX)/bin
	for b in secrun secrun-engine secrun-runc secrun-runc-admit secrun-runc-verify secrun-init runc; do install -m 0755 $(BIN)/$$b $(PREFIX)/bin/$$b; done

## demo: the main job end to end, on this machine
demo: deps build
	./scripts/demo.sh

## test: every test, kernel tests included (they need root)
test: deps build
	$(GO) vet ./...
	$(GO) vet -tags secrun_noengine ./cmd/secrun ./runner ./audit
	$(GOTEST) $(TESTFLAGS) ./...

## bench: secrun against bare runc in the same run, plus the hot paths
bench: deps build
	$(GOTEST) -run '^$$' -bench . -benchtime 20x -timeout 30m ./runner/
	$(GOTEST) -run '^$$' -bench . -timeout 30m ./policy/ ./audit/ ./verify/ ./image/ ./seccomp/

## conformance: the OCI runtime-tools validation suite against runc and secrun-runc (root)
conformance: deps build
	./scripts/runtime-conformance.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

clean:
	rm -rf $(BIN) .demo
