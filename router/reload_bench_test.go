package router

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReloadUnderLoad measures what a reload costs the connections
// that arrive during it. Four clients make short connections through the
// proxy (ask: connect, a line each way, close) without pause; each op is
// one Reload that moves the static name to the other of two backends,
// followed by a 20 ms run of traffic under the new generation. Beside it,
// in the same run, the same clients run for as long with no reload: the
// baseline.
//
// Reported: the longest gap between two connections served, with reloads
// (max-gap-ms) and without (base-gap-ms), and the p99 time of a whole
// ask with reloads and without (p99-ms, base-p99-ms); failed counts the
// connections refused, reset or unanswered (the goal is 0). ns/op is the
// reload plus the 20 ms of traffic.
func BenchmarkReloadUnderLoad(b *testing.B) {
	a, bk := startNamedBackend(b, "A"), startNamedBackend(b, "B")
	cfg := testConfig(a.addr)
	p := startProxy(b, cfg)
	configs := []*Config{withEndpoints(cfg, bk.addr), withEndpoints(cfg, a.addr)}
	const settle = 20 * time.Millisecond

	// Without reloads, for the time the reloads will take (measured by a
	// first pass of as many reloads, discarded).
	warm := time.Now()
	for i := range b.N {
		if _, err := p.Reload(configs[i%2]); err != nil {
			b.Fatal(err)
		}
		time.Sleep(settle)
	}
	span := time.Since(warm)
	base := runClients(b, p.addr, func() { time.Sleep(span) })

	b.ResetTimer()
	with := runClients(b, p.addr, func() {
		for i := range b.N {
			if _, err := p.Reload(configs[i%2]); err != nil {
				b.Error(err)
				return
			}
			time.Sleep(settle)
		}
	})
	b.StopTimer()
	b.ReportMetric(ms(with.maxGap), "max-gap-ms")
	b.ReportMetric(ms(base.maxGap), "base-gap-ms")
	b.ReportMetric(ms(with.p99), "p99-ms")
	b.ReportMetric(ms(base.p99), "base-p99-ms")
	b.ReportMetric(float64(with.failed+base.failed), "failed")
	b.ReportMetric(float64(with.served)/float64(b.N), "conns/op")
}

type clientRun struct {
	served, failed int
	maxGap, p99    time.Duration
}

// runClients runs four clients of addr for as long as during runs.
func runClients(b *testing.B, addr string, during func()) clientRun {
	var (
		stop   atomic.Bool
		mu     sync.Mutex
		last   = time.Now()
		out    clientRun
		times  []time.Duration
		wg     sync.WaitGroup
		record = func(took time.Duration, ok bool) {
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				out.failed++
				return
			}
			now := time.Now()
			out.maxGap = max(out.maxGap, now.Sub(last))
			last = now
			out.served++
			times = append(times, took)
		}
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				start := time.Now()
				_, err := ask(addr)
				record(time.Since(start), err == nil)
			}
		}()
	}
	during()
	stop.Store(true)
	wg.Wait()
	if len(times) > 0 {
		slices.Sort(times)
		out.p99 = times[len(times)*99/100]
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
