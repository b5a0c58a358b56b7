package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// knownFigures is the order of the rows in the table and of the charts;
// figures not listed here follow in the order they first appear. Any may
// be missing: summaries from before rtt1 have none of its figures.
var knownFigures = []string{
	"gbps_p1_fwd", "gbps_p1_rev", "gbps_p4_fwd", "gbps_p4_rev",
	"cpu_s_per_gib_p1_fwd", "cpu_s_per_gib_p1_rev", "cpu_s_per_gib_p4_fwd", "cpu_s_per_gib_p4_rev",
	"machine_cpu_s_per_gib_p1_fwd", "machine_cpu_s_per_gib_p1_rev", "machine_cpu_s_per_gib_p4_fwd", "machine_cpu_s_per_gib_p4_rev",
	"conn_per_s", "conn_p99_ms",
	"rtt_p50_us", "rtt_p99_us", "rtt_p999_us",
	"rtt1_p50_us", "rtt1_p99_us", "rtt1_p999_us",
	"idle_fds_per_conn", "idle_rss_b_per_conn",
}

// summaryFileName is reserved: a figure of that name would overwrite the grid.
const summaryFileName = "summary"

// figureName is what may become a file name in the output directory.
var figureName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// parseSummary decodes a summary strictly and checks it, reporting every
// problem at once with the JSON path of the key it concerns.
func parseSummary(data []byte) (*benchsummary.Summary, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s benchsummary.Summary
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("bad JSON: data after the summary object")
	}
	if err := validate(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

func validate(s *benchsummary.Summary) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(s.Targets) == 0 {
		add("targets: empty")
	}
	for i, t := range s.Targets {
		switch {
		case t == "":
			add("targets[%d]: empty name", i)
		case slices.Index(s.Targets, t) < i:
			add("targets[%d]: %q listed twice", i, t)
		}
	}
	if len(s.Figures) == 0 {
		add("figures: empty; the summary holds no measurements")
	}
	type key struct{ target, figure string }
	seen := make(map[key]int)
	first := make(map[string]int) // figure name → index of its first entry
	for i, f := range s.Figures {
		p := fmt.Sprintf("figures[%d]", i)
		if !slices.Contains(s.Targets, f.Target) {
			add("%s.target: %q is not in targets %q", p, f.Target, s.Targets)
		}
		if !figureName.MatchString(f.Figure) || f.Figure == summaryFileName {
			add("%s.figure: %q is not a figure name (lower-case letters, digits and _; not %q)", p, f.Figure, summaryFileName)
		}
		if f.Unit == "" {
			add("%s.unit: empty", p)
		}
		if f.Better != benchsummary.BetterHigher && f.Better != benchsummary.BetterLower {
			add("%s.better: must be %q or %q, got %q", p, benchsummary.BetterHigher, benchsummary.BetterLower, f.Better)
		}
		if len(f.Values) == 0 {
			add("%s.values: empty", p)
		}
		if !(f.Min <= f.Median && f.Median <= f.Max) {
			add("%s: want min <= median <= max, got %g, %g, %g", p, f.Min, f.Median, f.Max)
		}
		if j, dup := seen[key{f.Target, f.Figure}]; dup {
			add("%s: %s of %s already given in figures[%d]", p, f.Figure, f.Target, j)
		} else {
			seen[key{f.Target, f.Figure}] = i
		}
		if j, ok := first[f.Figure]; !ok {
			first[f.Figure] = i
		} else if g := s.Figures[j]; g.Unit != f.Unit || g.Better != f.Better {
			add("%s: %s is in %s, %s is better, but figures[%d] says %s, %s is better",
				p, f.Figure, f.Unit, f.Better, j, g.Unit, g.Better)
		}
	}
	return errors.Join(errs...)
}

// figureNames lists the figures present, known ones first in their order.
func figureNames(s *benchsummary.Summary) []string {
	var names []string
	for _, n := range knownFigures {
		if hasFigure(s, n) {
			names = append(names, n)
		}
	}
	for _, f := range s.Figures {
		if !slices.Contains(names, f.Figure) {
			names = append(names, f.Figure)
		}
	}
	return names
}

func hasFigure(s *benchsummary.Summary, name string) bool {
	return slices.ContainsFunc(s.Figures, func(f benchsummary.Figure) bool { return f.Figure == name })
}

// measuredTargets lists the targets with at least one figure, in the order
// of targets; a skipped target (see notes) gets no column and no bar.
func measuredTargets(s *benchsummary.Summary) []string {
	var out []string
	for _, t := range s.Targets {
		if slices.ContainsFunc(s.Figures, func(f benchsummary.Figure) bool { return f.Target == t }) {
			out = append(out, t)
		}
	}
	return out
}
