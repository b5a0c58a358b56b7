package main

import (
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// The Go benchmark form of a run reads back with benchfmt, benchstat's
// reader: every sample once, under its target and figure, with its unit,
// and the run's configuration.
func TestGoBenchFormatReadsBack(t *testing.T) {
	samples := []sample{
		{round: 1, target: "base", figure: figConnPerSec, value: 7119},
		{round: 1, target: "head build", figure: figConnPerSec, value: 7250.5},
		{round: 2, target: "base", figure: figConnPerSec, value: 7001},
		{round: 1, target: "base", figure: figRTTP50, value: 96.1},
	}
	s := benchsummary.Summary{Commit: "abc1234", Targets: []string{"base", "head build"},
		Host: benchsummary.Host{CPUs: 2, Kernel: "6.18 x"}, Settings: benchsummary.Settings{Runs: 2}}
	var b strings.Builder
	if err := writeGoBench(&b, s, samples); err != nil {
		t.Fatal(err)
	}
	r := benchfmt.NewReader(strings.NewReader(b.String()), "run.txt")
	type key struct{ target, figure, unit string }
	got := map[key][]float64{}
	for r.Scan() {
		rec, ok := r.Result().(*benchfmt.Result)
		if !ok {
			t.Fatalf("not a result: %v", r.Result())
		}
		if c := rec.GetConfig("commit"); c != "abc1234" {
			t.Errorf("commit config %q", c)
		}
		parts := map[string]string{}
		for _, kv := range strings.Split(string(rec.Name), "/")[1:] {
			k, v, _ := strings.Cut(kv, "=")
			parts[k] = v
		}
		for _, v := range rec.Values {
			got[key{parts["target"], parts["figure"], v.Unit}] = append(got[key{parts["target"], parts["figure"], v.Unit}], v.Value)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[key][]float64{
		{"base", figConnPerSec, "conn/s"}:       {7119, 7001},
		{"head_build", figConnPerSec, "conn/s"}: {7250.5},
		{"base", figRTTP50, "µs"}:               {96.1},
	}
	if len(got) != len(want) {
		t.Fatalf("read %v, want %v\n%s", got, want, b.String())
	}
	for k, w := range want {
		if g := got[k]; len(g) != len(w) || g[0] != w[0] || len(g) > 1 && g[1] != w[1] {
			t.Errorf("%v = %v, want %v\n%s", k, g, w, b.String())
		}
	}
}
