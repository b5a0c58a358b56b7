// Command switchyard-bench compares Switchyard with a direct connection and
// with HAProxy and nginx stream, over loopback. It is what `make bench` runs.
//
//	switchyard-bench [-switchyard [NAME=]PATH]... [-targets direct,switchyard,haproxy,nginx]
//	                 [-only throughput,connrate,connrate-edge,rtt,idle] [-runs N] [-out-dir bench/results]
//	switchyard-bench -profile-dir DIR [-switchyard PATH]
//
// It starts an iperf3 server and switchyard-echo as backends and, every
// round, a fresh instance of every proxy fronting both. Each round runs
// each measurement against every target in turn, the targets in an order
// rotated every round, so that drift of the machine touches all alike:
//
//   - throughput: iperf3 -J, 1 and 4 streams, both directions, with the
//     proxy's CPU seconds per GiB read from /proc over its process tree;
//   - connrate: workers looping connect, echo 32 B, close;
//   - connrate-edge: the same loop, closing with RST, in three variants
//     run one after the other: plain (32 B on the plain route), sni (a
//     fixed TLS ClientHello for bench.test, echoed, through a frontend
//     that routes by its server name: Switchyard's dst "/svc/{sni}",
//     HAProxy's req_ssl_sni) and proxy (a PROXY v2 header and 32 B, the
//     32 B echoed, through a frontend that takes the header: Switchyard's
//     proxy_protocol = "v2", HAProxy's accept-proxy), each variant's
//     conn/s and its ratio to the same round's plain, for switchyard,
//     haproxy and direct (plain and sni); its own table;
//   - rtt: ping-pong latency percentiles on one persistent connection,
//     then again with the load, the echo server and every thread of the
//     proxy pinned to one CPU (the rtt1 figures);
//   - idle: descriptors and resident memory per held connection.
//
// -only picks measurements; -only connrate-edge runs only the edge
// variants, e.g. quickly with
//
//	switchyard-bench -only connrate-edge -targets direct,switchyard,haproxy -runs 3
//
// The markdown table goes to stdout, progress to stderr, and a JSON summary
// (read by switchyard-benchplot) to -out-dir. Every child is stopped on
// exit, on error and on SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// A second Ctrl-C kills the bench outright; the children then go via Pdeathsig.
	go func() { <-ctx.Done(); stop() }()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, os.Getenv, stderr)
	if err != nil {
		return 2
	}
	sys := hostSystem()
	if err := sys.needIperf3(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, b := range o.builds {
		if o.profileDir == "" && !slices.Contains(o.targets, b.name) {
			continue
		}
		if _, err := os.Stat(b.path); err != nil {
			fmt.Fprintf(stderr, "switchyard-bench: %v (build it with: go build -o bin/switchyard ./cmd/switchyard)\n", err)
			return 1
		}
	}
	code, err := bench(ctx, o, sys, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "switchyard-bench: %v\n", err)
		return 1
	}
	return code
}

