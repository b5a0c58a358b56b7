package server

import (
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

// Counters are one loop's counts for one server: only that loop writes
// them (its listener as it accepts, the streams it accepted as they go),
// any goroutine reads them. A server has a set per loop, so that counting
// never has the loops fight over a cache line; Stats and the metrics sum
// them when asked.
type Counters struct {
	accepted      atomic.Uint64
	pausedAtLimit atomic.Uint64
	acceptErrors  atomic.Uint64
	resourceWaits atomic.Uint64
	connectTried  atomic.Uint64
	connectFailed [NumConnectFailures]atomic.Uint64
	ended         [NumReasons]atomic.Uint64
	bytesUp       atomic.Uint64
	bytesDown     atomic.Uint64

	// ConnectLatency is accept to upstream established, of the streams
	// that got one; Duration is accept to close, of every stream.
	ConnectLatency Histogram
	Duration       Histogram

	_ [64]byte // the next loop's counters start on another cache line
}

// Tally is the counters of one route of a server: a set per loop. Routes
// that name the same router and destination for the same address may share
// one, so that a reload that changes neither keeps counting where the last
// one left off.
type Tally struct {
	loops []Counters
}

// NewTally returns a tally for loops event loops, numbered from 0.
func NewTally(loops int) *Tally { return &Tally{loops: make([]Counters, loops)} }

// Loop returns l's counters.
func (t *Tally) Loop(l *netpoll.Loop) *Counters { return &t.loops[l.ID()] }

// Stats sums the loops' counters. Active is the connections counted as
// accepted and not yet as ended. Safe from any goroutine.
func (t *Tally) Stats() Stats {
	var st Stats
	for i := range t.loops {
		t.loops[i].add(&st)
	}
	var ended uint64
	for _, n := range st.Ended {
		ended += n
	}
	// Read after accepted, ended may count a connection accepted since.
	st.Active = max(int64(st.Accepted)-int64(ended), 0)
	return st
}

// AddBytes counts a finished stream's bytes. Its loop only.
func (c *Counters) AddBytes(up, down uint64) {
	c.bytesUp.Add(up)
	c.bytesDown.Add(down)
}

// ConnectAttempted counts a connect attempt to an endpoint. Its loop only.
func (c *Counters) ConnectAttempted() { c.connectTried.Add(1) }

// ConnectFailed counts a failed connect attempt. Its loop only.
func (c *Counters) ConnectFailed(f ConnectFailure) { c.connectFailed[f].Add(1) }

// add sums c into st.
func (c *Counters) add(st *Stats) {
	st.Accepted += c.accepted.Load()
	st.PausedAtLimit += c.pausedAtLimit.Load()
	st.AcceptErrors += c.acceptErrors.Load()
	st.ResourceWaits += c.resourceWaits.Load()
	st.ConnectAttempts += c.connectTried.Load()
	st.BytesUp += c.bytesUp.Load()
	st.BytesDown += c.bytesDown.Load()
	for i := range st.Ended {
		st.Ended[i] += c.ended[i].Load()
	}
	for i := range st.ConnectFailures {
		st.ConnectFailures[i] += c.connectFailed[i].Load()
	}
	c.ConnectLatency.addTo(&st.ConnectLatency, connectBuckets)
	c.Duration.addTo(&st.Duration, durationBuckets)
}

// Bucket bounds, in seconds, of the two histograms.
var (
	ConnectBuckets  = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	DurationBuckets = []float64{.001, .01, .1, 1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600}
	connectBuckets  = bounds(ConnectBuckets)
	durationBuckets = bounds(DurationBuckets)
)

// maxBuckets bounds the buckets of a Histogram.
const maxBuckets = 16

func bounds(seconds []float64) []time.Duration {
	out := make([]time.Duration, len(seconds))
	for i, s := range seconds {
		out[i] = time.Duration(s * float64(time.Second))
	}
	return out
}

// Histogram counts observations in fixed buckets, cumulative only when
// read. One writer (a loop), any readers; it does not allocate.
type Histogram struct {
	buckets [maxBuckets + 1]atomic.Uint64 // the last is +Inf
	count   atomic.Uint64
	sum     atomic.Uint64 // microseconds: 584,000 years of streams before it wraps
}

func (h *Histogram) observe(d time.Duration, bounds []time.Duration) {
	i := 0
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.count.Add(1)
	h.sum.Add(uint64(max(d, 0) / time.Microsecond))
}

// ObserveConnect records an accept-to-established latency. Its loop only.
func (c *Counters) ObserveConnect(d time.Duration) { c.ConnectLatency.observe(d, connectBuckets) }

// ObserveDuration records a stream's life. Its loop only.
func (c *Counters) ObserveDuration(d time.Duration) { c.Duration.observe(d, durationBuckets) }

// HistogramStats is a histogram as read: counts per bucket (not
// cumulative, the last beyond every bound), their total and sum.
type HistogramStats struct {
	Buckets []uint64
	Count   uint64
	Sum     float64 // seconds
}

func (h *Histogram) addTo(st *HistogramStats, bounds []time.Duration) {
	if st.Buckets == nil {
		st.Buckets = make([]uint64, len(bounds)+1)
	}
	// The count is the buckets' own sum, not count, which an observation
	// under way may have raised after its bucket or not yet: a scrape must
	// never see more in the buckets than in their total.
	for i := range st.Buckets {
		n := h.buckets[i].Load()
		st.Buckets[i] += n
		st.Count += n
	}
	st.Sum += float64(h.sum.Load()) / 1e6
}
