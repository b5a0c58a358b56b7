package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// idleConfig says how openIdle opens connections. Zero fields take the
// defaults beside them.
type idleConfig struct {
	N           int           // connections; zero: 10000
	Concurrency int           // connections being opened at once; zero: 64
	Timeout     time.Duration // per connection, connect to echo; zero: 5s
}

func (c idleConfig) n() int                 { return orDefault(c.N, 10000) }
func (c idleConfig) concurrency() int       { return orDefault(c.Concurrency, 64) }
func (c idleConfig) timeout() time.Duration { return orDefault(c.Timeout, 5*time.Second) }

// idleSet is a set of open, idle connections, each of which has echoed
// one byte, so that every proxy in the path has both of its sides up.
type idleSet struct {
	conns    []net.Conn
	errors   int   // connections that failed to open
	firstErr error // the first of those failures
}

// openIdle opens cfg.N connections to the echo server at addr. Failed
// connections are counted, not fatal: the set holds those that worked.
// It fails, having closed everything, only if ctx ends.
func openIdle(ctx context.Context, addr string, cfg idleConfig) (*idleSet, error) {
	o := &idleOpener{addr: addr, timeout: cfg.timeout(), slots: make([]net.Conn, cfg.n())}
	var wg sync.WaitGroup
	for range min(cfg.concurrency(), len(o.slots)) {
		wg.Go(func() { o.run(ctx) })
	}
	wg.Wait()
	s := &idleSet{errors: o.errors, firstErr: o.firstErr}
	for _, c := range o.slots {
		if c != nil {
			s.conns = append(s.conns, c)
		}
	}
	if err := ctx.Err(); err != nil {
		s.Close()
		return nil, fmt.Errorf("idle: interrupted: %w", context.Cause(ctx))
	}
	return s, nil
}

// idleOpener hands out slots to the goroutines running it; each fills
// the slots it takes.
type idleOpener struct {
	addr    string
	timeout time.Duration
	slots   []net.Conn
	next    atomic.Int64

	mu       sync.Mutex
	errors   int
	firstErr error
}

func (o *idleOpener) run(ctx context.Context) {
	d := net.Dialer{Timeout: o.timeout}
	for ctx.Err() == nil {
		i := int(o.next.Add(1)) - 1
		if i >= len(o.slots) {
			return
		}
		c, err := openOneIdle(ctx, &d, o.addr, o.timeout)
		if err != nil {
			o.mu.Lock()
			o.errors++
			if o.firstErr == nil {
				o.firstErr = err
			}
			o.mu.Unlock()
			continue
		}
		o.slots[i] = c
	}
}

func openOneIdle(ctx context.Context, d *net.Dialer, addr string, timeout time.Duration) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if err := echoOnce(c, []byte{'i'}, make([]byte, 1)); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func (s *idleSet) established() int { return len(s.conns) }

// Close closes every connection of the set.
func (s *idleSet) Close() error {
	var errs []error
	for _, c := range s.conns {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.conns = nil
	return errors.Join(errs...)
}
