package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// summary is the JSON file a run leaves behind; switchyard-benchplot reads
// it, so its shape is a contract.
type summary struct {
	Commit   string          `json:"commit"`
	Date     string          `json:"date"` // RFC 3339, UTC
	Host     host            `json:"host"`
	Settings settings        `json:"settings"`
	Targets  []string        `json:"targets"`
	Notes    []string        `json:"notes"`
	Figures  []figureSummary `json:"figures"`
}

type host struct {
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

type settings struct {
	Runs                int `json:"runs"`
	IperfSecs           int `json:"iperf_secs"`
	ConnrateSecs        int `json:"connrate_secs"`
	ConnrateConcurrency int `json:"connrate_concurrency"`
	RTTN                int `json:"rtt_n"`
	RTTSize             int `json:"rtt_size"`
	IdleN               int `json:"idle_n"`
}

// figureSummary is one figure of one target over the rounds: the values
// of the rounds that produced one, in round order, and their spread.
type figureSummary struct {
	Target string    `json:"target"`
	Figure string    `json:"figure"`
	Unit   string    `json:"unit"`
	Better string    `json:"better"`
	Values []float64 `json:"values"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

// summarize groups the samples by figure, in catalogue order, then by
// target, in targets order. Figures without a value are left out.
func summarize(targets []string, samples []sample) []figureSummary {
	out := []figureSummary{}
	for _, f := range figures {
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
			out = append(out, figureSummary{
				Target: t, Figure: f.name, Unit: f.unit, Better: f.better,
				Values: vals, Median: sp.median, Min: sp.min, Max: sp.max,
			})
		}
	}
	return out
}

// find is the summary of figure for target, if there is one.
func (s summary) find(target, figure string) (figureSummary, bool) {
	for _, f := range s.Figures {
		if f.Target == target && f.Figure == figure {
			return f, true
		}
	}
	return figureSummary{}, false
}

// fileName is <commit>-<UTC date YYYYmmdd-HHMMSS>.json.
func fileName(commit string, date time.Time) string {
	return commit + "-" + date.UTC().Format("20060102-150405") + ".json"
}

// writeSummary writes s into dir, made on demand, and returns the path.
func writeSummary(dir string, s summary, date time.Time) (string, error) {
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

func hostInfo() host {
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return host{CPUs: runtime.NumCPU(), Kernel: kernel, Go: runtime.Version()}
}

func (s settings) String() string {
	return fmt.Sprintf("iperf3 -t %d; connrate c=%d for %d s; RTT n=%d × %d B; idle n=%d",
		s.IperfSecs, s.ConnrateConcurrency, s.ConnrateSecs, s.RTTN, s.RTTSize, s.IdleN)
}
