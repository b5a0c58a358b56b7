package router

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/server"
)

const (
	setAsideLine = `msg="endpoint set aside after consecutive connect failures"`
	backLine     = `msg="endpoint back in rotation: its penalty is over"`
)

// Nothing is logged after Stop returns: no timer outlives the proxy to say
// an endpoint is back.
func TestNothingLoggedAfterStop(t *testing.T) {
	p, logs, _ := startLoggedRefused(t, 300*time.Millisecond)
	srv := p.Routers()[0].Servers()[0]
	expectClosed(t, dial(t, srv.Addr().String()), 5*time.Second)
	waitFor(t, "set-aside line", 5*time.Second, func() bool { return strings.Contains(logs.String(), setAsideLine) })
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	atStop := len(logs.String())
	time.Sleep(600 * time.Millisecond)
	if after := logs.String()[atStop:]; after != "" {
		t.Errorf("logged after Stop returned:\n%s", after)
	}
}

// With one endpoint (or every endpoint set aside) each further failure
// sets it aside again: a dead backend under load must log it once, not a
// line per consecutive_failures failed attempts.
func TestSetAsideLoggedOnce(t *testing.T) {
	p, logs, _ := startLoggedRefused(t, time.Minute)
	t.Cleanup(func() { _ = p.Stop() })
	srv := p.Routers()[0].Servers()[0]
	const conns = 30
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, 5*time.Second)
		c.Close()
	}
	waitEnded(t, srv, server.ReasonConnectFailed, conns)
	time.Sleep(100 * time.Millisecond)
	if n := strings.Count(logs.String(), setAsideLine); n > 2 {
		t.Errorf("%d connections to one dead endpoint in well under a second logged %d set-aside lines (and armed as many 1-minute timers)", conns, n)
	}
}

// Pipes are made lazily and a connection runs without one (it copies), so
// the pools' whole capacity is not kept from connections: 2 loops with the
// stock max_pipes = 256 under a limit of 1024 must leave room for many
// connections, not one.
func TestFitOpenFilesLeavesRoomUnderASmallLimit(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	cfg.Runtime.Workers = 2
	cfg.Runtime.MaxPipes = 256
	cfg.Routers[0].Servers[0].MaxConnections = 0
	cfg.FitOpenFiles(1024)
	if got := cfg.Routers[0].Servers[0].MaxConnections; got < 100 {
		t.Errorf("FitOpenFiles(1024) with 2 loops, max_pipes 256: max_connections = %d", got)
	}
}

// Start does not rewrite the caller's configuration: max_connections = 0
// ("a share of the limit") stays 0 there, for another Start, a reload, or
// the effective configuration shown to an operator.
func TestStartLeavesTheCallersConfig(t *testing.T) {
	b := startBackend(t, echo)
	cfg := testConfig(b.addr)
	cfg.Routers[0].Servers[0].MaxConnections = 0
	startProxy(t, cfg)
	if got := cfg.Routers[0].Servers[0].MaxConnections; got != 0 {
		t.Errorf("after Start the caller's max_connections reads %d, want the 0 it passed", got)
	}
}

// A set-aside renewed within its penalty (the only endpoint keeps taking
// connections) delays "back in rotation" until the endpoint really is.
func TestBackInRotationOnlyWhenBack(t *testing.T) {
	p, logs, _ := startLoggedRefused(t, 600*time.Millisecond)
	t.Cleanup(func() { _ = p.Stop() })
	tp := &testProxy{Proxy: p, addr: p.Routers()[0].Servers()[0].Addr().String(), srv: p.Routers()[0].Servers()[0]}
	expectClosed(t, dial(t, tp.addr), 5*time.Second)
	time.Sleep(400 * time.Millisecond)
	expectClosed(t, dial(t, tp.addr), 5*time.Second) // set aside again: penalty to ~1s
	waitFor(t, "back-in-rotation line", 5*time.Second, func() bool { return strings.Contains(logs.String(), backLine) })
	if st := nameState(t, tp).Endpoints[0].State; st == "set_aside" {
		t.Errorf("logged %q while the endpoint's state is %s", backLine, st)
	}
}
