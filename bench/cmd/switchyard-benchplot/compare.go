package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// peers are the reference targets a bench run may measure besides the
// router builds under test; they are never picked as -base or -head.
var peers = []string{"direct", "haproxy", "nginx"}

// pair names the two targets compared in the ratio column; both empty when
// there is nothing to compare.
type pair struct{ base, head string }

func (p pair) ok() bool { return p.base != "" }

// choosePair applies -base and -head over the default: the two targets that
// are not peers, in the order of targets, when there are exactly two.
func choosePair(s *benchsummary.Summary, base, head string) (pair, error) {
	var builds []string
	for _, t := range s.Targets {
		if !slices.Contains(peers, t) {
			builds = append(builds, t)
		}
	}
	if len(builds) == 2 {
		base = cmp.Or(base, builds[0])
		head = cmp.Or(head, builds[1])
	}
	for _, f := range []struct{ flag, target string }{{"-base", base}, {"-head", head}} {
		if f.target != "" && !slices.Contains(s.Targets, f.target) {
			return pair{}, fmt.Errorf("%s: target %q is not in the summary; it has %s", f.flag, f.target, strings.Join(s.Targets, ", "))
		}
	}
	switch {
	case base == "" && head == "":
		return pair{}, nil
	case base == "":
		return pair{}, fmt.Errorf("-head %s needs -base: cannot tell which target to compare with", head)
	case head == "":
		return pair{}, fmt.Errorf("-base %s needs -head: cannot tell which target to compare with", base)
	case base == head:
		return pair{}, fmt.Errorf("-base and -head both name %q", base)
	}
	return pair{base, head}, nil
}

type verdict string

const (
	verdictBetter  verdict = "better"
	verdictWorse   verdict = "worse"
	verdictSpread  verdict = "within spread"
	verdictMissing verdict = "n/a"
)

// compare returns head's median over base's (NaN when base's is zero) and
// whether head is better. The runs of a target scatter between min and max,
// so a difference counts only when the two ranges do not overlap.
func compare(base, head benchsummary.Figure) (ratio float64, v verdict) {
	ratio = math.NaN()
	if base.Median != 0 {
		ratio = head.Median / base.Median
	}
	if head.Min <= base.Max && base.Min <= head.Max {
		return ratio, verdictSpread
	}
	if (head.Median > base.Median) == (head.Better == benchsummary.BetterHigher) {
		return ratio, verdictBetter
	}
	return ratio, verdictWorse
}

// table is the comparison, one row per figure, as text cells.
type table struct {
	header []string
	right  []bool // right-aligned columns
	rows   [][]string
}

// compareTable lays out each measured target's median and min–max per figure
// and, given a pair, head/base and the verdict.
func compareTable(s *benchsummary.Summary, p pair) table {
	targets := measuredTargets(s)
	t := table{header: []string{"figure", "unit", "better"}, right: []bool{false, false, false}}
	for _, name := range targets {
		t.header = append(t.header, name)
		t.right = append(t.right, true)
	}
	if p.ok() {
		t.header = append(t.header, p.head+"/"+p.base, "verdict")
		t.right = append(t.right, true, false)
	}
	for _, name := range figureNames(s) {
		// validate saw to it that every entry of a figure has the same unit and sense.
		f := s.Figures[slices.IndexFunc(s.Figures, func(f benchsummary.Figure) bool { return f.Figure == name })]
		row := []string{name, f.Unit, f.Better}
		for _, target := range targets {
			row = append(row, spreadCell(s.Lookup(target, name)))
		}
		if p.ok() {
			row = append(row, ratioCells(s, p, name)...)
		}
		t.rows = append(t.rows, row)
	}
	return t
}

func spreadCell(f benchsummary.Figure, ok bool) string {
	if !ok {
		return "–"
	}
	d := decimals(f.Median)
	return fmt.Sprintf("%s (%s–%s)", formatFixed(f.Median, d), formatFixed(f.Min, d), formatFixed(f.Max, d))
}

func ratioCells(s *benchsummary.Summary, p pair, name string) []string {
	base, okBase := s.Lookup(p.base, name)
	head, okHead := s.Lookup(p.head, name)
	switch {
	case !okBase && !okHead:
		return []string{"–", string(verdictMissing)}
	case !okBase:
		return []string{"–", "no " + p.base}
	case !okHead:
		return []string{"–", "no " + p.head}
	}
	ratio, v := compare(base, head)
	return []string{formatRatio(ratio), string(v)}
}

func formatRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(r, 'f', 3, 64)
}

// formatValue prints about three significant digits without an exponent, so
// that 17.5 Gb/s, 0.412 s/GiB and 41234 B read alike in one table.
func formatValue(v float64) string {
	return formatFixed(v, decimals(v))
}

// decimals is how many decimals show three significant digits of v; a
// number of 100 or more shows all its integer digits.
func decimals(v float64) int {
	a := math.Abs(v)
	if a == 0 || a >= 100 {
		return 0
	}
	return min(2-int(math.Floor(math.Log10(a))), 12)
}

func formatFixed(v float64, decimals int) string {
	if math.Abs(v) >= 1e15 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// writeMarkdown writes t as a markdown table whose columns are padded so
// that it also reads as plain text in a terminal.
func (t table) writeMarkdown(w io.Writer) error {
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(escapeCell(c)), 3)
		}
	}
	line := func(cells []string) string {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			c = escapeCell(c)
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if t.right[i] {
				c = pad + c
			} else {
				c += pad
			}
			b.WriteString(" " + c + " |")
		}
		return b.String() + "\n"
	}
	rule := make([]string, len(t.header))
	for i, n := range widths {
		rule[i] = strings.Repeat("-", n)
		if t.right[i] {
			rule[i] = rule[i][1:] + ":"
		}
	}
	var b strings.Builder
	b.WriteString(line(t.header))
	b.WriteString(line(rule))
	for _, r := range t.rows {
		b.WriteString(line(r))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// escapeCell keeps a target name such as "a|b" from splitting a column.
func escapeCell(c string) string {
	c = strings.ReplaceAll(c, "\n", " ")
	return strings.ReplaceAll(c, "|", `\|`)
}
