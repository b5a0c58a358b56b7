package main

import (
	"math"
	"testing"
	"time"
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

func TestPercentile(t *testing.T) {
	var xs []time.Duration
	for i := 1; i <= 1000; i++ {
		xs = append(xs, time.Duration(i))
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0.0001, 1},
	}
	for _, tt := range tests {
		if got := percentile(xs, tt.p); got != tt.want {
			t.Errorf("percentile(1..1000, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile([]time.Duration{7}, 0.999); got != 7 {
		t.Errorf("percentile of one = %v, want 7", got)
	}
}

func TestRoundTo(t *testing.T) {
	if got := roundTo(17.123456, 2); got != 17.12 {
		t.Errorf("roundTo(17.123456, 2) = %v", got)
	}
	if got := roundTo(3339.5, 0); got != 3340 {
		t.Errorf("roundTo(3339.5, 0) = %v", got)
	}
}
