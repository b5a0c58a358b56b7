package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// writeTable prints s as markdown: a row per figure, a column per target.
// Each cell is the median, with min–max over the rounds, and for proxies
// how it compares to direct. The connrate-edge figures and the reqresp
// ones have a table each of their own, after the main one; a table without
// rows is left out.
func writeTable(w io.Writer, s benchsummary.Summary) {
	fmt.Fprintf(w, "## switchyard-bench %s, %s, %d CPUs, kernel %s, %d round(s)\n\n", s.Commit, s.Date, s.Host.CPUs, s.Host.Kernel, s.Settings.Runs)
	if rows := tableRows(s, s.Targets, figures); len(rows) > 0 || !hasOwnTableFigures(s) {
		writeRows(w, s.Targets, rows)
		fmt.Fprintf(w, "\nCells: median (min–max) over the rounds; ↑/↓: higher/lower is better; "+
			"%% of direct's median for throughput and conn/s, +added over direct's median for latencies. %s.\n", settingsLine(s.Settings))
	}
	writeEdgeTable(w, s)
	writeReqrespTable(w, s)
	if len(s.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range s.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

// hasOwnTableFigures reports whether s has any figure with a table of its
// own (connrate-edge's, reqresp's).
func hasOwnTableFigures(s benchsummary.Summary) bool {
	own := ownTableFigures()
	return slices.ContainsFunc(s.Figures, func(f benchsummary.Figure) bool {
		return slices.ContainsFunc(own, func(e figure) bool { return e.name == f.Figure })
	})
}

// tableRows are the rows of figs that some of targets measured: the
// heading, then a cell per target.
func tableRows(s benchsummary.Summary, targets []string, figs []figure) []string {
	var rows []string
	for _, f := range figs {
		cells := make([]string, len(targets))
		found := false
		for i, t := range targets {
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
			rows = append(rows, fmt.Sprintf("| %s %s | %s |", f.label, arrow, strings.Join(cells, " | ")))
		}
	}
	return rows
}

// writeRows prints a table of rows with a column per target.
func writeRows(w io.Writer, targets []string, rows []string) {
	fmt.Fprintf(w, "| figure | %s |\n", strings.Join(targets, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("--:|", len(targets)))
	for _, r := range rows {
		fmt.Fprintln(w, r)
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
