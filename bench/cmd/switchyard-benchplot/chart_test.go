package main

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// checkPNG fails unless path holds a PNG at least minW × minH pixels.
func checkPNG(t *testing.T, path string, minW, minH int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if cfg.Width < minW || cfg.Height < minH {
		t.Errorf("%s: %d×%d, want at least %d×%d", path, cfg.Width, cfg.Height, minW, minH)
	}
}

func TestWriteFigurePNGs(t *testing.T) {
	s, err := parseSummary(readSample(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := writeFigurePNGs(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	// One per figure the sample has; it predates rtt1, which gets none.
	names := figureNames(s)
	if len(paths) != len(names) {
		t.Errorf("wrote %d charts, want %d", len(paths), len(names))
	}
	for _, name := range names {
		checkPNG(t, filepath.Join(dir, name+".png"), 600, 400)
	}
}

func TestWriteSummaryPNG(t *testing.T) {
	tests := []struct {
		name string
		s    *benchsummary.Summary
	}{
		{"sample", nil},
		{"main figures missing", &benchsummary.Summary{Targets: []string{"head"}, Figures: []benchsummary.Figure{fig("head", "conn_per_s", 1e4, 9e3, 1.1e4)}}},
		{"extreme values", &benchsummary.Summary{Targets: []string{"a", "b", "c"}, Figures: []benchsummary.Figure{
			fig("a", "gbps_p1_fwd", 1e300, 1e299, 1e301), fig("b", "gbps_p1_fwd", 0, 0, 0),
			fig("a", "gbps_p4_rev", 0, 0, 0), fig("b", "gbps_p4_rev", 0, 0, 0),
			lower(fig("a", "rtt_p99_us", 1e-300, 1e-301, 1e-299)),
			fig("a", "conn_per_s", -5, -6, -4), fig("b", "conn_per_s", 5, 4, 6),
			lower(fig("c", "idle_rss_b_per_conn", 7e12, 6e12, 8e12)),
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			if s == nil {
				var err error
				if s, err = parseSummary(readSample(t)); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "summary.png")
			if err := writeSummaryPNG(s, path); err != nil {
				t.Fatal(err)
			}
			checkPNG(t, path, 1000, 600)
			if _, err := writeFigurePNGs(s, dir); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWriteSummaryPNGUnwritable(t *testing.T) {
	s, err := parseSummary(readSample(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "missing", "summary.png")
	if err := writeSummaryPNG(s, path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want an error naming %s", err, path)
	}
}

func TestTickLabels(t *testing.T) {
	tests := []struct {
		min, max float64
		want     []string // the major labels, in order
	}{
		{0, 39.1, []string{"0", "10", "20", "30"}},
		{0, 0.547, []string{"0", "0.25", "0.50"}},
		{0, 5390, []string{"0", "2500", "5000"}},
		{0, 42870, []string{"0", "20k", "40k"}},
		{0, 2.5e6, []string{"0", "1M", "2M"}},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range (tickLabels{}).Ticks(tt.min, tt.max) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("Ticks(%v, %v): got %q, want %q", tt.min, tt.max, got, tt.want)
		}
	}
	if d := tickDecimals([]float64{0.1, 0.2, 0.30000000000000004}); d != 1 {
		t.Errorf("tickDecimals with float noise: got %d, want 1", d)
	}
	if d := tickDecimals([]float64{math.Inf(1)}); d < 0 {
		t.Errorf("tickDecimals(+Inf): got %d", d)
	}
}
