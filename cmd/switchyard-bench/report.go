package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/switchyard-proxy/switchyard/cmd/internal/benchsummary"
)

// writeTable prints s as markdown: a row per figure, a column per target.
// Each cell is the median, with min–max over the rounds, and for proxies
// how it compares to direct.
func writeTable(w io.Writer, s benchsummary.Summary) {
	fmt.Fprintf(w, "## switchyard-bench %s, %s, %d CPUs, kernel %s, %d round(s)\n\n", s.Commit, s.Date, s.Host.CPUs, s.Host.Kernel, s.Settings.Runs)
	fmt.Fprintf(w, "| figure | %s |\n", strings.Join(s.Targets, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("--:|", len(s.Targets)))
	for _, f := range figures {
		cells := make([]string, len(s.Targets))
		found := false
		for i, t := range s.Targets {
			cells[i] = "–"
			fs, ok := s.Lookup(t, f.name)
			if !ok {
				continue
			}
			found = true
			cells[i] = cell(f, fs)
			if t == targetDirect {
				continue
			}
			if d, ok := s.Lookup(targetDirect, f.name); ok {
				cells[i] += compared(f, fs.Median, d.Median)
			}
		}
		if found {
			arrow := "↑"
			if f.better == benchsummary.BetterLower {
				arrow = "↓"
			}
			fmt.Fprintf(w, "| %s %s | %s |\n", f.label, arrow, strings.Join(cells, " | "))
		}
	}
	fmt.Fprintf(w, "\nCells: median (min–max) over the rounds; ↑/↓: higher/lower is better; "+
		"%% of direct's median for throughput and conn/s, +added over direct's median for latencies. %s.\n", settingsLine(s.Settings))
	if len(s.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range s.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func cell(f figure, fs benchsummary.Figure) string {
	c := number(fs.Median, f.decimals)
	if len(fs.Values) > 1 {
		c += fmt.Sprintf(" (%s–%s)", number(fs.Min, f.decimals), number(fs.Max, f.decimals))
	}
	return c
}

// compared is how a proxy's median relates to direct's, or "".
func compared(f figure, median, direct float64) string {
	switch f.relation {
	case shareOfDirect:
		if direct == 0 {
			return ""
		}
		return fmt.Sprintf(" · %.0f%%", 100*median/direct)
	case addedOverDirect:
		return " · " + signed(median-direct, f.decimals)
	}
	return ""
}

func signed(x float64, decimals int) string {
	s := number(x, decimals)
	if x >= 0 {
		s = "+" + s
	}
	return s
}

func number(x float64, decimals int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(x, 'f', decimals, 64)
}

var csvHeader = []string{"round", "target", "figure", "value", "error"}

// writeCSVFile writes one row per sample, and one per failure with the
// failed measurement in place of the figure.
func writeCSVFile(path string, res results) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeCSV(f, res); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func writeCSV(w io.Writer, res results) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	for _, s := range res.samples {
		cw.Write([]string{strconv.Itoa(s.round), s.target, s.figure, strconv.FormatFloat(s.value, 'g', 8, 64), ""})
	}
	for _, f := range res.failures {
		cw.Write([]string{strconv.Itoa(f.round), f.target, f.what, "", f.err.Error()})
	}
	cw.Flush()
	return cw.Error()
}
