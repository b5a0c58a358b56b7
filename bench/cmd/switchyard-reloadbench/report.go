package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 1:
		return fmt.Sprintf("%.3f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// gapWhere tells where a phase's longest gap began relative to the reload
// signal before it.
func gapWhere(s phaseStats, signals []time.Duration) string {
	i, _ := slices.BinarySearch(signals, s.gapAt+1)
	if i == 0 {
		return fmt.Sprintf("began %s ms into the phase, before the first signal", ms(s.gapAt-s.from))
	}
	return fmt.Sprintf("began %s ms after reload signal %d", ms(s.gapAt-signals[i-1]), i)
}

func failedByKind(s phaseStats) string {
	if s.failedTotal() == 0 {
		return "0"
	}
	var parts []string
	for k := kindOK + 1; k < nKinds; k++ {
		if s.failed[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", s.failed[k], kindNames[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func formatReport(results []peerResult, o options, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Reload cost (%s, %d CPUs, %d reloads %v apart, %d clients, %v connection timeout)\n\n",
		now.UTC().Format("2006-01-02T15:04Z"), runtime.NumCPU(), o.reloads, o.settle, o.clients, o.connTimeout)
	b.WriteString("| proxy | reloads signalled / logged | served base / reload | failed base | failed reload | longest gap ms base / reload | connect→tag p50 ms base / reload | p99 ms base / reload | last change took effect |\n")
	b.WriteString("|---|--:|--:|---|---|--:|--:|--:|---|\n")
	for _, r := range results {
		switch {
		case r.skipped != "":
			fmt.Fprintf(&b, "| %s | skipped | | | | | | | |\n", r.name)
			continue
		case r.failed != "" && r.reloads == 0:
			fmt.Fprintf(&b, "| %s | failed | | | | | | | |\n", r.name)
			continue
		}
		logged := "?"
		if r.logReloads >= 0 {
			logged = fmt.Sprint(r.logReloads)
		}
		fmt.Fprintf(&b, "| %s | %d / %s | %d / %d | %s | %s | %s / %s | %s / %s | %s / %s | %s |\n",
			r.name, r.reloads, logged, r.base.served, r.reload.served, failedByKind(r.base), failedByKind(r.reload),
			ms(r.base.maxGap), ms(r.reload.maxGap), ms(r.base.p50), ms(r.reload.p50), ms(r.base.p99), ms(r.reload.p99),
			r.effect)
	}
	b.WriteString("\nBase: clients only; reload: the same clients while the configuration is rewritten (the backend alternates A/B) " +
		"and the reload signal sent every settle interval. Counted by connection start; the longest gap is between two " +
		"successful connections' tags (phase edges included). Failures: refused (ECONNREFUSED), reset (ECONNRESET), " +
		"eof (closed before the tag), timeout (no tag within the timeout). Logged: the reloads the proxy's own log shows it " +
		"performing (switchyard `reloaded`, haproxy `Reloading HAProxy`, nginx `(SIGHUP) received ... reconfiguring`). " +
		"The last change is checked with one connection right after the last settle interval.\n\nNotes:\n")
	var vs []string
	for _, r := range results {
		if r.version != "" {
			vs = append(vs, r.version)
		}
	}
	vs = append(vs, "kernel "+kernel())
	fmt.Fprintf(&b, "- versions: %s\n", strings.Join(vs, ", "))
	for _, r := range results {
		if r.skipped != "" {
			fmt.Fprintf(&b, "- %s: skipped: %s\n", r.name, r.skipped)
			continue
		}
		if r.failed != "" {
			fmt.Fprintf(&b, "- %s: failed: %s\n", r.name, r.failed)
		}
		if r.reloads > 0 {
			fmt.Fprintf(&b, "- %s: baseline %s ms, reload phase %s ms", r.name, ms(r.base.to-r.base.from), ms(r.reload.to-r.reload.from))
			if g := r.reload; g.maxGap > 0 {
				fmt.Fprintf(&b, "; longest reload-phase gap %s", gapWhere(g, r.signals))
			}
			if r.logReloads >= 0 && r.logReloads < r.reloads {
				fmt.Fprintf(&b, "; its log shows %d reloads for %d signals: the others arrived while it was still busy with a reload, and were merged or lost",
					r.logReloads, r.reloads)
			}
			b.WriteString("\n")
		}
		for k := kindOK + 1; k < nKinds; k++ {
			if e, ok := r.samples[k]; ok {
				fmt.Fprintf(&b, "- %s: %s, e.g. `%s`\n", r.name, kindNames[k], e)
			}
		}
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s: %s\n", r.name, n)
		}
	}
	for _, r := range results {
		if r.skipped == "" && r.how != "" {
			fmt.Fprintf(&b, "- %s run as: %s\n", r.name, r.how)
		}
	}
	return b.String()
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
