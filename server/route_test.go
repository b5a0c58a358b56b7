package server

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

// holdingDispatcher keeps every accepted connection open and says which
// destination and tally it was accepted under.
type holdingDispatcher struct {
	s        *Server
	accepted chan accepted
}

type accepted struct {
	fd       int
	dst      string
	counters *Counters
}

func (d *holdingDispatcher) Dispatch(_ *netpoll.Loop, fd int, env *Envelope) {
	d.accepted <- accepted{fd: fd, dst: env.Dst, counters: env.Counters}
}

// A new route applies to the connections accepted after it, on the same
// listening socket: the destination changes, the new tally counts them,
// and raising max_connections lets a listener paused at the old limit
// accept again.
func TestSetRouteAppliesToConnectionsAcceptedAfter(t *testing.T) {
	loops := startLoops(t, 1)
	d := &holdingDispatcher{accepted: make(chan accepted, 16)}
	oldTally := NewTally(1)
	s := New(Config{Listen: netip.MustParseAddrPort("127.0.0.1:0")},
		&Route{Dst: "/old", MaxConnections: 1, ConnectTimeout: time.Second, Dispatcher: d, Tally: oldTally})
	d.s = s
	if err := s.Listen(loops); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shut)
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	first := <-d.accepted
	if first.dst != "/old" || first.counters != oldTally.Loop(loops[0]) {
		t.Fatalf("first connection: dst %q, counters %p; want /old, the old tally's", first.dst, first.counters)
	}
	dial() // queued in the backlog: the listener is paused at max_connections 1
	select {
	case a := <-d.accepted:
		t.Fatalf("accepted %q past max_connections", a.dst)
	case <-time.After(50 * time.Millisecond):
	}

	newTally := NewTally(1)
	s.SetRoute(&Route{Dst: "/new", MaxConnections: 2, ConnectTimeout: time.Second, Dispatcher: d, Tally: newTally})
	second := <-d.accepted
	if second.dst != "/new" || second.counters != newTally.Loop(loops[0]) {
		t.Fatalf("after SetRoute: dst %q, counters %p; want /new, the new tally's", second.dst, second.counters)
	}
	if got := newTally.Stats().Accepted; got != 1 {
		t.Errorf("new tally accepted %d, want 1", got)
	}
	if got := oldTally.Stats().Accepted; got != 1 {
		t.Errorf("old tally accepted %d, want 1", got)
	}
	// The old route's connection ends into its own tally; the server's
	// count of open connections spans both routes.
	if got := s.Open(); got != 2 {
		t.Errorf("open %d, want 2", got)
	}
	post(t, loops[0], func() { s.Done(first.counters, ReasonEOF) })
	if st := oldTally.Stats(); st.Ended[ReasonEOF] != 1 || st.Active != 0 {
		t.Errorf("old tally: ended %d, active %d; want 1, 0", st.Ended[ReasonEOF], st.Active)
	}
	if got := s.Open(); got != 1 {
		t.Errorf("open %d, want 1", got)
	}
	post(t, loops[0], func() { s.Done(second.counters, ReasonEOF) })
}

// post runs f on l and waits for it.
func post(t *testing.T, l *netpoll.Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	if err := l.Post(func() { f(); close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
}
