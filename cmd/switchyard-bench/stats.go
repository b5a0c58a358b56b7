package main

import (
	"math"
	"slices"
)

var nan = math.NaN()

// spread is the median and range of a set of measurements; all NaN when
// the set is empty.
type spread struct {
	median, min, max float64
}

// spreadOf summarizes xs, ignoring NaNs. xs is not modified.
func spreadOf(xs []float64) spread {
	s := slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
	if len(s) == 0 {
		return spread{nan, nan, nan}
	}
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return spread{median: med, min: s[0], max: s[n-1]}
}