// bench sets up the backends, runs the rounds or the profile and reports.
func bench(ctx context.Context, o options, sys system, stdout, stderr io.Writer) (code int, err error) {
	start := time.Now()
	b := &bencher{o: o, progress: stderr}
	if b.nofile, err = raiseOpenFiles(); err != nil {
		fmt.Fprintf(stderr, "switchyard-bench: cannot raise the open-files limit (now %d): %v\n", b.nofile, err)
	}
	if b.dir, err = os.MkdirTemp("", "switchyard-bench-"); err != nil {
		return 1, err
	}
	defer os.RemoveAll(b.dir)
	b.be, err = startBackends(ctx, o, b.dir, stderr)
	defer func() {
		if cerr := b.be.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err != nil {
		return 1, err
	}
	if o.profileDir != "" {
		return 0, profileRun(ctx, b, stdout)
	}
	if err := b.prepare(sys); err != nil {
		return 1, err
	}
	runErr := b.run(ctx)

	s := b.summary(gitCommit(runGit), start)
	writeTable(stdout, s)
	// An unfinished run would pass for a complete one in the results folder.
	if runErr == nil {
		path, werr := writeSummary(o.outDir, s, start)
		if werr != nil {
			fmt.Fprintf(stderr, "switchyard-bench: %v\n", werr)
			code = 1
		} else {
			fmt.Fprintf(stdout, "\nJSON: %s\n", path)
			if txt, err := writeGoBenchFile(path, s, b.res.samples); err != nil {
				fmt.Fprintf(stderr, "switchyard-bench: %v\n", err)
				code = 1
			} else {
				fmt.Fprintf(stdout, "Go benchmark format (benchstat -col /target %s): %s\n", txt, txt)
			}
		}
	} else {
		fmt.Fprintln(stdout, "\nThe run did not finish; no JSON summary written.")
	}
	if o.csvOut != "" {
		if err := writeCSVFile(o.csvOut, b.res); err != nil {
			fmt.Fprintf(stderr, "switchyard-bench: %v\n", err)
			code = 1
		}
	}
	for _, f := range b.res.failures {
		fmt.Fprintf(stderr, "switchyard-bench: round %d, %s, %s: %v\n", f.round, f.target, f.what, f.err)
		code = 1
	}
	if runErr != nil {
		return 1, runErr
	}
	return code, nil
}

// prepare sizes the idle test and sets up the targets, noting those that
// cannot run here.
func (b *bencher) prepare(sys system) error {
	echoFds, err := b.be.echoFdsPerConn()
	if err != nil {
		return fmt.Errorf("measuring the echo server's fds per connection: %w", err)
	}
	perConn := max(2, echoFds)
	b.idleN = min(b.o.idleN, idleCap(b.nofile, perConn))
	if n := idleNote(b.o.idleN, b.idleN, b.nofile, echoFds); n != "" {
		b.note("%s", n)
	}
	if b.idleN == 0 {
		b.o.only = slices.DeleteFunc(slices.Clone(b.o.only), func(m string) bool { return m == measureIdle })
	}
	b.rtt1CPU = -1
	if slices.Contains(b.o.only, measureRTT) {
		if cpu, err := pinCPU(); err != nil {
			b.note("RTT 1-CPU skipped: %v", err)
		} else {
			b.rtt1CPU = cpu
		}
	}
	tools := []string{"iperf3"}
	for _, name := range b.o.targets {
		t := &target{name: name}
		switch name {
		case targetDirect:
		case targetHAProxy:
			t.proxy, err = sys.haproxy()
		case targetNginx:
			t.proxy, err = sys.nginx()
		default:
			bld := b.o.build(name)
			t.proxy = switchyardProxy{path: bld.path, workers: b.o.workers, pipeSize: b.o.pipeSize, offload: b.o.offloads[name]}
			b.note("%s: %s, %s; workers=%d pipe_size=%s%s", name, bld.path, firstLine(versionOf(bld.path)), b.o.workers, pipeSizeName(b.o.pipeSize), offloadNote(b.o.offloads[name]))
		}
		if err != nil {
			b.note("%s skipped: %v", name, err)
			err = nil
			continue
		}
		if name == targetHAProxy || name == targetNginx {
			tools = append(tools, name)
		}
		b.targets = append(b.targets, t)
	}
	b.note("versions: %s", sys.versions(tools))
	if len(b.o.only) == 0 {
		return errors.New("nothing to measure")
	}
	return nil
}

func (b *bencher) summary(commit string, start time.Time) benchsummary.Summary {
	s := benchsummary.Summary{
		Commit: commit,
		Date:   start.UTC().Format(time.RFC3339),
		Host:   hostInfo(),
		Settings: benchsummary.Settings{
			Runs: b.o.runs, IperfSecs: b.o.secs, ConnrateSecs: b.o.connrateSecs, ConnrateConcurrency: b.o.connrateC,
			RTTN: b.o.rttN, RTTSize: b.o.rttSize, IdleN: b.idleN,
		},
		Targets: []string{},
		Notes:   append(append([]string{}, b.res.notes...), failureNotes(b.res.failures)...),
		Figures: summarize(b.targetNames(), append(slices.Clip(b.res.samples), edgeRatios(b.res.samples)...)),
	}
	s.Targets = append(s.Targets, b.targetNames()...)
	return s
}

func (b *bencher) targetNames() []string {
	var out []string
	for _, t := range b.targets {
		out = append(out, t.name)
	}
	return out
}

func (o options) build(name string) build {
	for _, b := range o.builds {
		if b.name == name {
			return b
		}
	}
	return build{}
}

func runGit(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	return string(out), err
}

// versionOf is what a switchyard binary says of its version.
func versionOf(path string) string {
	out, err := exec.Command(path, "-version").Output()
	if err != nil {
		return "version unknown"
	}
	return strings.TrimSpace(string(out))
}

func pipeSizeName(n int) string {
	if n == 0 {
		return "default"
	}
	return fmt.Sprint(n)
}
