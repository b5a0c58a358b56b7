package server

import (
	"testing"
	"time"
)

// A histogram read sums its loops: buckets as counted (the last beyond
// every bound), a count that is the buckets' total, a sum in seconds.
func TestHistogramStats(t *testing.T) {
	var a, b Counters
	a.ObserveConnect(50 * time.Microsecond) // first bucket (≤ 100µs)
	a.ObserveConnect(2 * time.Millisecond)  // ≤ 2.5ms
	b.ObserveConnect(time.Minute)           // past every bound
	var st Stats
	a.add(&st)
	b.add(&st)
	h := st.ConnectLatency
	if len(h.Buckets) != len(ConnectBuckets)+1 {
		t.Fatalf("%d buckets for %d bounds", len(h.Buckets), len(ConnectBuckets))
	}
	if h.Buckets[0] != 1 || h.Buckets[4] != 1 || h.Buckets[len(h.Buckets)-1] != 1 || h.Count != 3 {
		t.Errorf("buckets %v, count %d", h.Buckets, h.Count)
	}
	if want := 60.00205; h.Sum < want-1e-6 || h.Sum > want+1e-6 {
		t.Errorf("sum %v s, want %v", h.Sum, want)
	}
}

func TestHistogramDoesNotAllocate(t *testing.T) {
	var c Counters
	if n := testing.AllocsPerRun(100, func() {
		c.ObserveConnect(time.Millisecond)
		c.ObserveDuration(time.Second)
	}); n != 0 {
		t.Errorf("%v allocations per observation", n)
	}
}
