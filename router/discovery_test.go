package router

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/server"
)

// gate is an interpreter whose answers the test gives: Resolve only records
// the sink, and answer delivers to it from the test's goroutine, as a
// resolver's goroutine would.
type gate struct {
	mu      sync.Mutex
	sinks   map[string]interpreter.Sink
	watched chan string
}

func newGate() *gate {
	return &gate{sinks: map[string]interpreter.Sink{}, watched: make(chan string, 100)}
}

func (g *gate) Resolve(name string, sink interpreter.Sink) func() {
	g.mu.Lock()
	g.sinks[name] = sink
	g.mu.Unlock()
	g.watched <- name
	return func() {}
}

func (g *gate) Close() error { return nil }

func (g *gate) answer(t *testing.T, name string, r interpreter.Resolution) {
	t.Helper()
	g.mu.Lock()
	sink := g.sinks[name]
	g.mu.Unlock()
	if sink == nil {
		t.Fatalf("%s is not watched", name)
	}
	sink.Update(r)
}

func (g *gate) CheckName(string) error                               { return nil }
func (g *gate) New(interpreter.Env) (interpreter.Interpreter, error) { return g, nil }

// gateConfig is testConfig with the gate as its interpreter.
func gateConfig(g *gate, mod func(*Config)) *Config {
	cfg := testConfig()
	cfg.Routers[0].Interpreter = InterpreterConfig{Kind: "gate", Settings: g}
	if mod != nil {
		mod(cfg)
	}
	return cfg
}

func bound(addrs ...string) interpreter.Resolution {
	var eps []interpreter.Endpoint
	for _, a := range addrs {
		eps = append(eps, interpreter.Endpoint{Addr: netip.MustParseAddrPort(a), Weight: 1})
	}
	return interpreter.BoundTo(eps)
}

// waitWaiters waits until n connections wait for the test name's answer.
func waitWaiters(t *testing.T, p *testProxy, n int) *balancer.Balancer {
	t.Helper()
	var bal *balancer.Balancer
	waitFor(t, "waiters", 10*time.Second, func() bool {
		for _, b := range p.Routers()[0].Binder().Balancers() {
			if b.Waiters() == n {
				bal = b
				return true
			}
		}
		return false
	})
	return bal
}

// echoLine writes a line and reads one back.
func echoLine(c net.Conn, line string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestConnectionsWaitForTheFirstAnswer(t *testing.T) {
	b := startBackend(t, echo)
	g := newGate()
	p := startProxy(t, gateConfig(g, nil))
	const n = 50
	before := goroutines()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, p.addr)
		// The client speaks first; its bytes wait in the socket.
		if _, err := conns[i].Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
	}
	if name := <-g.watched; name != testDst {
		t.Fatalf("watched %q", name)
	}
	bal := waitWaiters(t, p, n)
	if extra := goroutines() - before; extra > 5 {
		t.Errorf("%d waiting connections cost %d goroutines", n, extra)
	}
	g.answer(t, testDst, bound(b.addr))
	for i, c := range conns {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != "hello\n" {
			t.Fatalf("connection %d after the answer: %q, %v", i, got, err)
		}
	}
	if bal.Waiters() != 0 {
		t.Errorf("%d waiters left", bal.Waiters())
	}
	select {
	case name := <-g.watched:
		t.Errorf("%s watched twice", name)
	default:
	}
}

func TestWaitersFailAtTheirConnectDeadline(t *testing.T) {
	g := newGate()
	p := startProxy(t, gateConfig(g, func(c *Config) {
		c.Routers[0].Servers[0].ConnectTimeout = 300 * time.Millisecond
	}))
	conns := []net.Conn{dial(t, p.addr), dial(t, p.addr), dial(t, p.addr)}
	waitWaiters(t, p, len(conns))
	start := time.Now()
	for _, c := range conns {
		expectClosed(t, c, 10*time.Second)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waiters closed after %v", d)
	}
	st := waitEnded(t, p.srv, server.ReasonConnectTimeout, uint64(len(conns)))
	if st.Ended[server.ReasonNoEndpoints] != 0 {
		t.Errorf("ended: %v", st.Ended)
	}
	if bal := p.Routers()[0].Binder().Balancers()[0]; bal.Waiters() != 0 {
		t.Errorf("%d waiters left", bal.Waiters())
	}
}

