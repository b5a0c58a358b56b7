package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// writeReport writes compare.md: what was measured where, the table, the
// notes of the run and the summary grid.
func writeReport(w io.Writer, s *benchsummary.Summary, p pair, t table) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Switchyard bench %s\n\n", s.Commit)
	if s.Date != "" {
		fmt.Fprintf(&b, "%s. ", s.Date)
	}
	fmt.Fprintf(&b, "%d CPU(s), Linux %s, %s.\n\n", s.Host.CPUs, s.Host.Kernel, s.Host.Go)
	st := s.Settings
	fmt.Fprintf(&b, "%d run(s); iperf3 %d s; connection rate %d s at concurrency %d; RTT %d × %d B; idle %d connections.\n\n",
		st.Runs, st.IperfSecs, st.ConnrateSecs, st.ConnrateConcurrency, st.RTTN, st.RTTSize, st.IdleN)
	if err := t.writeMarkdown(&b); err != nil {
		return err
	}
	b.WriteString("\n" + legend(p) + "\n")
	if len(s.Notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	b.WriteString("\n![summary](summary.png)\n")
	_, err := w.Write(b.Bytes())
	return err
}

// legend says how to read the cells, and the verdict when there is one.
func legend(p pair) string {
	s := "Cells: median (min–max) over the runs."
	if p.ok() {
		s += fmt.Sprintf(" %s/%s: ratio of the medians; the verdict is %q when the two min–max ranges overlap.",
			p.head, p.base, verdictSpread)
	}
	return s
}

func writeReportFile(path string, s *benchsummary.Summary, p pair, t table) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeReport(f, s, p, t); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
