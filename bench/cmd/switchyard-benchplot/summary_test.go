package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

const samplePath = "testdata/summary.json"

func readSample(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseSummarySample(t *testing.T) {
	s, err := parseSummary(readSample(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Commit != "ccd804c" || s.Host.CPUs != 2 || s.Settings.Runs != 3 || s.Settings.IdleN != 9800 {
		t.Errorf("header: got %+v %+v %+v", s.Commit, s.Host, s.Settings)
	}
	if got, want := strings.Join(measuredTargets(s), ","), "direct,base,head,haproxy"; got != want {
		t.Errorf("measured targets: got %s, want %s (nginx has no figures)", got, want)
	}
	// The sample predates the 1-CPU RTT and the machine's CPU: every
	// known figure but theirs.
	want := slices.DeleteFunc(slices.Clone(knownFigures), func(n string) bool {
		return strings.HasPrefix(n, "rtt1_") || strings.HasPrefix(n, "machine_")
	})
	if got := figureNames(s); !slices.Equal(got, want) {
		t.Errorf("figure names: got %v, want %v", got, want)
	}
	f, ok := s.Lookup("head", "gbps_p1_fwd")
	if !ok || f.Median != 19.8 || f.Min != 19.4 || f.Max != 20.1 || f.Unit != "Gb/s" || f.Better != benchsummary.BetterHigher {
		t.Errorf("head gbps_p1_fwd: got %+v, %v", f, ok)
	}
	if _, ok := s.Lookup("direct", "cpu_s_per_gib_p1_fwd"); ok {
		t.Error("direct has no CPU figure in the sample")
	}
}

// TestParseBenchWritten parses what switchyard-bench writes: its
// TestSummaryContract keeps testdata/bench-written.json current. Every
// figure in it must be known here, so the table and charts order them as
// the bench's table does.
func TestParseBenchWritten(t *testing.T) {
	data, err := os.ReadFile("testdata/bench-written.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseSummary(data)
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	for _, f := range s.Figures {
		if !slices.Contains(written, f.Figure) {
			written = append(written, f.Figure)
		}
	}
	if got := figureNames(s); !slices.Equal(got, written) {
		t.Errorf("figure order: got %v, want the bench's %v (is knownFigures missing one?)", got, written)
	}
	if got, want := strings.Join(measuredTargets(s), ","), "direct,switchyard"; got != want {
		t.Errorf("measured targets: got %s, want %s", got, want)
	}
}

func TestFigureNamesUnknownLast(t *testing.T) {
	s := &benchsummary.Summary{Targets: []string{"a"}, Figures: []benchsummary.Figure{
		fig("a", "zz_new", 1, 1, 1), fig("a", "rtt_p99_us", 1, 1, 1), fig("a", "aa_new", 1, 1, 1),
	}}
	if got, want := strings.Join(figureNames(s), ","), "rtt_p99_us,zz_new,aa_new"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// minimal is a valid summary that the error cases below spoil one key at a time.
const minimal = `{"commit":"c","date":"d","host":{"cpus":1,"kernel":"k","go":"g"},"settings":{"runs":1},
"targets":["base","head"],"notes":[],
"figures":[%s]}`

const goodFigure = `{"target":"base","figure":"conn_per_s","unit":"conn/s","better":"higher","values":[1,2,3],"median":2,"min":1,"max":3}`

func TestParseSummaryErrors(t *testing.T) {
	withFigures := func(figs ...string) string {
		return strings.Replace(minimal, "%s", strings.Join(figs, ","), 1)
	}
	spoil := func(old, new string) string { return withFigures(strings.Replace(goodFigure, old, new, 1)) }
	tests := []struct {
		name, json string
		want       []string // substrings of the error
	}{
		{"empty file", ``, []string{"bad JSON", "EOF"}},
		{"not JSON", `figures: []`, []string{"bad JSON", "invalid character"}},
		{"truncated", withFigures(goodFigure)[:40], []string{"bad JSON", "unexpected EOF"}},
		{"trailing data", withFigures(goodFigure) + `{}`, []string{"data after the summary"}},
		{"unknown key", strings.Replace(withFigures(goodFigure), `"notes"`, `"nots"`, 1), []string{"bad JSON", `unknown field "nots"`}},
		{"wrong type", spoil(`"median":2`, `"median":"2"`), []string{"bad JSON", "median"}},
		{"number out of range", spoil(`"max":3`, `"max":1e999`), []string{"bad JSON"}},
		{"null", `null`, []string{"targets: empty", "figures: empty"}},
		{"empty figures", withFigures(), []string{"figures: empty"}},
		{"empty targets", strings.Replace(withFigures(goodFigure), `["base","head"]`, `[]`, 1), []string{"targets: empty", `figures[0].target: "base" is not in targets`}},
		{"duplicate target", strings.Replace(withFigures(goodFigure), `["base","head"]`, `["base","base",""]`, 1), []string{`targets[1]: "base" listed twice`, "targets[2]: empty name"}},
		{"unknown target", spoil(`"target":"base"`, `"target":"nginx"`), []string{`figures[0].target: "nginx" is not in targets`}},
		{"path in figure name", spoil(`"figure":"conn_per_s"`, `"figure":"../../etc/x"`), []string{`figures[0].figure: "../../etc/x" is not a figure name`}},
		{"figure named summary", spoil(`"figure":"conn_per_s"`, `"figure":"summary"`), []string{`figures[0].figure: "summary" is not a figure name`}},
		{"no unit", spoil(`"unit":"conn/s"`, `"unit":""`), []string{"figures[0].unit: empty"}},
		{"bad better", spoil(`"better":"higher"`, `"better":"up"`), []string{`figures[0].better: must be "higher" or "lower", got "up"`}},
		{"no values", spoil(`[1,2,3]`, `[]`), []string{"figures[0].values: empty"}},
		{"median above max", spoil(`"median":2`, `"median":4`), []string{"figures[0]: want min <= median <= max, got 1, 4, 3"}},
		{"duplicate figure", withFigures(goodFigure, goodFigure), []string{"figures[1]: conn_per_s of base already given in figures[0]"}},
		{"unit differs between targets", withFigures(goodFigure, strings.NewReplacer(`"base"`, `"head"`, `"conn/s"`, `"k conn/s"`).Replace(goodFigure)),
			[]string{"figures[1]: conn_per_s is in k conn/s, higher is better, but figures[0] says conn/s, higher is better"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSummary([]byte(tt.json))
			if err == nil {
				t.Fatal("parsed without error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseSummaryReportsEveryError(t *testing.T) {
	bad := strings.Replace(minimal, "%s", strings.NewReplacer(`"higher"`, `"up"`, `"median":2`, `"median":9`, `"target":"base"`, `"target":"x"`).Replace(goodFigure), 1)
	_, err := parseSummary([]byte(bad))
	if err == nil {
		t.Fatal("parsed without error")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("got %d errors, want 3:\n%v", n, err)
	}
}

func FuzzParseSummary(f *testing.F) {
	f.Add(readSample(f))
	if data, err := os.ReadFile("testdata/bench-written.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(strings.Replace(minimal, "%s", goodFigure, 1)))
	f.Add([]byte(strings.Replace(minimal, "%s", goodFigure+","+strings.Replace(goodFigure, `"base"`, `"head"`, 1), 1)))
	f.Add([]byte(`{"targets":["a"],"figures":[{"target":"a","figure":"x","unit":"u","better":"lower","values":[0],"median":0,"min":0,"max":0}]}`))
	f.Add([]byte(`{"figures":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseSummary(data)
		if err != nil {
			if s != nil {
				t.Fatal("summary returned with an error")
			}
			return
		}
		if len(s.Figures) == 0 || len(measuredTargets(s)) == 0 {
			t.Fatalf("valid summary without figures: %+v", s)
		}
		for _, f := range s.Figures {
			if !figureName.MatchString(f.Figure) {
				t.Fatalf("figure name %q passed validation", f.Figure)
			}
		}
		// Whatever passes validation must also lay out.
		p, err := choosePair(s, "", "")
		if err != nil {
			t.Fatalf("default pair: %v", err)
		}
		tbl := compareTable(s, p)
		if len(tbl.rows) != len(figureNames(s)) {
			t.Fatalf("%d rows for %d figures", len(tbl.rows), len(figureNames(s)))
		}
		var b strings.Builder
		if err := writeReport(&b, s, p, tbl); err != nil {
			t.Fatal(err)
		}
	})
}
