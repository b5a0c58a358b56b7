package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// The run is also written in the Go benchmark format, so that benchstat
// (golang.org/x/perf/cmd/benchstat) can judge two runs, or two builds in
// one run, with its own statistics:
//
//	benchstat -col /target bench/results/<commit>-<date>.txt     # builds of one run side by side
//	benchstat old.txt new.txt                                    # two runs
//
// Each round's value of each figure of each target is one line,
// BenchmarkProxy/target=<target>/figure=<figure> 1 <value> <unit>; the
// file starts with the run's configuration (commit, host, load) as
// benchfmt's "key: value" lines.

// writeGoBench writes s's samples in the Go benchmark format to w.
func writeGoBench(w io.Writer, s benchsummary.Summary, samples []sample) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "goos: linux\ngoarch: %s\npkg: switchyard-bench\ncommit: %s\ncpus: %d\nkernel: %s\n",
		runtime.GOARCH, s.Commit, s.Host.CPUs, oneLine(s.Host.Kernel))
	fmt.Fprintf(bw, "runs: %d\nconnrate-secs: %d\nconnrate-concurrency: %d\nrtt-n: %d\n",
		s.Settings.Runs, s.Settings.ConnrateSecs, s.Settings.ConnrateConcurrency, s.Settings.RTTN)
	for _, f := range allFigures {
		for _, t := range s.Targets {
			for _, sm := range samples {
				if sm.target != t || sm.figure != f.name {
					continue
				}
				fmt.Fprintf(bw, "BenchmarkProxy/target=%s/figure=%s 1 %s %s\n",
					benchKey(t), f.name, number(sm.value, f.decimals+2), benchUnit(f.unit))
			}
		}
	}
	return bw.Flush()
}

// writeGoBenchFile writes the Go benchmark form of the run beside its JSON
// summary at jsonPath, and returns its path.
func writeGoBenchFile(jsonPath string, s benchsummary.Summary, samples []sample) (string, error) {
	path := strings.TrimSuffix(jsonPath, ".json") + ".txt"
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := writeGoBench(f, s, samples); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// benchKey makes a value fit a benchmark name's key=value part: no
// spaces, slashes or equals signs.
func benchKey(s string) string {
	return strings.NewReplacer(" ", "_", "/", "_", "=", "_").Replace(s)
}

// benchUnit makes a unit one token ("conn/s", "Gb/s", "µs").
func benchUnit(u string) string {
	if u == "" {
		return "value"
	}
	return strings.ReplaceAll(u, " ", "-")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
