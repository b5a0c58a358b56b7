# Switchyard — build, run, test, benchmark.
#
#   make run     the router on config.example.toml, with an echo backend
#   make test    go vet + go test -race ./..., in the router's module and in bench/
#   make bench           throughput, CPU/GiB, conn rate, RTT, idle memory: router, direct, haproxy, nginx
#   make bench-compare   the same for two commits side by side, with charts (BASE=main HEAD=<ref>)
#   make profile         CPU and heap profiles of the router under load, with SVG call graphs
#   make bench-reload    what 20 reloads under load cost clients: router, haproxy, nginx
#
# The benchmark harness (bench/cmd/...) is a Go module of its own, bench/,
# so that the router's go.mod lists only what the router uses; it builds
# into $(BIN) beside the router.

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
BIN         := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 30s
RESULTS     := bench/results
BENCH_RUNS  ?= 3
BASE        ?= main
HEAD        ?=
BENCH_FLAGS ?=
export BENCH_RUNS

export GOTOOLCHAIN := local

.PHONY: all build run test fuzz lint bench bench-compare bench-reload profile proto deps iperf3 graphviz systemd-analyze haproxy nginx clean

all: build

deps:
	$(GO) mod download
	cd bench && $(GO) mod download

build: deps
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/switchyard ./cmd/switchyard
	$(GO) build -trimpath -o $(BIN)/switchyard-echo ./cmd/switchyard-echo
	cd bench && $(GO) build -trimpath -o ../$(BIN)/switchyard-bench ./cmd/switchyard-bench
	cd bench && $(GO) build -trimpath -o ../$(BIN)/switchyard-benchplot ./cmd/switchyard-benchplot
	cd bench && $(GO) build -trimpath -o ../$(BIN)/switchyard-reloadbench ./cmd/switchyard-reloadbench

# The example config routes 127.0.0.1:7475 to an echo server on 127.0.0.1:7007
# (started here) and 127.0.0.1:7474 to iperf3 on 127.0.0.1:5201 (started here
# when iperf3 is installed). Ctrl-C stops all of them.
run: build
	@set -e; \
	trap 'kill $$(jobs -p) 2>/dev/null || true' EXIT INT TERM; \
	$(BIN)/switchyard-echo -listen 127.0.0.1:7007 & \
	if command -v iperf3 >/dev/null; then iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null & \
	else echo "iperf3 not installed (apt-get install -y iperf3): only the echo route has a backend"; fi; \
	echo "try: bash -c 'exec 3<>/dev/tcp/127.0.0.1/7475; echo hello >&3; head -1 <&3'    or: iperf3 -c 127.0.0.1 -p 7474"; \
	$(BIN)/switchyard -config config.example.toml

# ./... stops at bench/, a module of its own: its tests run after the router's.
test: deps systemd-analyze haproxy
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...
	cd bench && $(GO) vet ./... && $(GO) test -race -count=1 -timeout 12m ./...

# Every fuzz target, package:Target, each for FUZZTIME (go test runs one
# target per invocation).
FUZZ_TARGETS := ./router:FuzzParse ./interpreter:FuzzParseEndpoint \
	./interpreter/namerd:FuzzAnswerStream \
	./interpreter/file:FuzzParseFile ./interpreter/file:FuzzName \
	./interpreter/dns:FuzzParseName ./interpreter/dns:FuzzReadAnswer \
	./interpreter/dns:FuzzParseServer ./interpreter/dns:FuzzReadServers \
	./interpreter/destination:FuzzWireAddr ./interpreter/destination:FuzzUpdateSequence \
	./interpreter/destination:FuzzUpdateWire \
	./interpreter/consul:FuzzReadHealth ./interpreter/consul:FuzzEndpointAddr \
	./server:FuzzServerName ./server:FuzzParseProxy ./server:FuzzProxyTextAddr \
	./cmd/internal/systemd:FuzzParseFDNames ./cmd/internal/systemd:FuzzParseFDCount \
	./cmd/internal/systemd:FuzzWatchdogInterval
# The harness's, in its own module (bench/).
BENCH_FUZZ_TARGETS := ./cmd/switchyard-bench:FuzzParseIperf ./cmd/switchyard-bench:FuzzParseStat \
	./cmd/switchyard-bench:FuzzParseMachineBusy ./cmd/switchyard-bench:FuzzOffloadFlag \
	./cmd/switchyard-benchplot:FuzzParseSummary

fuzz: deps
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== $${t##*:} ($${t%%:*})"; \
	  $(GO) test -run '^$$' -fuzz "^$${t##*:}\$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done; \
	cd bench; for t in $(BENCH_FUZZ_TARGETS); do \
	  echo "== $${t##*:} (bench/$${t%%:*})"; \
	  $(GO) test -run '^$$' -fuzz "^$${t##*:}\$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

lint: deps
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

# Regenerates interpreter/destination/destpb from its .proto files. Needs
# protoc (gen.sh installs Debian's protobuf-compiler when run as root); the
# plugins are pinned in gen.sh. The output is committed: build, test and CI
# do not need this.
proto:
	bash interpreter/destination/gen.sh

# The unit files in dist/systemd are checked with systemd-analyze verify.
systemd-analyze:
	@command -v systemd-analyze >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq systemd; \
	  else echo "the tests need systemd-analyze: sudo apt-get install -y systemd"; exit 1; fi; }

# The PROXY protocol tests talk to a real HAProxy, both ways; the
# benchmarks measure it beside the router when it is installed (without it,
# make test fails and the benchmarks skip it with a note).
haproxy:
	@command -v haproxy >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq haproxy; \
	  else echo "the tests need haproxy, and the benchmarks measure it: sudo apt-get install -y haproxy"; \
	  $(if $(filter test,$(MAKECMDGOALS)),exit 1,true); fi; }

