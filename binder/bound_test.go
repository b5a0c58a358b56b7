package binder

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

// silent never answers: every name stays pending, as with a slow resolver.
type silent struct{}

func (silent) Resolve(string, interpreter.Sink) func() { return func() {} }
func (silent) Close() error                            { return nil }

// fullBinder returns a binder with room for n names, holding n names, each
// with one connection bound when busy, else released (idle).
func fullBinder(t *testing.T, n int, busy bool) (*Binder, *clock) {
	t.Helper()
	c := &clock{}
	c.now.Store(1)
	b := New(silent{}, Options{BindIdle: time.Hour, MaxNames: n, Clock: c.Now, Balancer: balancer.Options{MaxWaiters: 10}})
	t.Cleanup(func() { b.Close() })
	for i := range n {
		nm, err := b.Bind("/svc/"+strconv.Itoa(i), c.Now())
		if err != nil {
			t.Fatal(err)
		}
		c.now.Add(1)
		if !busy {
			nm.Release(c.Now())
		}
	}
	return b, c
}

// When every cached name is busy, a connection to a new name is refused at
// once, without a look through the cache.
func TestRefusedBindDoesNotScan(t *testing.T) {
	b, c := fullBinder(t, 20_000, true)
	for i := range 100 {
		if _, err := b.Bind("/new/"+strconv.Itoa(i), c.Now()); !errors.Is(err, ErrFull) {
			t.Fatalf("Bind = %v, want ErrFull", err)
		}
	}
	if n := b.scans.Load(); n != 0 {
		t.Errorf("%d refused binds scanned the cache %d times", 100, n)
	}
}

// A flood of new names at the bound: the sweeper trims the cache off the
// loops, and when it falls behind a Bind makes room for a sixty-fourth of
// the cache at once, so at most one Bind in that many scans the cache.
func TestNewNamesAtTheBoundScanOncePerBatch(t *testing.T) {
	const n, flood = 20_000, 5000
	b, c := fullBinder(t, n, false)
	for i := range flood {
		nm, err := b.Bind("/new/"+strconv.Itoa(i), c.Now())
		if err != nil {
			t.Fatalf("new name %d: %v", i, err)
		}
		c.now.Add(1)
		nm.Release(c.Now())
	}
	if got, limit := b.scans.Load(), uint64(flood/(n/64)+1); got > limit {
		t.Errorf("%d new names at the bound scanned the cache %d times, want at most %d", flood, got, limit)
	}
	if b.Len() > n {
		t.Errorf("%d names cached, bound %d", b.Len(), n)
	}
}
