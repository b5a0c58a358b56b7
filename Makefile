# Switchyard — build, run, test, benchmark.
#
#   make run     the router on config.example.toml, with an echo backend
#   make test    go vet + go test -race ./...
#   make bench   iperf3 through the router and directly

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
BIN         := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 30s

export GOTOOLCHAIN := local

.PHONY: all build run test test-short fuzz lint bench deps iperf3 clean

all: build

deps:
	$(GO) mod download

build: deps
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/switchyard ./cmd/switchyard
	$(GO) build -trimpath -o $(BIN)/switchyard-echo ./cmd/switchyard-echo
	$(GO) build -trimpath -o $(BIN)/switchyard-bench ./cmd/switchyard-bench

# The example config routes 127.0.0.1:7475 to an echo server on 127.0.0.1:7007
# (started here) and 127.0.0.1:7474 to iperf3 on 127.0.0.1:5201 (started here
# when iperf3 is installed). Ctrl-C stops all of them.
run: build
	@set -e; \
	trap 'kill $$(jobs -p) 2>/dev/null || true' EXIT INT TERM; \
	$(BIN)/switchyard-echo -listen 127.0.0.1:7007 & \
	if command -v iperf3 >/dev/null; then iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null & \
	else echo "iperf3 not installed (apt-get install -y iperf3): only the echo route has a backend"; fi; \
	echo "try: echo hello | nc -N 127.0.0.1 7475    or: iperf3 -c 127.0.0.1 -p 7474"; \
	$(BIN)/switchyard -config config.example.toml

test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...

# Each fuzz target for FUZZTIME (go test runs only one target per invocation).
fuzz: deps
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./router
	$(GO) test -run '^$$' -fuzz '^FuzzParseEndpoint$$' -fuzztime $(FUZZTIME) ./interpreter

lint: deps
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

iperf3:
	@command -v iperf3 >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq iperf3; \
	  else echo "bench needs iperf3: sudo apt-get install -y iperf3"; exit 1; fi; }

bench: build iperf3
	$(BIN)/switchyard-bench -switchyard $(BIN)/switchyard

clean:
	rm -rf $(BIN)
