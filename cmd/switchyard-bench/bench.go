package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// A benchCase is one iperf3 client configuration.
type benchCase struct {
	name string
	args []string
}

var cases = []benchCase{
	{"P1 fwd", nil},
	{"P1 rev", []string{"-R"}},
	{"P4 fwd", []string{"-P", "4"}},
	{"P4 rev", []string{"-P", "4", "-R"}},
}

const (
	targetDirect     = "direct"
	targetSwitchyard = "switchyard"
	startTimeout     = 10 * time.Second
)

// runResult is one iperf3 run. cpuSeconds is set for switchyard runs only.
type runResult struct {
	round      int
	bcase      benchCase
	target     string
	iperf      iperfSum
	cpuSeconds float64
	err        error
}

// cpuPerGiB is the router's CPU seconds per GiB received, NaN if unknown.
func (r runResult) cpuPerGiB() float64 {
	if r.target != targetSwitchyard || r.err != nil || r.iperf.bytes <= 0 {
		return nan
	}
	return r.cpuSeconds / (r.iperf.bytes / (1 << 30))
}

// testbed is the iperf3 server and the router in front of it.
type testbed struct {
	dir         string
	iperfServer *child
	router      *child
	iperfPort   int
	routerPort  int
}

// bench sets up the testbed, runs every round and tears the testbed down.
// The error is about the testbed or an interruption; failed runs are
// reported in the results. The results so far are returned in every case.
func bench(ctx context.Context, o options, progress io.Writer) (results []runResult, err error) {
	tb, err := startTestbed(ctx, o, progress)
	if tb != nil {
		defer func() {
			if cerr := tb.close(); err == nil && cerr != nil {
				err = cerr
			}
		}()
	}
	if err != nil {
		return nil, err
	}
	for round := 1; round <= o.runs; round++ {
		for _, c := range cases {
			for _, target := range []string{targetDirect, targetSwitchyard} {
				r := tb.measure(ctx, o, round, c, target, progress)
				fmt.Fprintf(progress, "round %d/%d  %-6s  %-10s  %s\n", round, o.runs, c.name, target, describe(r))
				if ctx.Err() != nil {
					return results, fmt.Errorf("interrupted: %w", context.Cause(ctx))
				}
				if r.target == targetSwitchyard && tb.router.exited() {
					return append(results, r), fmt.Errorf("switchyard exited during the run: %v\n%s", tb.router.waitErr(), tb.router.logTail())
				}
				results = append(results, r)
			}
		}
	}
	return results, nil
}

func startTestbed(ctx context.Context, o options, progress io.Writer) (*testbed, error) {
	dir, err := os.MkdirTemp("", "switchyard-bench-")
	if err != nil {
		return nil, err
	}
	tb := &testbed{dir: dir}
	ports, err := freePorts(2)
	if err != nil {
		return tb, err
	}
	tb.iperfPort, tb.routerPort = ports[0], ports[1]

	fmt.Fprintf(progress, "starting iperf3 server on 127.0.0.1:%d\n", tb.iperfPort)
	tb.iperfServer, err = startChild("iperf3 server", filepath.Join(dir, "iperf3.log"),
		"iperf3", "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(tb.iperfPort))
	if err != nil {
		return tb, err
	}
	tb.iperfServer.anyExitOnStop = true
	if err := waitAccept(ctx, loopback(tb.iperfPort), tb.iperfServer, startTimeout); err != nil {
		return tb, err
	}

	cfgPath := filepath.Join(dir, "switchyard.toml")
	cfg := routerConfig(loopback(tb.routerPort), loopback(tb.iperfPort), o.workers, o.pipeSize)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return tb, err
	}
	fmt.Fprintf(progress, "starting %s on 127.0.0.1:%d -> 127.0.0.1:%d\n", o.switchyard, tb.routerPort, tb.iperfPort)
	tb.router, err = startChild("switchyard", filepath.Join(dir, "switchyard.log"), o.switchyard, "-config", cfgPath)
	if err != nil {
		return tb, err
	}
	return tb, waitAccept(ctx, loopback(tb.routerPort), tb.router, startTimeout)
}

// close stops the children and removes the temp dir. It is safe on a
// partly started testbed.
func (tb *testbed) close() error {
	var err error
	for _, c := range []*child{tb.router, tb.iperfServer} {
		if c == nil {
			continue
		}
		if serr := c.stop(); serr != nil && err == nil {
			err = fmt.Errorf("%w\n%s", serr, c.logTail())
		}
	}
	os.RemoveAll(tb.dir)
	return err
}

// measure runs one iperf3 client against target, reading the router's CPU
// time around switchyard runs.
func (tb *testbed) measure(ctx context.Context, o options, round int, c benchCase, target string, progress io.Writer) runResult {
	r := runResult{round: round, bcase: c, target: target}
	port := tb.iperfPort
	if target == targetSwitchyard {
		port = tb.routerPort
	}
	var before uint64
	if target == targetSwitchyard {
		if before, r.err = cpuTicks(tb.router.pid()); r.err != nil {
			return r
		}
	}
	if r.iperf, r.err = runIperf(ctx, port, o.secs, c.args, progress); r.err != nil {
		return r
	}
	if target == targetSwitchyard {
		var after uint64
		if after, r.err = cpuTicks(tb.router.pid()); r.err != nil {
			return r
		}
		r.cpuSeconds = float64(after-before) / clockTicksPerSecond
	}
	return r
}

func describe(r runResult) string {
	if r.err != nil {
		return "FAILED: " + r.err.Error()
	}
	s := fmt.Sprintf("%6.2f Gb/s", r.iperf.bitsPerSecond/1e9)
	if r.target == targetSwitchyard {
		s += fmt.Sprintf("  %.3f CPU s/GiB", r.cpuPerGiB())
	}
	return s
}

func loopback(port int) string {
	return "127.0.0.1:" + strconv.Itoa(port)
}
