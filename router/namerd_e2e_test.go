package router

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter/namerd"
	"github.com/switchyard-proxy/switchyard/server"
)

// namerdFixture is a namerd on loopback that serves one answer, the
// test's, to every watch of testDst: the stream opens at once, each answer
// the test sets is written as one JSON object and "\n" and flushed, and an
// answer equal to the last one sent is not repeated, as namerd does. Until
// the first set the answer is withheld.
type namerdFixture struct {
	t       testing.TB
	addr    string
	watches atomic.Int64 // watch requests of testDst received, over every restart

	mu      sync.Mutex
	srv     *http.Server
	answer  string        // "" while withheld
	changed chan struct{} // closed and replaced by each set
}

func startNamerdFixture(t testing.TB) *namerdFixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &namerdFixture{t: t, addr: ln.Addr().String(), changed: make(chan struct{})}
	f.serve(ln)
	t.Cleanup(f.stop)
	return f
}

// settings are namerd settings for the fixture, with a short backoff so
// that a reconnect follows an outage closely.
func (f *namerdFixture) settings() *namerd.Settings {
	return &namerd.Settings{
		BaseURL:    "http://" + f.addr,
		Namespace:  "default",
		Watch:      true,
		Period:     time.Hour,
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: 100 * time.Millisecond,
		Timeout:    e2eWait,
	}
}

func (f *namerdFixture) config() *Config { return discoveryConfig("namerd", f.settings()) }

func (f *namerdFixture) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(f.watch)}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the listener and every stream, as a namerd that dies.
func (f *namerdFixture) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		f.srv.Close()
		f.srv = nil
	}
}

// restart serves again on the same address.
func (f *namerdFixture) restart() {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("namerd fixture: listening again on %s: %v", f.addr, err)
	}
	f.serve(ln)
}

// set makes answer, one JSON object, the name's answer from now on.
func (f *namerdFixture) set(answer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = answer
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *namerdFixture) watch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.URL.Path != "/api/1/resolve/default" || q.Get("path") != testDst || q.Get("watch") != "true" {
		http.Error(w, "namerd fixture: unexpected request "+r.URL.String(), http.StatusBadRequest)
		return
	}
	f.watches.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	sent := ""
	for {
		f.mu.Lock()
		answer, changed := f.answer, f.changed
		f.mu.Unlock()
		if answer != "" && answer != sent {
			if _, err := io.WriteString(w, answer+"\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			sent = answer
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

// namerdBound is namerd's answer binding the name to addrs.
func namerdBound(addrs ...string) string {
	var entries []string
	for _, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		entries = append(entries, fmt.Sprintf(`{"ip":%q,"port":%d,"meta":{"nodeName":"n1"}}`, ap.Addr(), ap.Port()))
	}
	return `{"type":"bound","addrs":[` + strings.Join(entries, ",") + `],"meta":{}}`
}

const namerdNeg = `{"type":"neg"}`

func TestNamerdLateAnswerReleasesWaitingConnections(t *testing.T) {
	a := startNamedBackend(t, "a")
	f := startNamerdFixture(t)
	p := startProxy(t, f.config())
	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, p.addr)
		// The client speaks first; its line waits in the socket.
		if _, err := conns[i].Write([]byte("?\n")); err != nil {
			t.Fatal(err)
		}
	}
	waitWaiters(t, p, n)
	waitFor(t, "the watch request", e2eWait, func() bool { return f.watches.Load() > 0 })
	f.set(namerdBound(a.addr))
	for i, c := range conns {
		_ = c.SetDeadline(time.Now().Add(e2eWait))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "a\n" {
			t.Fatalf("connection %d after the answer: %q, %v", i, buf, err)
		}
	}
	if st := p.srv.Stats(); st.Ended[server.ReasonNoEndpoints]+st.Ended[server.ReasonConnectTimeout] != 0 {
		t.Errorf("ended: %v", st.Ended)
	}
	if got := f.watches.Load(); got != 1 {
		t.Errorf("%d watches of the name, want 1", got)
	}
}

