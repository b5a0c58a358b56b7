package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// summarize groups the samples by figure, in catalogue order (the main
// table's figures, then the edge table's), then by target, in targets
// order. Figures without a value are left out.
func summarize(targets []string, samples []sample) []benchsummary.Figure {
	out := []benchsummary.Figure{}
	for _, f := range allFigures {
		for _, t := range targets {
			var vals []float64
			for _, s := range samples {
				if s.target == t && s.figure == f.name {
					vals = append(vals, roundTo(s.value, f.decimals+2))
				}
			}
			if len(vals) == 0 {
				continue
			}
			sp := spreadOf(vals)
			out = append(out, benchsummary.Figure{
				Target: t, Figure: f.name, Unit: f.unit, Better: f.better,
				Values: vals, Median: sp.median, Min: sp.min, Max: sp.max,
			})
		}
	}
	return out
}

// fileName is <commit>-<UTC date YYYYmmdd-HHMMSS>.json.
func fileName(commit string, date time.Time) string {
	return commit + "-" + date.UTC().Format("20060102-150405") + ".json"
}

// writeSummary writes s into dir, made on demand, and returns the path.
func writeSummary(dir string, s benchsummary.Summary, date time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fileName(s.Commit, date))
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// gitCommit is the short commit of HEAD with "-dirty" when the work tree
// has changes, or "unknown" when git cannot tell. git runs git with args
// and returns its stdout.
func gitCommit(git func(args ...string) (string, error)) string {
	out, err := git("rev-parse", "--short", "HEAD")
	commit := strings.TrimSpace(out)
	if err != nil || commit == "" {
		return "unknown"
	}
	status, err := git("status", "--porcelain")
	if err != nil {
		return "unknown"
	}
	if strings.TrimSpace(status) != "" {
		commit += "-dirty"
	}
	return commit
}

func hostInfo() benchsummary.Host {
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return benchsummary.Host{CPUs: runtime.NumCPU(), Kernel: kernel, Go: runtime.Version()}
}

// settingsLine is the settings in the words of the table's footnote.
func settingsLine(s benchsummary.Settings) string {
	return fmt.Sprintf("iperf3 -t %d; connrate c=%d for %d s; RTT n=%d × %d B; idle n=%d",
		s.IperfSecs, s.ConnrateConcurrency, s.ConnrateSecs, s.RTTN, s.RTTSize, s.IdleN)
}
