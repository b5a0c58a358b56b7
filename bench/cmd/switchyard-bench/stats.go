package main

import (
	"math"
	"slices"
	"time"
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

// percentile is the nearest-rank p-quantile (0 < p <= 1) of sorted, which
// must be sorted ascending and not empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// roundTo rounds x to the given number of decimals.
func roundTo(x float64, decimals int) float64 {
	scale := math.Pow(10, float64(decimals))
	return math.Round(x*scale) / scale
}