func TestNamerdWithheldAnswer(t *testing.T) {
	t.Run("connections fail at their connect deadline", func(t *testing.T) {
		f := startNamerdFixture(t)
		cfg := f.config()
		const timeout = 300 * time.Millisecond
		cfg.Routers[0].Servers[0].ConnectTimeout = timeout
		p := startProxy(t, cfg)
		start := time.Now()
		conns := []net.Conn{dial(t, p.addr), dial(t, p.addr), dial(t, p.addr)}
		waitWaiters(t, p, len(conns))
		for _, c := range conns {
			expectClosed(t, c, e2eWait)
		}
		if d := time.Since(start); d < timeout || d > 5*time.Second {
			t.Errorf("waiting connections closed after %v, want about %v", d, timeout)
		}
		st := waitEnded(t, p.srv, server.ReasonConnectTimeout, uint64(len(conns)))
		if st.Ended[server.ReasonNoEndpoints] != 0 {
			t.Errorf("ended: %v", st.Ended)
		}
		if s := nameState(t, p); s.Waiters != 0 || s.Connections != 0 || s.State != "pending" {
			t.Errorf("after the deadlines the name is %s with %d waiters and %d connections, want pending with none",
				s.State, s.Waiters, s.Connections)
		}
	})
	t.Run("past max_waiters connections fail at once", func(t *testing.T) {
		a := startNamedBackend(t, "a")
		f := startNamerdFixture(t)
		cfg := f.config()
		cfg.Routers[0].Client.MaxWaiters = 4
		p := startProxy(t, cfg)
		var waiting []net.Conn
		for range 4 {
			waiting = append(waiting, dial(t, p.addr))
		}
		waitWaiters(t, p, 4)
		start := time.Now()
		for range 3 {
			expectClosed(t, dial(t, p.addr), e2eWait)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("connections past max_waiters closed after %v", d)
		}
		waitEnded(t, p.srv, server.ReasonWaitersFull, 3)
		f.set(namerdBound(a.addr))
		for i, c := range waiting {
			if got, err := echoLine(c, "?"); err != nil || got != "a\n" {
				t.Fatalf("waiter %d: %q, %v", i, got, err)
			}
		}
	})
}

func TestNamerdTrafficFollowsUpdates(t *testing.T) {
	a, b := startNamedBackend(t, "a"), startNamedBackend(t, "b")
	f := startNamerdFixture(t)
	f.set(namerdBound(a.addr))
	p := startProxy(t, f.config())
	first := dial(t, p.addr)
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("first connection: %q, %v", got, err)
	}

	f.set(namerdBound(b.addr))
	waitRoute(t, p.addr, "b")
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("the stream to a after the update to b: %q, %v", got, err)
	}

	f.set(namerdNeg)
	waitNoEndpoints(t, p)
	if s := nameState(t, p); s.State != "not_found" {
		t.Errorf("after neg the name is %s", s.State)
	}
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("the stream to a after neg: %q, %v", got, err)
	}

	f.set(namerdBound(a.addr))
	waitRoute(t, p.addr, "a")
	// Of all the connections made, only the first is open: a, back in
	// the set, carries its load. (b may still be listed, retired, if a
	// connection to it was closing when it left the set.)
	waitFor(t, "the closed connections to be released", e2eWait, func() bool {
		s := nameState(t, p)
		ok := s.Connections == 1
		for _, e := range s.Endpoints {
			if e.Addr.String() == a.addr {
				ok = ok && e.State == "available" && e.Load == 1
			} else {
				ok = ok && e.State == "retired" && e.Load == 0
			}
		}
		return ok && len(s.Endpoints) > 0 && s.Endpoints[0].Addr.String() == a.addr
	})
	if got := f.watches.Load(); got != 1 {
		t.Errorf("%d watches of the name, want one stream throughout", got)
	}
}

func TestNamerdDownLastSetServes(t *testing.T) {
	a, b := startNamedBackend(t, "a"), startNamedBackend(t, "b")
	f := startNamerdFixture(t)
	f.set(namerdBound(a.addr))
	p := startProxy(t, f.config())
	expectRoute(t, p.addr, "a", 3)

	f.stop()
	// The stream's end, then a reconnect refused: namerd is down.
	waitFailures(t, p, 2)
	expectRoute(t, p.addr, "a", 5)
	if s := nameState(t, p); s.State != "bound" {
		t.Errorf("with namerd down the name is %s (%s)", s.State, s.LastError)
	}

	f.set(namerdBound(b.addr))
	f.restart()
	waitRoute(t, p.addr, "b")
	if got := f.watches.Load(); got != 2 {
		t.Errorf("%d watches of the name, want 2 (before and after the outage)", got)
	}
}
