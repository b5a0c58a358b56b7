package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"time"
)

// rttConfig says how rtt measures. Zero fields take the defaults beside them.
type rttConfig struct {
	N       int           // measured round trips; zero: 20000
	Size    int           // bytes per round trip; zero: 64
	Warmup  int           // unmeasured round trips first; zero: min(N, 1000)
	Timeout time.Duration // for connecting, and for every 256 round trips; zero: 5s
}

func (c rttConfig) n() int                 { return orDefault(c.N, 20000) }
func (c rttConfig) size() int              { return orDefault(c.Size, 64) }
func (c rttConfig) warmup() int            { return orDefault(c.Warmup, min(c.n(), 1000)) }
func (c rttConfig) timeout() time.Duration { return orDefault(c.Timeout, 5*time.Second) }

// rttResult holds percentiles of the measured round trips.
type rttResult struct {
	P50, P99, P999, Max time.Duration
}

// rtt measures ping-pong round trips on one persistent connection to the
// echo server at addr: write Size bytes, read them back, N times after
// Warmup unmeasured ones.
func rtt(ctx context.Context, addr string, cfg rttConfig) (rttResult, error) {
	d := net.Dialer{Timeout: cfg.timeout()}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return rttResult{}, fmt.Errorf("rtt: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	msg := bytes.Repeat([]byte{'r'}, cfg.size())
	buf := make([]byte, cfg.size())
	lat := make([]time.Duration, cfg.n())
	warmup := cfg.warmup()
	for i := -warmup; i < len(lat); i++ {
		// Refreshed now and then, not per round trip, to keep the
		// deadline's timer out of the measured path.
		if (i+warmup)%256 == 0 {
			c.SetDeadline(time.Now().Add(cfg.timeout()))
		}
		t0 := time.Now()
		if err := echoOnce(c, msg, buf); err != nil {
			if ctx.Err() != nil {
				return rttResult{}, fmt.Errorf("rtt: interrupted: %w", context.Cause(ctx))
			}
			return rttResult{}, fmt.Errorf("rtt %s: round trip %d: %w", addr, i, err)
		}
		if i >= 0 {
			lat[i] = time.Since(t0)
		}
	}
	slices.Sort(lat)
	return rttResult{
		P50:  percentile(lat, 0.50),
		P99:  percentile(lat, 0.99),
		P999: percentile(lat, 0.999),
		Max:  lat[len(lat)-1],
	}, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
