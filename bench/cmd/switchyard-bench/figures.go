package main

import (
	"slices"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// The measurements, in the order each round runs them.
const (
	measureThroughput = "throughput"
	measureConnrate   = "connrate"
	measureEdge       = "connrate-edge" // plain, SNI-routed and PROXY-header connections; see edge.go
	measureReqresp    = "reqresp"       // pipelined requests on long-lived connections; see reqresp.go
	measureRTT        = "rtt"
	measureIdle       = "idle"
)

var measurements = []string{measureThroughput, measureConnrate, measureEdge, measureReqresp, measureRTT, measureIdle}

// relation is how the table relates a proxy's figure to direct's.
type relation int

const (
	unrelated       relation = iota
	shareOfDirect            // the proxy's median in % of direct's
	addedOverDirect          // the proxy's median minus direct's
)

// A figure is one number measured per target and round. Its name is part
// of the JSON contract with switchyard-benchplot.
type figure struct {
	name     string
	label    string // the table's row heading
	unit     string
	better   string
	decimals int
	relation relation
}

// figures are the figures of the main table; edgeFigures, those of the
// connrate-edge measurement, and reqrespFigures, those of reqresp, have a
// table each of their own. allFigures is all of them, in table order.
var (
	figures    = catalogue()
	allFigures = append(slices.Clip(figures), ownTableFigures()...)
)

func catalogue() []figure {
	var fs []figure
	for _, c := range cases {
		fs = append(fs, figure{"gbps_" + c.tag, "Gb/s " + c.name, "Gb/s", benchsummary.BetterHigher, 2, shareOfDirect})
	}
	for _, c := range cases {
		fs = append(fs, figure{"cpu_s_per_gib_" + c.tag, "CPU s/GiB " + c.name, "s/GiB", benchsummary.BetterLower, 3, unrelated})
	}
	for _, c := range cases {
		fs = append(fs, figure{"machine_cpu_s_per_gib_" + c.tag, "machine CPU s/GiB " + c.name, "s/GiB", benchsummary.BetterLower, 3, addedOverDirect})
	}
	return append(fs,
		figure{figConnPerSec, "conn/s", "conn/s", benchsummary.BetterHigher, 0, shareOfDirect},
		figure{figConnP99, "conn p99 ms", "ms", benchsummary.BetterLower, 2, unrelated},
		figure{figRTTP50, "RTT p50 µs", "µs", benchsummary.BetterLower, 1, addedOverDirect},
		figure{figRTTP99, "RTT p99 µs", "µs", benchsummary.BetterLower, 1, addedOverDirect},
		figure{figRTTP999, "RTT p99.9 µs", "µs", benchsummary.BetterLower, 1, addedOverDirect},
		figure{figRTT1P50, "RTT 1-CPU p50 µs", "µs", benchsummary.BetterLower, 1, addedOverDirect},
		figure{figRTT1P99, "RTT 1-CPU p99 µs", "µs", benchsummary.BetterLower, 1, addedOverDirect},
		figure{figRTT1P999, "RTT 1-CPU p99.9 µs", "µs", benchsummary.BetterLower, 1, addedOverDirect},
		figure{figIdleFds, "idle fds/conn", "fds", benchsummary.BetterLower, 2, unrelated},
		figure{figIdleRSS, "idle RSS B/conn", "B", benchsummary.BetterLower, 0, unrelated},
	)
}

const (
	figConnPerSec = "conn_per_s"
	figConnP99    = "conn_p99_ms"
	figRTTP50     = "rtt_p50_us"
	figRTTP99     = "rtt_p99_us"
	figRTTP999    = "rtt_p999_us"
	figRTT1P50    = "rtt1_p50_us" // the rtt1 figures: RTT with everything on one CPU
	figRTT1P99    = "rtt1_p99_us"
	figRTT1P999   = "rtt1_p999_us"
	figIdleFds    = "idle_fds_per_conn"
	figIdleRSS    = "idle_rss_b_per_conn"
)

func figureNamed(name string) (figure, bool) {
	for _, f := range allFigures {
		if f.name == name {
			return f, true
		}
	}
	return figure{}, false
}
