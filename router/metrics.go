package router

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-proxy/switchyard/duplex"
	"github.com/switchyard-proxy/switchyard/server"
)

// The metrics are read when Prometheus scrapes: the collector sums the
// loops' plain counters then, and nothing on the data path looks up a
// label or touches a shared metric.

const namespace = "switchyard"

var (
	acceptedDesc = prometheus.NewDesc(namespace+"_connections_accepted_total",
		"Connections accepted by a server.", []string{"router", "server", "dst"}, nil)
	openDesc = prometheus.NewDesc(namespace+"_connections_open",
		"Connections accepted by a server and not yet closed.", []string{"router", "server", "dst"}, nil)
	closedDesc = prometheus.NewDesc(namespace+"_connections_closed_total",
		"Connections closed, by the reason they ended.", []string{"router", "server", "dst", "reason"}, nil)
	bytesDesc = prometheus.NewDesc(namespace+"_bytes_total",
		"Bytes moved by closed connections: up is client to endpoint, down endpoint to client.",
		[]string{"router", "server", "dst", "direction"}, nil)
	connectAttemptsDesc = prometheus.NewDesc(namespace+"_connect_attempts_total",
		"Connect attempts to endpoints (a connection makes one per endpoint it tries).", []string{"router", "server", "dst"}, nil)
	connectFailuresDesc = prometheus.NewDesc(namespace+"_connect_failures_total",
		"Failed connect attempts to endpoints, by cause.", []string{"router", "server", "dst", "cause"}, nil)
	acceptPausesDesc = prometheus.NewDesc(namespace+"_accept_pauses_total",
		"Times a server stopped accepting for a while: at max_connections, or out of descriptors or memory "+
			"(accept failing, or a connect finding none).", []string{"router", "server", "cause"}, nil)
	connectLatencyDesc = prometheus.NewDesc(namespace+"_connect_duration_seconds",
		"Time from accept to an established connection to an endpoint.", []string{"router", "server", "dst"}, nil)
	durationDesc = prometheus.NewDesc(namespace+"_stream_duration_seconds",
		"Life of a connection, accept to close.", []string{"router", "server", "dst"}, nil)
	namesDesc = prometheus.NewDesc(namespace+"_names",
		"Destination names cached by a router, by the state of their answer.", []string{"router", "state"}, nil)
	endpointsDesc = prometheus.NewDesc(namespace+"_endpoints",
		"Endpoints of a destination name, by state (available, set_aside, retired).", []string{"router", "dst", "state"}, nil)
	waitersDesc = prometheus.NewDesc(namespace+"_waiters",
		"Connections waiting for a name's first answer.", []string{"router", "dst"}, nil)
	interpUpdatesDesc = prometheus.NewDesc(namespace+"_interpreter_updates_total",
		"Answers an interpreter delivered (endpoint sets and names that do not exist).", []string{"router", "kind"}, nil)
	interpErrorsDesc = prometheus.NewDesc(namespace+"_interpreter_errors_total",
		"Failed resolutions and requests of an interpreter.", []string{"router", "kind"}, nil)
	interpReconnectsDesc = prometheus.NewDesc(namespace+"_interpreter_reconnects_total",
		"Watches and requests an interpreter started again after an end or an error.", []string{"router", "kind"}, nil)
	interpAgeDesc = prometheus.NewDesc(namespace+"_interpreter_last_good_age_seconds",
		"Seconds since an interpreter's last good answer; absent before the first.", []string{"router", "kind"}, nil)
	pipesDesc = prometheus.NewDesc(namespace+"_pipes",
		"Splice pipes of the event loops: in use by a stream, or pooled.", []string{"state"}, nil)
	reloadsDesc = prometheus.NewDesc(namespace+"_reloads_total",
		"Configuration reloads, by result: taken, or failed (the running configuration kept).", []string{"result"}, nil)
	generationDesc = prometheus.NewDesc(namespace+"_config_generation",
		"The configuration running: 1 at start, one more for each reload taken.", nil, nil)
	generationsLiveDesc = prometheus.NewDesc(namespace+"_config_generations_live",
		"Configurations live: the running one, and those before it with connections still open.", nil, nil)
	offloadedDesc = prometheus.NewDesc(namespace+"_offloaded_streams_total",
		"Streams whose bytes the kernel moved (offload = \"sockmap\"), in this process.", nil, nil)
	offloadFallbacksDesc = prometheus.NewDesc(namespace+"_offload_fallbacks_total",
		"Streams of offload = \"sockmap\" servers the kernel did not take, by reason, in this process: spliced instead, or reset where it refused after moving bytes.", []string{"reason"}, nil)
	buildDesc = prometheus.NewDesc(namespace+"_build_info",
		"Always 1: the version of Switchyard and of Go it was built with.", []string{"version", "goversion"}, nil)
)

// pipeScrapeWait bounds how long a scrape waits for the loops' pipe counts.
const pipeScrapeWait = time.Second

// Collector is the proxy's prometheus.Collector.
type Collector struct {
	p       *Proxy
	version string
}

var _ prometheus.Collector = (*Collector)(nil)

