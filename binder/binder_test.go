package binder

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

// counting wraps an interpreter and counts Resolve calls per name.
type counting struct {
	interpreter.Interpreter
	mu    sync.Mutex
	calls map[string]int
}

func (c *counting) Resolve(ctx context.Context, name string, sink interpreter.Sink) error {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
	return c.Interpreter.Resolve(ctx, name, sink)
}

func newBinder() (*Binder, *counting) {
	static := interpreter.NewStatic(map[string][]interpreter.Endpoint{
		"/svc/a": {{Addr: netip.MustParseAddrPort("127.0.0.1:1"), Weight: 1}},
		"/svc/b": {},
	})
	c := &counting{Interpreter: static, calls: map[string]int{}}
	return New(context.Background(), c, endpoint.Accrual{ConsecutiveFailures: 5}), c
}

func TestBindCreatesOneBalancerPerName(t *testing.T) {
	b, c := newBinder()
	const n = 64
	got := make([]*balancer.Balancer, n)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bal, err := b.Bind("/svc/a")
			if err != nil {
				failures.Add(1)
			}
			got[i] = bal
		}()
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d binds failed", failures.Load())
	}
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("bind %d returned another balancer", i)
		}
	}
	if c.calls["/svc/a"] != 1 {
		t.Fatalf("Resolve called %d times for one name, want 1", c.calls["/svc/a"])
	}
	if !got[0].Resolved() || len(got[0].Endpoints()) != 1 {
		t.Fatalf("balancer not fed by the interpreter: resolved=%v endpoints=%d", got[0].Resolved(), len(got[0].Endpoints()))
	}
	other, err := b.Bind("/svc/b")
	if err != nil || other == got[0] {
		t.Fatalf("second name: %v, same balancer %v", err, other == got[0])
	}
	if len(b.Balancers()) != 2 {
		t.Fatalf("Balancers() = %d, want 2", len(b.Balancers()))
	}
}

func TestBindUnknownNameFailsAndIsNotCached(t *testing.T) {
	b, c := newBinder()
	for i := 0; i < 2; i++ {
		_, err := b.Bind("/svc/missing")
		if err == nil || !strings.Contains(err.Error(), "/svc/missing") {
			t.Fatalf("Bind of an unknown name: %v, want an error naming it", err)
		}
	}
	if c.calls["/svc/missing"] != 2 {
		t.Fatalf("failed resolution was cached: %d calls, want 2", c.calls["/svc/missing"])
	}
	if len(b.Balancers()) != 0 {
		t.Fatalf("a balancer was kept for an unknown name")
	}
}
