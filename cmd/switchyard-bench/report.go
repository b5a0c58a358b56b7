package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
)

// caseSummary is one row of the table.
type caseSummary struct {
	name       string
	direct     spread // Gb/s
	switchyard spread // Gb/s
	cpuPerGiB  spread // switchyard CPU s/GiB
}

// summarize groups the successful runs by case, in the order of cases.
func summarize(results []runResult) []caseSummary {
	var out []caseSummary
	for _, c := range cases {
		var direct, proxied, cpu []float64
		for _, r := range results {
			if r.bcase.name != c.name || r.err != nil {
				continue
			}
			gbps := r.iperf.bitsPerSecond / 1e9
			if r.target == targetDirect {
				direct = append(direct, gbps)
			} else {
				proxied = append(proxied, gbps)
				cpu = append(cpu, r.cpuPerGiB())
			}
		}
		out = append(out, caseSummary{c.name, spreadOf(direct), spreadOf(proxied), spreadOf(cpu)})
	}
	return out
}

func writeTable(w io.Writer, rows []caseSummary, o options) {
	fmt.Fprintln(w, "| case | direct Gb/s (median, min–max) | switchyard Gb/s (median, min–max) | ratio % | switchyard CPU s/GiB (median) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.name, gbpsCell(r.direct), gbpsCell(r.switchyard),
			number(100*r.switchyard.median/r.direct.median, 1), number(r.cpuPerGiB.median, 3))
	}
	pipe := "default"
	if o.pipeSize > 0 {
		pipe = strconv.Itoa(o.pipeSize)
	}
	fmt.Fprintf(w, "\niperf3 -t %d, %d round(s), switchyard workers=%d pipe_size=%s; ratio = switchyard median / direct median.\n",
		o.secs, o.runs, o.workers, pipe)
}

func gbpsCell(s spread) string {
	if math.IsNaN(s.median) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.median, s.min, s.max)
}

func number(x float64, decimals int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(x, 'f', decimals, 64)
}

var csvHeader = []string{"round", "case", "target", "gbps", "bytes", "cpu_seconds", "cpu_s_per_gib", "error"}

// writeCSVFile writes one row per run, failed ones included.
func writeCSVFile(path string, results []runResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeCSV(f, results); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func writeCSV(w io.Writer, results []runResult) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	for _, r := range results {
		cw.Write(csvRow(r))
	}
	cw.Flush()
	return cw.Error()
}

func csvRow(r runResult) []string {
	row := []string{strconv.Itoa(r.round), r.bcase.name, r.target, "", "", "", "", ""}
	if r.err != nil {
		row[7] = r.err.Error()
		return row
	}
	row[3] = strconv.FormatFloat(r.iperf.bitsPerSecond/1e9, 'f', 3, 64)
	row[4] = strconv.FormatFloat(r.iperf.bytes, 'f', 0, 64)
	if r.target == targetSwitchyard {
		row[5] = strconv.FormatFloat(r.cpuSeconds, 'f', 2, 64)
		row[6] = number(r.cpuPerGiB(), 4)
	}
	return row
}