// Collector returns the proxy's metrics, version naming the build.
func (p *Proxy) Collector(version string) *Collector { return &Collector{p: p, version: version} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{acceptedDesc, openDesc, closedDesc, bytesDesc, connectAttemptsDesc, connectFailuresDesc,
		acceptPausesDesc, connectLatencyDesc, durationDesc, namesDesc, endpointsDesc, waitersDesc,
		interpUpdatesDesc, interpErrorsDesc, interpReconnectsDesc, interpAgeDesc, pipesDesc, buildDesc,
		reloadsDesc, generationDesc, generationsLiveDesc, offloadedDesc, offloadFallbacksDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(buildDesc, prometheus.GaugeValue, 1, c.version, runtime.Version())
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(c.p.reloads[reloadTaken].Load()), "taken")
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(c.p.reloads[reloadFailed].Load()), "failed")
	ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, float64(c.p.Generation()))
	ch <- prometheus.MustNewConstMetric(generationsLiveDesc, prometheus.GaugeValue, float64(c.p.liveGenerations()))
	ch <- prometheus.MustNewConstMetric(offloadedDesc, prometheus.CounterValue, float64(duplex.OffloadsStarted()))
	for reason, n := range duplex.OffloadFallbacks() {
		ch <- prometheus.MustNewConstMetric(offloadFallbacksDesc, prometheus.CounterValue, float64(n), reason)
	}
	for _, tl := range c.p.watched() {
		collectTally(ch, tl)
	}
	for _, r := range c.p.Routers() {
		c.collectNames(ch, r)
		c.collectInterpreter(ch, r)
	}
	if inUse, pooled, ok := c.p.pipes(pipeScrapeWait); ok {
		ch <- prometheus.MustNewConstMetric(pipesDesc, prometheus.GaugeValue, float64(inUse), "in_use")
		ch <- prometheus.MustNewConstMetric(pipesDesc, prometheus.GaugeValue, float64(pooled), "pooled")
	}
}

// collectTally reports the counts of a route: those of the running
// generation, and of the ones before it while they have connections open
// (a reload that kept the route's router, address and destination kept
// its tally too).
func collectTally(ch chan<- prometheus.Metric, tl *tally) {
	st := tl.t.Stats()
	router, listen, dst := tl.key.router, tl.key.listen, tl.key.dst
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{router, listen}, labels...)...)
	}
	counter(acceptedDesc, st.Accepted, dst)
	ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(max(st.Active, 0)), router, listen, dst)
	for r, n := range st.Ended {
		counter(closedDesc, n, dst, server.Reason(r).String())
	}
	counter(bytesDesc, st.BytesUp, dst, "up")
	counter(bytesDesc, st.BytesDown, dst, "down")
	counter(connectAttemptsDesc, st.ConnectAttempts, dst)
	for f, n := range st.ConnectFailures {
		counter(connectFailuresDesc, n, dst, server.ConnectFailure(f).String())
	}
	counter(acceptPausesDesc, st.PausedAtLimit, "max_connections")
	counter(acceptPausesDesc, st.AcceptErrors+st.ResourceWaits, "resources")
	ch <- histogram(connectLatencyDesc, st.ConnectLatency, server.ConnectBuckets, router, listen, dst)
	ch <- histogram(durationDesc, st.Duration, server.DurationBuckets, router, listen, dst)
}

// histogram makes a Prometheus histogram of h, whose buckets are not
// cumulative and end with the one past every bound.
func histogram(d *prometheus.Desc, h server.HistogramStats, bounds []float64, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		if i < len(h.Buckets) {
			cum += h.Buckets[i]
		}
		buckets[b] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, labels...)
}

func (c *Collector) collectNames(ch chan<- prometheus.Metric, r *Router) {
	states := map[string]int{}
	for _, n := range r.Names() {
		states[n.State]++
		eps := map[string]int{"available": 0, "set_aside": 0, "retired": 0}
		for _, e := range n.Endpoints {
			eps[e.State]++
		}
		for st, k := range eps {
			ch <- prometheus.MustNewConstMetric(endpointsDesc, prometheus.GaugeValue, float64(k), r.label, n.Name, st)
		}
		ch <- prometheus.MustNewConstMetric(waitersDesc, prometheus.GaugeValue, float64(n.Waiters), r.label, n.Name)
	}
	for _, st := range []string{"pending", "bound", "not_found", "failed"} {
		ch <- prometheus.MustNewConstMetric(namesDesc, prometheus.GaugeValue, float64(states[st]), r.label, st)
	}
}

func (c *Collector) collectInterpreter(ch chan<- prometheus.Metric, r *Router) {
	st, kind := r.names.stats, r.names.cfg.Interpreter.Kind
	ch <- prometheus.MustNewConstMetric(interpUpdatesDesc, prometheus.CounterValue, float64(st.Updates.Load()), r.label, kind)
	ch <- prometheus.MustNewConstMetric(interpErrorsDesc, prometheus.CounterValue, float64(st.Errors.Load()), r.label, kind)
	ch <- prometheus.MustNewConstMetric(interpReconnectsDesc, prometheus.CounterValue, float64(st.Reconnects.Load()), r.label, kind)
	if last := st.LastGood.Load(); last != 0 {
		age := time.Since(time.Unix(0, last)).Seconds()
		ch <- prometheus.MustNewConstMetric(interpAgeDesc, prometheus.GaugeValue, max(age, 0), r.label, kind)
	}
}

// pipes asks every loop for its pipe pool's counts (the pools are the
// loops' own), waiting at most wait; ok is false if a loop did not answer.
func (p *Proxy) pipes(wait time.Duration) (inUse, pooled int, ok bool) {
	if p.stopping.Load() {
		return 0, 0, false // the loops may be freed: post nothing to them
	}
	type count struct{ open, free int }
	answers := make(chan count, len(p.workers))
	for _, w := range p.workers {
		if w.loop.Post(func() { answers <- count{w.pool.Open(), w.pool.Free()} }) != nil {
			return 0, 0, false
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for range p.workers {
		select {
		case a := <-answers:
			inUse += a.open - a.free
			pooled += a.free
		case <-t.C:
			return 0, 0, false
		}
	}
	return inUse, pooled, true
}
