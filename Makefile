# Sluice — the two commands of the quickstart are `make run` and `make test`.
# Every target installs what it needs first (scripts/setup.sh is idempotent).

GO      ?= go
BIN     := bin
SLUICE  := $(BIN)/sluice
BACKEND := $(BIN)/demo-backend

.PHONY: all setup build sluice backend filters run test test-go test-sdk test-rust vet bench bench-quick clean

all: build

setup:
	@bash scripts/setup.sh

sluice:
	$(GO) build -o $(SLUICE) ./cmd/sluice

backend:
	cd examples && $(GO) build -o ../$(BACKEND) ./backend

# filters builds every example filter from source (TinyGo, Go, Rust and C).
filters: setup
	bash examples/build.sh
	@if [ -f examples/build-rust.sh ]; then bash examples/build-rust.sh; fi
	bash examples/build-c.sh

build: sluice backend filters

# run starts the demo: the backend on 127.0.0.1:9001 and the proxy on :8080.
run: build
	@bash scripts/run-demo.sh

STATICCHECK ?= $(shell command -v staticcheck || echo "$$($(GO) env GOPATH)/bin/staticcheck")

vet:
	$(GO) vet ./...
	cd sdk/go && $(GO) vet ./...
	cd examples && $(GO) vet ./...
	@test -x "$(STATICCHECK)" || { echo "staticcheck is not installed: run scripts/install-tools.sh"; exit 1; }
	"$(STATICCHECK)" ./...
	cd sdk/go && "$(STATICCHECK)" ./...
	cd examples && "$(STATICCHECK)" ./...

test: build vet test-go test-sdk test-rust

# The examples module's tests include the conformance kit, which runs every
# language's modules: they are built first (with CI set, a missing one fails).
test-go: filters
	$(GO) test -race -count=1 ./...
	cd examples && $(GO) test -race -count=1 ./...

test-sdk:
	cd sdk/go && $(GO) test -count=1 ./...

# test-rust runs the Rust SDK's tests and every Rust example's (with Debian's
# rustc and rustdoc: a rustup install on PATH would shadow them).
test-rust:
	@if [ -f examples/build-rust.sh ]; then bash examples/build-rust.sh --test; fi

bench: build
	$(GO) run ./cmd/sluice-bench

bench-quick: build
	$(GO) run ./cmd/sluice-bench -quick

clean:
	rm -rf $(BIN)
	find examples -name '*.wasm' -delete
