# secrun: the targets read like the README.
GO        ?= go
BIN       := $(CURDIR)/bin
GOTEST    ?= $(GO) test
TESTFLAGS ?= -timeout 45m
export SECRUN_RUNC := $(BIN)/runc

.PHONY: all deps build install demo test bench lint clean

all: build

## deps: install Debian packages, the pinned runc and cosign (idempotent)
deps:
	./scripts/deps.sh

## build: bin/secrun, bin/secrun-runc and the in-container init helper
build:
	CGO_ENABLED=1 $(GO) build -o $(BIN)/secrun ./cmd/secrun
	@if [ -d cmd/secrun-runc ] && ls cmd/secrun-runc/*.go >/dev/null 2>&1; then CGO_ENABLED=1 $(GO) build -o $(BIN)/secrun-runc ./cmd/secrun-runc; fi
	@if [ -d cmd/secrun-init ] && ls cmd/secrun-init/*.go >/dev/null 2>&1; then CGO_ENABLED=0 $(GO) build -o $(BIN)/secrun-init ./cmd/secrun-init; fi

## install: copy the binaries (and the pinned runc) to $(PREFIX)/bin
PREFIX ?= /usr/local
install: build
	install -d $(PREFIX)/bin
	install -m 0755 $(BIN)/secrun $(PREFIX)/bin/secrun
	@for b in secrun-runc secrun-init; do [ -f $(BIN)/$$b ] && install -m 0755 $(BIN)/$$b $(PREFIX)/bin/$$b || true; done

## demo: the main job end to end, on this machine
demo: deps build
	./scripts/demo.sh

## test: every test, kernel tests included (they need root)
test: deps build
	$(GO) vet ./...
	$(GOTEST) $(TESTFLAGS) ./...

## bench: secrun against bare runc in the same run, plus the hot paths
bench: deps build
	$(GOTEST) -run '^$$' -bench . -benchtime 20x -timeout 30m ./runner/
	$(GOTEST) -run '^$$' -bench . -timeout 30m ./policy/ ./audit/ ./verify/ ./image/ ./seccomp/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

clean:
	rm -rf $(BIN) .demo
