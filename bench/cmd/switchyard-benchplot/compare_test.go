package main

import (
	"math"
	"strings"
	"testing"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

func fig(target, name string, median, lo, hi float64) benchsummary.Figure {
	return benchsummary.Figure{Target: target, Figure: name, Unit: "u", Better: benchsummary.BetterHigher, Values: []float64{lo, median, hi}, Median: median, Min: lo, Max: hi}
}

func lower(f benchsummary.Figure) benchsummary.Figure { f.Better = benchsummary.BetterLower; return f }

func TestCompare(t *testing.T) {
	tests := []struct {
		name       string
		base, head benchsummary.Figure
		ratio      float64 // NaN: none
		want       verdict
	}{
		{"higher, head above", fig("b", "x", 10, 9, 11), fig("h", "x", 13, 12, 14), 1.3, verdictBetter},
		{"higher, head below", fig("b", "x", 10, 9, 11), fig("h", "x", 7, 6, 8), 0.7, verdictWorse},
		{"lower, head below", lower(fig("b", "x", 10, 9, 11)), lower(fig("h", "x", 5, 4, 6)), 0.5, verdictBetter},
		{"lower, head above", lower(fig("b", "x", 10, 9, 11)), lower(fig("h", "x", 20, 19, 21)), 2, verdictWorse},
		{"overlap", fig("b", "x", 10, 9, 11), fig("h", "x", 11.5, 10.5, 12), 1.15, verdictSpread},
		{"ranges touch", fig("b", "x", 10, 9, 11), fig("h", "x", 12, 11, 13), 1.2, verdictSpread},
		{"head range inside base range", fig("b", "x", 10, 5, 15), fig("h", "x", 14, 13, 14.5), 1.4, verdictSpread},
		{"medians far apart, ranges overlap", fig("b", "x", 10, 9.9, 30), fig("h", "x", 29, 29, 29.5), 2.9, verdictSpread},
		{"no spread, equal", fig("b", "x", 2, 2, 2), fig("h", "x", 2, 2, 2), 1, verdictSpread},
		{"no spread, apart", lower(fig("b", "x", 2, 2, 2)), lower(fig("h", "x", 3, 3, 3)), 1.5, verdictWorse},
		{"base zero", fig("b", "x", 0, 0, 0), fig("h", "x", 1, 1, 1), math.NaN(), verdictBetter},
		{"both zero", lower(fig("b", "x", 0, 0, 0)), lower(fig("h", "x", 0, 0, 0)), math.NaN(), verdictSpread},
		{"negative", fig("b", "x", -2, -3, -1), fig("h", "x", -6, -7, -5), 3, verdictWorse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ratio, v := compare(tt.base, tt.head)
			if v != tt.want {
				t.Errorf("verdict: got %q, want %q", v, tt.want)
			}
			if math.IsNaN(tt.ratio) != math.IsNaN(ratio) || math.Abs(ratio-tt.ratio) > 1e-9 {
				t.Errorf("ratio: got %v, want %v", ratio, tt.ratio)
			}
		})
	}
}

func TestChoosePair(t *testing.T) {
	targets := func(ts ...string) *benchsummary.Summary { return &benchsummary.Summary{Targets: ts} }
	tests := []struct {
		name       string
		s          *benchsummary.Summary
		base, head string
		want       pair
		err        string
	}{
		{"default: the two builds in order", targets("direct", "base", "head", "haproxy", "nginx"), "", "", pair{"base", "head"}, ""},
		{"default: any names", targets("v1.2", "nginx", "main"), "", "", pair{"v1.2", "main"}, ""},
		{"no default with one build", targets("direct", "head", "haproxy"), "", "", pair{}, ""},
		{"no default with three builds", targets("a", "b", "c"), "", "", pair{}, ""},
		{"flags", targets("a", "b", "c"), "c", "a", pair{"c", "a"}, ""},
		{"flags over default", targets("direct", "base", "head"), "head", "base", pair{"head", "base"}, ""},
		{"peer as base", targets("direct", "base", "head"), "direct", "", pair{"direct", "head"}, ""},
		{"-head alone completed by default", targets("base", "head", "haproxy"), "", "haproxy", pair{"base", "haproxy"}, ""},
		{"unknown -base", targets("direct", "base", "head"), "bsae", "", pair{}, `-base: target "bsae" is not in the summary; it has direct, base, head`},
		{"unknown -head", targets("a", "b", "c"), "a", "d", pair{}, `-head: target "d" is not in the summary`},
		{"-base alone", targets("a", "b", "c"), "a", "", pair{}, "-base a needs -head"},
		{"-head alone", targets("a", "b", "c"), "", "b", pair{}, "-head b needs -base"},
		{"same target", targets("a", "b", "c"), "b", "b", pair{}, `-base and -head both name "b"`},
		{"same as default", targets("base", "head"), "head", "", pair{}, `-base and -head both name "head"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := choosePair(tt.s, tt.base, tt.head)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error: got %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"}, {17.5, "17.5"}, {17.52, "17.5"}, {2, "2.00"}, {0.412, "0.412"}, {0.42, "0.420"},
		{0.000123, "0.000123"}, {99.96, "100.0"}, {118.9, "119"}, {41234, "41234"}, {-3.5, "-3.50"}, {1e20, "1e+20"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v); got != tt.want {
			t.Errorf("formatValue(%v): got %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestCompareTable(t *testing.T) {
	s := &benchsummary.Summary{
		Targets: []string{"direct", "base", "head", "nginx"},
		Figures: []benchsummary.Figure{
			fig("direct", "gbps_p1_fwd", 40, 39, 41), fig("base", "gbps_p1_fwd", 17.5, 17.1, 18), fig("head", "gbps_p1_fwd", 19.8, 19.4, 20.1),
			lower(fig("base", "rtt_p99_us", 42.9, 41.2, 44.8)), lower(fig("head", "rtt_p99_us", 43.5, 42, 45)),
			lower(fig("base", "idle_rss_b_per_conn", 1431, 1412, 1456)),
		},
	}
	var b strings.Builder
	if err := compareTable(s, pair{"base", "head"}).writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2+3 {
		t.Fatalf("got %d lines, want header, rule and 3 rows:\n%s", len(lines), got)
	}
	for _, w := range []string{
		"| figure ", " direct ", " base ", " head ", " head/base ", " verdict ",
		"17.5 (17.1–18.0)", "1.131 | better ",
		"43.5 (42.0–45.0)", "1.014 | within spread ",
		"1431 (1412–1456)", "| no head ",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("table lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "nginx") {
		t.Errorf("nginx measured nothing but has a column:\n%s", got)
	}
	width := len([]rune(lines[0]))
	for _, l := range lines[1:] {
		if len([]rune(l)) != width {
			t.Errorf("ragged table:\n%s", got)
			break
		}
	}
}

func TestCompareTableWithoutPair(t *testing.T) {
	s := &benchsummary.Summary{Targets: []string{"a|b"}, Figures: []benchsummary.Figure{fig("a|b", "x", 1, 1, 1)}}
	var b strings.Builder
	if err := compareTable(s, pair{}).writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); strings.Contains(got, "verdict") || !strings.Contains(got, `a\|b`) {
		t.Errorf("got:\n%s", got)
	}
}
