package main

import (
	"slices"
	"time"
)

type phaseStats struct {
	from, to time.Duration // the window: connections started in it count
	served   int
	failed   [nKinds]int
	maxGap   time.Duration
	gapAt    time.Duration // where the longest gap begins
	p50, p99 time.Duration
}

func (s phaseStats) failedTotal() int {
	t := 0
	for k := kindOK + 1; k < nKinds; k++ {
		t += s.failed[k]
	}
	return t
}

// phase summarises the records started in [from, to). The longest gap is
// between the completions of successful connections, counting the window's
// edges, so a stretch with no success at the start or end counts too.
func phase(recs []record, from, to time.Duration) phaseStats {
	s := phaseStats{from: from, to: to}
	var ends, lat []time.Duration
	for _, r := range recs {
		if r.start < from || r.start >= to {
			continue
		}
		if r.kind != kindOK {
			s.failed[r.kind]++
			continue
		}
		s.served++
		ends = append(ends, r.end)
		lat = append(lat, r.end-r.start)
	}
	s.maxGap, s.gapAt = maxGap(ends, from, to)
	slices.Sort(lat)
	s.p50, s.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return s
}

// maxGap is the longest interval in [from, to] without an element of
// ends, and where it begins.
func maxGap(ends []time.Duration, from, to time.Duration) (longest, at time.Duration) {
	ends = slices.Clone(ends)
	slices.Sort(ends)
	prev := from
	at = from
	for _, e := range append(ends, to) {
		if e > to {
			e = to
		}
		if e > prev {
			if e-prev > longest {
				longest, at = e-prev, prev
			}
			prev = e
		}
	}
	return longest, at
}

// percentile of sorted values, nearest rank; 0 for none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ---------------------------------------------------------------- one proxy
