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
	Size        int           // bytes exchanged per connection, unless Message is set; zero: 32
	Timeout     time.Duration // per connection, connect to echo; zero: 5s

	// Message is what each connection writes and reads back, in place of
	// Size bytes; nil: Size bytes.
	Message []byte
	// Preamble goes before the message, in the same write, and does not
	// come back: a PROXY header, which the proxy consumes.
	Preamble []byte
	// Reset closes each connection with SO_LINGER 0: the client's side
	// sends RST and leaves no TIME_WAIT socket behind.
	Reset bool
}

func (c connrateConfig) concurrency() int        { return orDefault(c.Concurrency, 50) }
func (c connrateConfig) duration() time.Duration { return orDefault(c.Duration, 5*time.Second) }
func (c connrateConfig) size() int               { return orDefault(c.Size, 32) }
func (c connrateConfig) timeout() time.Duration  { return orDefault(c.Timeout, 5*time.Second) }

// message is what a connection writes after the preamble and reads back.
func (c connrateConfig) message() []byte {
	if c.Message != nil {
		return c.Message
	}
	return bytes.Repeat([]byte{'c'}, c.size())
}

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
// each looping connect, write the preamble and the message, read the
// message back, close, until Duration has passed. A connection in flight
// at the end is finished and counted. It fails if ctx ends or no exchange
// completes.
func connrate(ctx context.Context, addr string, cfg connrateConfig) (connrateResult, error) {
	start := time.Now()
	end := start.Add(cfg.duration())
	workers := make([]connrateWorker, cfg.concurrency())
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.addr, w.timeout, w.reset = addr, cfg.timeout(), cfg.Reset
		w.msg = cfg.message()
		w.send = append(slices.Clip(cfg.Preamble), w.msg...)
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
	send      []byte // the preamble and the message
	msg       []byte // what comes back
	timeout   time.Duration
	reset     bool // close with SO_LINGER 0
	latencies []time.Duration
	errors    int
	firstErr  error
}

func (w *connrateWorker) run(ctx context.Context, end time.Time) {
	d := net.Dialer{Timeout: w.timeout}
	buf := make([]byte, len(w.msg))
	for ctx.Err() == nil && time.Now().Before(end) {
		lat, err := w.exchange(ctx, &d, buf)
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
func (w *connrateWorker) exchange(ctx context.Context, d *net.Dialer, buf []byte) (time.Duration, error) {
	t0 := time.Now()
	c, err := d.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		return 0, err
	}
	defer func() {
		if w.reset {
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}()
	c.SetDeadline(t0.Add(w.timeout))
	err = sendAndExpect(c, w.send, w.msg, buf)
	return time.Since(t0), err
}

// echoOnce writes msg on c and reads it back into buf, which has msg's length.
func echoOnce(c net.Conn, msg, buf []byte) error {
	return sendAndExpect(c, msg, msg, buf)
}

// sendAndExpect writes send on c and reads len(want) bytes into buf, which
// has that length; they must be want.
func sendAndExpect(c net.Conn, send, want, buf []byte) error {
	if _, err := c.Write(send); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if bytes.Equal(buf, want) {
		return nil
	}
	if len(want) <= 64 {
		return fmt.Errorf("echo from %s: got %q, want %q", c.RemoteAddr(), buf, want)
	}
	i := 0
	for buf[i] == want[i] {
		i++
	}
	return fmt.Errorf("echo from %s: the %d bytes read back differ from those sent from byte %d on", c.RemoteAddr(), len(want), i)
}

// orDefault is v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
