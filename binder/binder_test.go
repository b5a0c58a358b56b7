package binder

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

// watcher is an interpreter that answers from a static table and records
// each watch, so tests can see which watches run.
type watcher struct {
	static *interpreter.Static
	mu     sync.Mutex
	calls  map[string]int
	ctxs   map[string][]context.Context // done once the watch is stopped
	closed atomic.Bool
}

func (w *watcher) Resolve(name string, sink interpreter.Sink) func() {
	ctx, cancel := context.WithCancel(context.Background())
	w.mu.Lock()
	w.calls[name]++
	w.ctxs[name] = append(w.ctxs[name], ctx)
	w.mu.Unlock()
	w.static.Resolve(name, sink)
	return cancel
}

func (w *watcher) Close() error { w.closed.Store(true); return nil }

func (w *watcher) count(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[name]
}

func (w *watcher) watch(name string, i int) context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ctxs[name][i]
}

// clock is a manual clock for Bind, Release and the sweeper.
type clock struct{ now atomic.Int64 }

func (c *clock) Now() int64 { return c.now.Load() }

func newBinder(t *testing.T, bindIdle time.Duration, maxNames int) (*Binder, *watcher, *clock) {
	t.Helper()
	w := &watcher{
		static: interpreter.NewStatic(map[string][]interpreter.Endpoint{
			"/svc/a": {{Addr: netip.MustParseAddrPort("127.0.0.1:1"), Weight: 1}},
			"/svc/b": {},
		}),
		calls: map[string]int{},
		ctxs:  map[string][]context.Context{},
	}
	c := &clock{}
	c.now.Store(1)
	b := New(w, Options{BindIdle: bindIdle, MaxNames: maxNames, Clock: c.Now, Balancer: balancer.Options{MaxWaiters: 10}})
	t.Cleanup(func() { b.Close() })
	return b, w, c
}

func TestBindCreatesOneBalancerPerName(t *testing.T) {
	b, w, c := newBinder(t, time.Hour, 100)
	const n = 64
	got := make([]*Name, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nm, err := b.Bind("/svc/a", c.Now())
			if err != nil {
				t.Error(err)
			}
			got[i] = nm
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("bind %d returned another name entry", i)
		}
	}
	if w.count("/svc/a") != 1 {
		t.Fatalf("Resolve called %d times for one name, want 1", w.count("/svc/a"))
	}
	bal := got[0].Balancer()
	if bal.State() != balancer.Bound || len(bal.Endpoints()) != 1 {
		t.Fatalf("balancer not fed by the interpreter: %v with %d endpoints", bal.State(), len(bal.Endpoints()))
	}
	if r := got[0].refs.Load(); r != n {
		t.Fatalf("refs = %d after %d binds", r, n)
	}
	other, err := b.Bind("/svc/b", c.Now())
	if err != nil || other == got[0] {
		t.Fatalf("second name: %v, same entry %v", err, other == got[0])
	}
	if b.Len() != 2 || len(b.Balancers()) != 2 {
		t.Fatalf("Len() = %d, Balancers() = %d, want 2", b.Len(), len(b.Balancers()))
	}
}

func TestUnknownNameIsCachedAsNotFound(t *testing.T) {
	b, w, c := newBinder(t, time.Hour, 100)
	for i := 0; i < 3; i++ {
		n, err := b.Bind("/svc/missing", c.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st := n.Balancer().State(); st != balancer.NotFound {
			t.Fatalf("state %v, want not_found", st)
		}
		n.Release(c.Now())
	}
	if w.count("/svc/missing") != 1 {
		t.Fatalf("a name that does not exist was looked up %d times, want once", w.count("/svc/missing"))
	}
}

func TestSweepEvictsIdleNamesOnly(t *testing.T) {
	b, w, c := newBinder(t, time.Hour, 100) // the test sweeps by hand
	idle, _ := b.Bind("/svc/a", c.Now())
	busy, _ := b.Bind("/svc/b", c.Now())
	c.now.Add(int64(time.Second))
	idle.Release(c.Now())

	b.sweep(c.Now() + int64(time.Hour) - 1)
	if b.Len() != 2 {
		t.Fatalf("a name was evicted before bind_idle passed: %d left", b.Len())
	}
	b.sweep(c.Now() + int64(time.Hour))
	if b.Len() != 1 {
		t.Fatalf("after bind_idle: %d names, want 1 (the busy one)", b.Len())
	}
	if w.watch("/svc/a", 0).Err() == nil {
		t.Error("the evicted name's watch is still running")
	}
	if w.watch("/svc/b", 0).Err() != nil {
		t.Error("the busy name's watch was stopped")
	}
	if idle.acquire() {
		t.Error("an evicted entry took a new connection")
	}
	again, err := b.Bind("/svc/a", c.Now())
	if err != nil || again == idle || w.count("/svc/a") != 2 {
		t.Fatalf("bind after eviction: %v, same entry %v, %d watches", err, again == idle, w.count("/svc/a"))
	}
	busy.Release(c.Now())
}

func TestSweeperRuns(t *testing.T) {
	b, w, c := newBinder(t, 40*time.Millisecond, 100)
	n, _ := b.Bind("/svc/a", c.Now())
	n.Release(c.Now())
	c.now.Add(int64(time.Second))
	select {
	case <-w.watch("/svc/a", 0).Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the sweeper did not evict an idle name")
	}
	if b.Len() != 0 {
		t.Fatalf("%d names left", b.Len())
	}
}

func TestMaxNamesEvictsLeastRecentlyUsed(t *testing.T) {
	b, w, c := newBinder(t, time.Hour, 3)
	for _, name := range []string{"/svc/x", "/svc/y", "/svc/z"} {
		n, err := b.Bind(name, c.Now())
		if err != nil {
			t.Fatal(err)
		}
		c.now.Add(1)
		n.Release(c.Now())
	}
	// y is used again, so x is now the least recently used.
	y, _ := b.Bind("/svc/y", c.Now())
	c.now.Add(1)
	y.Release(c.Now())

	if _, err := b.Bind("/svc/a", c.Now()); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 3 {
		t.Fatalf("%d names cached, want at most 3", b.Len())
	}
	// The sweeper keeps a slot free, so z, idle and older than y, may go
	// too; y, the most recently used, stays, and a is busy.
	select {
	case <-w.watch("/svc/x", 0).Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the least recently used name was not evicted")
	}
	if w.watch("/svc/y", 0).Err() != nil || w.watch("/svc/a", 0).Err() != nil {
		t.Error("the most recently used name, or a busy one, was evicted")
	}
}

func TestMaxNamesFullOfBusyNames(t *testing.T) {
	b, _, c := newBinder(t, time.Hour, 2)
	for _, name := range []string{"/svc/x", "/svc/y"} {
		if _, err := b.Bind(name, c.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Bind("/svc/z", c.Now()); err != ErrFull {
		t.Fatalf("Bind with every cached name busy = %v, want ErrFull", err)
	}
	if _, err := b.Bind("/svc/x", c.Now()); err != nil {
		t.Fatalf("a cached name failed to bind when the cache is full: %v", err)
	}
}

func TestCloseStopsWatchesAndInterpreter(t *testing.T) {
	b, w, c := newBinder(t, time.Hour, 100)
	n, _ := b.Bind("/svc/a", c.Now())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if w.watch("/svc/a", 0).Err() == nil || !w.closed.Load() {
		t.Fatal("Close left a watch or the interpreter running")
	}
	if n.Balancer().State() != balancer.Bound {
		t.Fatal("a bound connection's balancer lost its answer")
	}
}
