package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// connrateConfig says how connrate loads a target. Zero fields take the
// defaults named beside them.
type connrateConfig struct {
	Concurrency int           // workers; zero: 50
	Duration    time.Duration // zero: 5s
	Size        int           // bytes exchanged per connection; zero: 32
	Timeout     time.Duration // per connection, connect to echo; zero: 5s
}

func (c connrateConfig) concurrency() int        { return orDefault(c.Concurrency, 50) }
func (c connrateConfig) duration() time.Duration { return orDefault(c.Duration, 5*time.Second) }
func (c connrateConfig) size() int               { return orDefault(c.Size, 32) }
func (c connrateConfig) timeout() time.Duration  { return orDefault(c.Timeout, 5*time.Second) }

// connrateResult is what connrate measured. The percentiles are of the
// time from starting to connect to having read the echo back.
type connrateResult struct {
	Conns    int // completed exchanges
	Errors   int
	FirstErr error
	Elapsed  time.Duration
	P50, P99 time.Duration
}

func (r connrateResult) perSecond() float64 { return float64(r.Conns) / r.Elapsed.Seconds() }

// connrate runs cfg.Concurrency workers against the echo server at addr,
// each looping connect, write Size bytes, read them back, close, until
// Duration has passed. A connection in flight at the end is finished and
// counted. It fails if ctx ends or no exchange completes.
func connrate(ctx context.Context, addr string, cfg connrateConfig) (connrateResult, error) {
	start := time.Now()
	end := start.Add(cfg.duration())
	workers := make([]connrateWorker, cfg.concurrency())
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.addr, w.size, w.timeout = addr, cfg.size(), cfg.timeout()
		wg.Go(func() { w.run(ctx, end) })
	}
	wg.Wait()

	r := connrateResult{Elapsed: time.Since(start)}
	var lat []time.Duration
	for _, w := range workers {
		r.Conns += len(w.latencies)
		r.Errors += w.errors
		if r.FirstErr == nil {
			r.FirstErr = w.firstErr
		}
		lat = append(lat, w.latencies...)
	}
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("connrate: interrupted: %w", context.Cause(ctx))
	}
	if r.Conns == 0 {
		return r, fmt.Errorf("connrate %s: no exchange completed (%d errors, first: %v)", addr, r.Errors, r.FirstErr)
	}
	slices.Sort(lat)
	r.P50, r.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return r, nil
}

// connrateWorker is one connrate loop; it owns its fields until run returns.
type connrateWorker struct {
	addr      string
	size      int
	timeout   time.Duration
	latencies []time.Duration
	errors    int
	firstErr  error
}

func (w *connrateWorker) run(ctx context.Context, end time.Time) {
	d := net.Dialer{Timeout: w.timeout}
	msg := bytes.Repeat([]byte{'c'}, w.size)
	buf := make([]byte, w.size)
	for ctx.Err() == nil && time.Now().Before(end) {
		lat, err := w.exchange(ctx, &d, msg, buf)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.errors++
			if w.firstErr == nil {
				w.firstErr = err
			}
			continue
		}
		w.latencies = append(w.latencies, lat)
	}
}

// exchange is one connection's life; its latency leaves out the close.
func (w *connrateWorker) exchange(ctx context.Context, d *net.Dialer, msg, buf []byte) (time.Duration, error) {
	t0 := time.Now()
	c, err := d.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(t0.Add(w.timeout))
	err = echoOnce(c, msg, buf)
	return time.Since(t0), err
}

// echoOnce writes msg on c and reads it back into buf, which has msg's length.
func echoOnce(c net.Conn, msg, buf []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf, msg) {
		return fmt.Errorf("echo from %s: got %q, want %q", c.RemoteAddr(), buf, msg)
	}
	return nil
}

// orDefault is v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
