package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

func TestCatalogueRTT1(t *testing.T) {
	for _, name := range []string{figRTT1P50, figRTT1P99, figRTT1P999} {
		f, ok := figureNamed(name)
		if !ok {
			t.Errorf("%s is not in the catalogue", name)
			continue
		}
		if f.unit != "µs" || f.better != benchsummary.BetterLower || f.relation != addedOverDirect {
			t.Errorf("%s = %+v, want µs, lower is better, added over direct", name, f)
		}
	}
}

func TestWriteTableRTT1(t *testing.T) {
	targets := []string{targetDirect, targetSwitchyard}
	s := benchsummary.Summary{Targets: targets, Figures: summarize(targets, []sample{
		{1, targetDirect, figRTTP50, 40}, {1, targetSwitchyard, figRTTP50, 70},
		{1, targetDirect, figRTT1P50, 12}, {1, targetSwitchyard, figRTT1P50, 20},
	})}
	var b bytes.Buffer
	writeTable(&b, s)
	want := "| RTT p50 µs ↓ | 40.0 | 70.0 · +30.0 |\n| RTT 1-CPU p50 µs ↓ | 12.0 | 20.0 · +8.0 |\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("table lacks\n%s\n%s", want, b.String())
	}
}
