package router

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/server"
)

// interpreter = 5 is one mistake, reported twice: once as not a table,
// then again as a missing kind.
func TestInterpreterNotATableReportedOnce(t *testing.T) {
	_, err := Parse([]byte(`
[[routers]]
label = "a"
interpreter = 5
  [[routers.servers]]
  listen = "127.0.0.1:0"
  dst = "/svc/web"
`))
	if err == nil {
		t.Fatal("accepted")
	}
	if n := strings.Count(err.Error(), "routers[0].interpreter"); n != 1 {
		t.Errorf("%d reports for one mistake:\n%v", n, err)
	}
}

// Streams parked on a pending name when the proxy stops end as shutdown,
// give back their waiter slots and their binding; an answer racing with
// Stop changes nothing.
func TestStopWithParkedStreams(t *testing.T) {
	b := startBackend(t, echo)
	g := newGate()
	p := startProxy(t, gateConfig(g, nil))
	const n = 20
	for range n {
		dial(t, p.addr)
	}
	bal := waitWaiters(t, p, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.answer(t, testDst, bound(b.addr))
	}()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	<-done
	st := p.srv.Stats()
	if got := st.Ended[server.ReasonShutdown] + st.Ended[server.ReasonEOF] + st.Ended[server.ReasonReset]; got != n {
		t.Errorf("ended %v, want %d in all", st.Ended, n)
	}
	if bal.Waiters() != 0 {
		t.Errorf("%d waiters left", bal.Waiters())
	}
	for _, s := range p.Routers()[0].Names() {
		if s.Connections != 0 {
			t.Errorf("%s: %d connections still bound", s.Name, s.Connections)
		}
	}
}

// A waiter that resets is taken out of the middle of its loop's list; the
// others still proceed when the answer comes.
func TestResetWaiterLeavesTheOthers(t *testing.T) {
	b := startBackend(t, echo)
	g := newGate()
	p := startProxy(t, gateConfig(g, func(c *Config) { c.Runtime.Workers = 1 }))
	var conns []*net.TCPConn
	for range 5 {
		conns = append(conns, dial(t, p.addr))
	}
	bal := waitWaiters(t, p, 5)
	_ = conns[1].SetLinger(0)
	conns[1].Close()
	_ = conns[3].SetLinger(0)
	conns[3].Close()
	waitFor(t, "two waiters gone", 5*time.Second, func() bool { return bal.Waiters() == 3 })
	g.answer(t, testDst, bound(b.addr))
	for _, i := range []int{0, 2, 4} {
		if got, err := echoLine(conns[i], "x"); err != nil || got != "x\n" {
			t.Fatalf("waiter %d: %q, %v", i, got, err)
		}
	}
	if bal.Waiters() != 0 {
		t.Errorf("%d waiters left", bal.Waiters())
	}
}

// eventfds counts the process's eventfd descriptors: each loop has one.
func eventfds(t *testing.T) int { return openFDs(t, "anon_inode:[eventfd]") }

// closeProbe is an interpreter that, when closed, records how many loop
// eventfds are still open: its watches may still be delivering answers
// (and so posting to the loops) until Close returns.
type closeProbe struct {
	*gate
	atClose func()
}

func (c *closeProbe) Close() error                                         { c.atClose(); return nil }
func (c *closeProbe) New(interpreter.Env) (interpreter.Interpreter, error) { return c, nil }

// Interpreter goroutines deliver answers, and so Post to the loops, until
// the interpreter is closed: Proxy.Stop must close it before Loop.Free
// closes the loops' epoll and eventfd descriptors ("nothing will Post to
// or Stop the loop again").
func TestStopStopsInterpretersBeforeFreeingLoops(t *testing.T) {
	base := eventfds(t)
	probe := &closeProbe{gate: newGate()}
	open := -1
	probe.atClose = func() { open = eventfds(t) - base }
	cfg := gateConfig(probe.gate, nil)
	cfg.Routers[0].Interpreter.Settings = probe
	p, err := Start(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := eventfds(t) - base; got != cfg.Runtime.Workers {
		t.Fatalf("%d eventfds for %d loops", got, cfg.Runtime.Workers)
	}
	_ = p.Stop()
	if open != cfg.Runtime.Workers {
		t.Errorf("interpreter closed with %d of %d loop eventfds still open: the loops were freed while its watches could still post", open, cfg.Runtime.Workers)
	}
}

// Ping answers while the loops run, and fails when one is wedged.
func TestPing(t *testing.T) {
	p := startProxy(t, testConfig("127.0.0.1:1"))
	if err := p.Ping(5 * time.Second); err != nil {
		t.Fatalf("Ping with every loop running: %v", err)
	}
	release := make(chan struct{})
	if err := p.workers[0].loop.Post(func() { <-release }); err != nil {
		t.Fatal(err)
	}
	err := p.Ping(100 * time.Millisecond)
	close(release)
	if err == nil {
		t.Fatal("Ping succeeded with a loop wedged")
	}
	if err := p.Ping(5 * time.Second); err != nil {
		t.Fatalf("Ping after the loop came back: %v", err)
	}
}