# The benchmarks measure nginx's stream proxy beside the router when nginx
# and its stream module (built in, or Debian's libnginx-mod-stream) are
# installed, and skip it with a note when not.
nginx:
	@{ command -v nginx >/dev/null && { nginx -V 2>&1 | tr ' ' '\n' | grep -qx -- --with-stream || \
	  ls /usr/lib/nginx/modules/ngx_stream_module.so /usr/share/nginx/modules/ngx_stream_module.so \
	     /usr/lib64/nginx/modules/ngx_stream_module.so 2>/dev/null | grep -q .; }; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq nginx libnginx-mod-stream; \
	  else echo "the benchmarks measure nginx stream when installed: sudo apt-get install -y nginx libnginx-mod-stream"; fi; }

iperf3:
	@command -v iperf3 >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq iperf3; \
	  else echo "the benchmarks need iperf3: sudo apt-get install -y iperf3"; exit 1; fi; }

graphviz:
	@command -v dot >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq graphviz; \
	  else echo "SVG call graphs need graphviz: sudo apt-get install -y graphviz"; fi; }

# haproxy and nginx (libnginx-mod-stream) are installed when run as root,
# measured when installed and skipped with a note when not. BENCH_RUNS
# rounds (default 3).
bench: build iperf3 haproxy nginx
	$(BIN)/switchyard-bench -switchyard $(BIN)/switchyard -echo $(BIN)/switchyard-echo -out-dir $(RESULTS) $(BENCH_FLAGS)

# Clients make short connections through each proxy while its
# configuration is reloaded 20 times (the endpoint alternating between two
# backends), and as long without: failures, longest gap between
# connections served, latency. haproxy and nginx are measured when
# installed.
bench-reload: build haproxy nginx
	@mkdir -p $(RESULTS)
	$(BIN)/switchyard-reloadbench -switchyard $(BIN)/switchyard -out $(RESULTS)/reload.md $(RELOAD_FLAGS)

# Builds BASE (default main) and HEAD (default: this working tree) in
# temporary worktrees, measures both in one interleaved session beside
# direct, and writes charts and a ratio table to bench/results/compare-*.
bench-compare: build iperf3
	@set -e; tmp=$$(mktemp -d); \
	trap 'git worktree remove --force "$$tmp/base" >/dev/null 2>&1 || true; git worktree remove --force "$$tmp/head" >/dev/null 2>&1 || true; git worktree prune; rm -rf "$$tmp"' EXIT; \
	base=$$(git rev-parse --short "$(BASE)"); \
	git worktree add -q --detach "$$tmp/base" "$(BASE)"; \
	(cd "$$tmp/base" && $(GO) build -trimpath -o "$$tmp/switchyard-base" ./cmd/switchyard); \
	if [ -n "$(HEAD)" ]; then \
	  head=$$(git rev-parse --short "$(HEAD)"); \
	  git worktree add -q --detach "$$tmp/head" "$(HEAD)"; \
	  (cd "$$tmp/head" && $(GO) build -trimpath -o "$$tmp/switchyard-head" ./cmd/switchyard); \
	else head=$(VERSION); cp $(BIN)/switchyard "$$tmp/switchyard-head"; fi; \
	$(BIN)/switchyard-bench -switchyard "base=$$tmp/switchyard-base" -switchyard "head=$$tmp/switchyard-head" \
	  -targets direct,switchyard -echo $(BIN)/switchyard-echo -out-dir "$$tmp/out" $(BENCH_FLAGS); \
	dir=$(RESULTS)/compare-$$base-$$head; mkdir -p "$$dir"; rm -f "$$dir"/*.json "$$dir"/*.txt; cp "$$tmp"/out/*.json "$$tmp"/out/*.txt "$$dir/"; \
	$(BIN)/switchyard-benchplot -base base -head head -out "$$dir" "$$dir"/*.json; \
	abs=$$(cd "$$dir" && pwd); (cd bench && $(GO) run golang.org/x/perf/cmd/benchstat -col /target -filter '/target:(base OR head)' "$$abs"/*.txt) > "$$dir/benchstat.txt"; \
	echo "charts and table: $$dir (benchstat's verdict: $$dir/benchstat.txt)"

# Profiles the router under the throughput, connection-rate and request/response loads.
# Open one interactively with: go tool pprof -http=: bin/switchyard bench/results/profile-*/cpu.pprof
profile: build iperf3 graphviz
	$(BIN)/switchyard-bench -switchyard $(BIN)/switchyard -echo $(BIN)/switchyard-echo -profile-dir $(RESULTS)/profile-$(VERSION) $(BENCH_FLAGS)

clean:
	rm -rf $(BIN)