func TestWaitersFullFailsFast(t *testing.T) {
	b := startBackend(t, echo)
	g := newGate()
	p := startProxy(t, gateConfig(g, func(c *Config) {
		c.Routers[0].Client.MaxWaiters = 4
		c.Runtime.Workers = 1 // one loop, so the order of arrival is the order of parking
	}))
	var waiting []net.Conn
	for range 4 {
		waiting = append(waiting, dial(t, p.addr))
	}
	waitWaiters(t, p, 4)
	for range 3 {
		expectClosed(t, dial(t, p.addr), 5*time.Second)
	}
	waitEnded(t, p.srv, server.ReasonWaitersFull, 3)
	g.answer(t, testDst, bound(b.addr))
	for i, c := range waiting {
		if got, err := echoLine(c, "x"); err != nil || got != "x\n" {
			t.Fatalf("waiter %d: %q, %v", i, got, err)
		}
	}
}

func TestMaxWaitersZeroFailsFastWithNoEndpoints(t *testing.T) {
	g := newGate()
	p := startProxy(t, gateConfig(g, func(c *Config) { c.Routers[0].Client.MaxWaiters = 0 }))
	expectClosed(t, dial(t, p.addr), 5*time.Second)
	waitEnded(t, p.srv, server.ReasonNoEndpoints, 1)
}

func TestAnswersThatFailFast(t *testing.T) {
	tests := []struct {
		name   string
		answer interpreter.Resolution
	}{
		{"not found", interpreter.NotFoundAnswer()},
		{"empty set", interpreter.BoundTo(nil)},
		{"failed before any set", interpreter.FailedWith(errors.New("resolver down"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate()
			p := startProxy(t, gateConfig(g, nil))
			waiter := dial(t, p.addr)
			waitWaiters(t, p, 1)
			g.answer(t, testDst, tt.answer)
			expectClosed(t, waiter, 5*time.Second)
			// Later connections fail at once, without a new lookup.
			expectClosed(t, dial(t, p.addr), 5*time.Second)
			waitEnded(t, p.srv, server.ReasonNoEndpoints, 2)
			if len(g.watched) != 1 {
				t.Errorf("%d watches, want 1", len(g.watched))
			}
		})
	}
}

func TestUpdatesAreFollowedAndRetiredEndpointsDrain(t *testing.T) {
	// Each backend answers with its own name, so the test sees where a
	// connection went.
	named := func(name string) *backend {
		return startBackend(t, func(c *net.TCPConn) {
			r := bufio.NewReader(c)
			for {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				if _, err := c.Write([]byte(name + "\n")); err != nil {
					return
				}
			}
		})
	}
	a, b := named("a"), named("b")
	g := newGate()
	p := startProxy(t, gateConfig(g, nil))
	first := dial(t, p.addr)
	waitWaiters(t, p, 1)
	g.answer(t, testDst, bound(a.addr))
	if got, _ := echoLine(first, "?"); got != "a\n" {
		t.Fatalf("first connection reached %q", got)
	}

	g.answer(t, testDst, bound(b.addr))
	second := dial(t, p.addr)
	if got, _ := echoLine(second, "?"); got != "b\n" {
		t.Fatalf("a connection after the update reached %q, want b", got)
	}
	// The stream to the endpoint that left runs on.
	if got, err := echoLine(first, "?"); got != "a\n" {
		t.Fatalf("the stream to a retired endpoint: %q, %v", got, err)
	}
	snap := p.Routers()[0].Names()
	if len(snap) != 1 || snap[0].State != "bound" || snap[0].Connections != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
	states := map[string]string{}
	for _, e := range snap[0].Endpoints {
		states[e.Addr.String()] = e.State
	}
	if states[a.addr] != "retired" || states[b.addr] != "available" {
		t.Errorf("endpoint states %v, want a retired and b available", states)
	}

	// a comes back: it keeps its load (the stream still open).
	g.answer(t, testDst, bound(a.addr, b.addr))
	for _, e := range p.Routers()[0].Names()[0].Endpoints {
		if e.Addr.String() == a.addr && (e.State != "available" || e.Load != 1) {
			t.Errorf("a back in the set: %+v, want available with load 1", e)
		}
	}
	// A failure after a good set keeps the set.
	g.answer(t, testDst, interpreter.FailedWith(errors.New("resolver down")))
	if got, _ := echoLine(dial(t, p.addr), "?"); got != "a\n" && got != "b\n" {
		t.Fatalf("after a failed answer a new connection reached %q", got)
	}
}
