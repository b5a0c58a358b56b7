package main

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want spread
	}{
		{"one", []float64{4}, spread{4, 4, 4}},
		{"odd, unsorted", []float64{9, 1, 5}, spread{5, 1, 9}},
		{"even: mean of the middle two", []float64{4, 1, 3, 10}, spread{3.5, 1, 10}},
		{"NaNs ignored", []float64{nan, 2, nan, 6}, spread{4, 2, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.xs...)
			if got := spreadOf(tt.xs); got != tt.want {
				t.Fatalf("spreadOf(%v) = %+v, want %+v", tt.xs, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.xs[i] && !math.IsNaN(in[i]) {
					t.Fatalf("spreadOf modified its input: %v, was %v", tt.xs, in)
				}
			}
		})
	}
	for _, xs := range [][]float64{nil, {nan}} {
		if s := spreadOf(xs); !math.IsNaN(s.median) || !math.IsNaN(s.min) || !math.IsNaN(s.max) {
			t.Errorf("spreadOf(%v) = %+v, want all NaN", xs, s)
		}
	}
}

func TestSummarizeAndTable(t *testing.T) {
	p1 := cases[0]
	results := []runResult{
		{round: 1, bcase: p1, target: targetDirect, iperf: iperfSum{40e9, 10 << 30}},
		{round: 1, bcase: p1, target: targetSwitchyard, iperf: iperfSum{20e9, 4 << 30}, cpuSeconds: 2},
		{round: 2, bcase: p1, target: targetDirect, iperf: iperfSum{44e9, 11 << 30}},
		{round: 2, bcase: p1, target: targetSwitchyard, iperf: iperfSum{24e9, 5 << 30}, cpuSeconds: 3},
		{round: 3, bcase: p1, target: targetSwitchyard, err: errors.New("iperf3: the server is busy running a test. try again later")},
	}
	rows := summarize(results)
	if len(rows) != len(cases) {
		t.Fatalf("%d rows, want %d", len(rows), len(cases))
	}
	got := rows[0]
	if got.direct != (spread{42, 40, 44}) || got.switchyard != (spread{22, 20, 24}) || got.cpuPerGiB != (spread{0.55, 0.5, 0.6}) {
		t.Fatalf("P1 fwd summary = %+v", got)
	}
	var b bytes.Buffer
	writeTable(&b, rows, options{secs: 5, runs: 3})
	for _, want := range []string{
		"| P1 fwd | 42.00 (40.00–44.00) | 22.00 (20.00–24.00) | 52.4 | 0.550 |",
		"| P4 rev | n/a | n/a | n/a | n/a |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteCSV(t *testing.T) {
	results := []runResult{
		{round: 1, bcase: cases[1], target: targetSwitchyard, iperf: iperfSum{20e9, 4 << 30}, cpuSeconds: 2},
		{round: 1, bcase: cases[1], target: targetDirect, err: errors.New("iperf3: the server is busy running a test. try again later")},
	}
	var b bytes.Buffer
	if err := writeCSV(&b, results); err != nil {
		t.Fatal(err)
	}
	want := "round,case,target,gbps,bytes,cpu_seconds,cpu_s_per_gib,error\n" +
		"1,P1 rev,switchyard,20.000,4294967296,2.00,0.5000,\n" +
		"1,P1 rev,direct,,,,,iperf3: the server is busy running a test. try again later\n"
	if b.String() != want {
		t.Fatalf("CSV:\n%s\nwant:\n%s", b.String(), want)
	}
}
