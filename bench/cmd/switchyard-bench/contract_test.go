package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

var update = flag.Bool("update", false, "rewrite "+benchWrittenPath+" with what the bench writes now")

// benchWrittenPath holds a summary as the bench writes it, with every
// figure of the catalogue. switchyard-benchplot's tests parse it, so the
// two suites together check that the plotter accepts what the bench writes.
const benchWrittenPath = "../switchyard-benchplot/testdata/bench-written.json"

// TestSummaryContract checks the bench still writes benchWrittenPath to the
// byte. After a deliberate change of the summary, rerun it with -update.
func TestSummaryContract(t *testing.T) {
	date := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	b := &bencher{
		o:       options{runs: 2, secs: 10, connrateSecs: 5, connrateC: 50, rttN: 20000, rttSize: 64},
		targets: []*target{{name: targetDirect}, {name: targetSwitchyard}},
		idleN:   9800,
		res: results{
			notes:    []string{"versions: iperf3 3.16"},
			failures: []failure{{2, targetSwitchyard, measureIdle, errors.New("no idle connection established")}},
		},
	}
	for round := 1; round <= 2; round++ {
		for _, f := range figures {
			for j, tg := range b.targets {
				v := float64(10*round+j) + 0.123456789
				b.res.samples = append(b.res.samples, sample{round, tg.name, f.name, v})
			}
		}
	}
	s := b.summary("ccd804c", date)
	s.Host = benchsummary.Host{CPUs: 2, Kernel: "6.18.44", Go: "go1.26.8"}
	path, err := writeSummary(t.TempDir(), s, date)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(benchWrittenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(benchWrittenPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the bench writes a summary unlike %s; if that is meant, rerun with -update and check switchyard-benchplot's tests:\n%s", benchWrittenPath, got)
	}
}
