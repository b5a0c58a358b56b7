package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

func testEnv(t *testing.T) interpreter.Env {
	return interpreter.Env{Router: t.Name(), Log: slog.New(slog.DiscardHandler), Stats: new(interpreter.Stats)}
}

// testSettings are settings for tests: fast retries, and a ttl_min low
// enough not to hide the TTLs the tests set.
func testSettings() *Settings {
	return &Settings{
		Timeout:    2 * time.Second,
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: 100 * time.Millisecond,
		TTLMin:     100 * time.Millisecond,
		TTLMax:     5 * time.Minute,
	}
}

// start starts a resolver asking servers, closed when the test ends.
func start(t *testing.T, st *Settings, env interpreter.Env, servers ...string) *resolver {
	t.Helper()
	r := newResolver(st, servers, env)
	t.Cleanup(func() { r.Close() })
	return r
}

// testSink records the answers of one watch.
type testSink struct {
	t          *testing.T
	ch         chan interpreter.Resolution
	calls      atomic.Int64
	busy       atomic.Bool
	concurrent atomic.Bool
	entered    chan struct{} // when not nil, told on each call
	block      chan struct{} // when not nil, calls wait for it to close
}

func newSink(t *testing.T) *testSink {
	s := &testSink{t: t, ch: make(chan interpreter.Resolution, 1000)}
	t.Cleanup(func() {
		if s.concurrent.Load() {
			t.Error("sink called concurrently")
		}
	})
	return s
}

func (s *testSink) Update(r interpreter.Resolution) {
	if !s.busy.CompareAndSwap(false, true) {
		s.concurrent.Store(true)
	}
	defer s.busy.Store(false)
	s.calls.Add(1)
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.block != nil {
		<-s.block
	}
	r.Endpoints = slices.Clone(r.Endpoints)
	select {
	case s.ch <- r:
	default:
		panic("test sink full")
	}
}

// next waits for the next answer.
func (s *testSink) next() interpreter.Resolution {
	s.t.Helper()
	select {
	case r := <-s.ch:
		return r
	case <-time.After(waitFor):
		s.t.Fatalf("no answer within %s", waitFor)
		return interpreter.Resolution{}
	}
}

// expectBound waits for the next answer and checks it is Bound to want.
func (s *testSink) expectBound(want ...string) {
	s.t.Helper()
	r := s.next()
	if r.State != interpreter.Bound || !slices.Equal(r.Endpoints, endpoints(s.t, want...)) {
		s.t.Fatalf("answer %s, want bound to %q", describe(r), want)
	}
}

// expectFailed waits for the next answer and checks it is Failed with an
// error containing each of parts.
func (s *testSink) expectFailed(parts ...string) {
	s.t.Helper()
	r := s.next()
	if r.State != interpreter.Failed {
		s.t.Fatalf("answer %s, want failed", describe(r))
	}
	for _, p := range parts {
		if !strings.Contains(r.Err.Error(), p) {
			s.t.Fatalf("error %q, want it to contain %q", r.Err, p)
		}
	}
}

func (s *testSink) expectState(want interpreter.State) {
	s.t.Helper()
	if r := s.next(); r.State != want {
		s.t.Fatalf("answer %s, want %s", describe(r), want)
	}
}

func describe(r interpreter.Resolution) string {
	switch r.State {
	case interpreter.Bound:
		return fmt.Sprintf("bound to %v", r.Endpoints)
	case interpreter.Failed:
		return fmt.Sprintf("failed: %v", r.Err)
	}
	return r.State.String()
}

func endpoints(t *testing.T, ss ...string) []interpreter.Endpoint {
	t.Helper()
	eps := make([]interpreter.Endpoint, 0, len(ss))
	for _, s := range ss {
		e, err := interpreter.ParseEndpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, e)
	}
	return eps
}

func resolve(t *testing.T, r *resolver, name string) *testSink {
	t.Helper()
	sink := newSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kindtest.ResolveUntil(ctx, r, name, sink)
	return sink
}

func TestResolveHost(t *testing.T) {
	tests := []struct {
		name    string
		records []string
		want    []string
	}{
		{"A and AAAA merged and sorted", []string{
			"web.example. 60 IN A 192.0.2.2", "web.example. 60 IN A 192.0.2.1", "web.example. 60 IN AAAA 2001:db8::1",
		}, []string{"192.0.2.1:8080", "192.0.2.2:8080", "[2001:db8::1]:8080"}},
		{"A only", []string{"web.example. 60 IN A 192.0.2.1"}, []string{"192.0.2.1:8080"}},
		{"AAAA only", []string{"web.example. 60 IN AAAA 2001:db8::1"}, []string{"[2001:db8::1]:8080"}},
		{"no records", nil, nil},
		{"owner names in another case", []string{"WEB.EXAMPLE. 60 IN A 192.0.2.1"}, []string{"192.0.2.1:8080"}},
		{"unusable addresses left out", []string{
			"web.example. 60 IN A 0.0.0.0", "web.example. 60 IN A 239.1.1.1", "web.example. 60 IN AAAA ::", "web.example. 60 IN A 192.0.2.1",
		}, []string{"192.0.2.1:8080"}},
		{"an address in both families once", []string{
			"web.example. 60 IN A 192.0.2.1", "web.example. 60 IN AAAA ::ffff:192.0.2.1",
		}, []string{"192.0.2.1:8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t)
			srv.records("web.example.", tt.records...)
			r := start(t, testSettings(), testEnv(t), srv.addr)
			resolve(t, r, "/dns/Web.Example/8080").expectBound(tt.want...)
		})
	}
	t.Run("CNAME chain", func(t *testing.T) {
		t.Parallel()
		srv := newTestServer(t)
		srv.set("web.example.", mdns.TypeA, reply{answer: []mdns.RR{
			parseRR(t, "web.example. 60 IN CNAME edge.cdn.example."), parseRR(t, "edge.cdn.example. 60 IN A 192.0.2.7"),
		}})
		srv.set("web.example.", mdns.TypeAAAA, reply{answer: []mdns.RR{parseRR(t, "web.example. 60 IN CNAME edge.cdn.example.")}})
		r := start(t, testSettings(), testEnv(t), srv.addr)
		resolve(t, r, "/dns/web.example/80").expectBound("192.0.2.7:80")
	})
}

func TestFollowsChanges(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	srv.records("web.example.", "web.example. 1 IN A 192.0.2.1")
	env := testEnv(t)
	st := testSettings()
	st.TTLMin = time.Second
	r := start(t, st, env, srv.addr)
	sink := resolve(t, r, "/dns/web.example/80")
	sink.expectBound("192.0.2.1:80")
	// Asked again as the TTL runs out, the same answer is not delivered
	// again.
	srv.waitQueries("web.example.", mdns.TypeAAAA, 2)
	start := time.Now()
	srv.records("web.example.", "web.example. 1 IN A 192.0.2.2", "web.example. 1 IN AAAA 2001:db8::2")
	sink.expectBound("192.0.2.2:80", "[2001:db8::2]:80")
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("the change took %s to arrive, TTL 1s", d)
	}
	if n := env.Stats.Updates.Load(); n != 2 {
		t.Errorf("Updates %d, want 2", n)
	}
	if env.Stats.LastGood.Load() == 0 {
		t.Error("LastGood not set")
	}
	if n := len(sink.ch); n != 0 {
		t.Errorf("%d more answers", n)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	srv.set("web.example.", mdns.TypeA, reply{rcode: mdns.RcodeNameError, ns: []mdns.RR{soa(t, 1)}})
	srv.set("web.example.", mdns.TypeAAAA, reply{rcode: mdns.RcodeNameError, ns: []mdns.RR{soa(t, 1)}})
	env := testEnv(t)
	r := start(t, testSettings(), env, srv.addr)
	sink := resolve(t, r, "/dns/web.example/80")
	sink.expectState(interpreter.NotFound)
	if n := srv.count("web.example.", mdns.TypeAAAA); n != 0 {
		t.Errorf("AAAA asked %d times after NXDOMAIN for A", n)
	}
	srv.records("web.example.", "web.example. 60 IN A 192.0.2.1")
	sink.expectBound("192.0.2.1:80")
	if n := env.Stats.Updates.Load(); n != 2 {
		t.Errorf("Updates %d, want 2", n)
	}
}

func TestServerErrorKeepsLastAnswer(t *testing.T) {
	tests := []struct {
		name string
		fail func(srv *testServer)
		want []string
	}{
		{"SERVFAIL", func(srv *testServer) {
			srv.set("web.example.", mdns.TypeA, reply{rcode: mdns.RcodeServerFailure})
		}, []string{"server answered SERVFAIL"}},
		{"REFUSED", func(srv *testServer) {
			srv.set("web.example.", mdns.TypeAAAA, reply{rcode: mdns.RcodeRefused})
		}, []string{"AAAA web.example.", "server answered REFUSED"}},
		{"NOTIMP", func(srv *testServer) {
			srv.set("web.example.", mdns.TypeA, reply{rcode: mdns.RcodeNotImplemented})
		}, []string{"server answered NOTIMP"}},
		{"CNAME loop", func(srv *testServer) {
			srv.set("web.example.", mdns.TypeA, reply{answer: []mdns.RR{
				parseRR(srv.t, "web.example. 0 IN CNAME a.example."), parseRR(srv.t, "a.example. 0 IN CNAME web.example."),
			}})
		}, []string{"malformed answer: CNAME loop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t)
			srv.records("web.example.", "web.example. 0 IN A 192.0.2.1")
			env := testEnv(t)
			r := start(t, testSettings(), env, srv.addr)
			sink := resolve(t, r, "/dns/web.example/80")
			sink.expectBound("192.0.2.1:80")

			tt.fail(srv)
			want := append([]string{"dns: ", srv.addr + ": "}, tt.want...)
			sink.expectFailed(want...)
			sink.expectFailed(want...) // retried
			if env.Stats.Errors.Load() < 2 || env.Stats.Reconnects.Load() < 1 {
				t.Errorf("Errors %d, Reconnects %d", env.Stats.Errors.Load(), env.Stats.Reconnects.Load())
			}

			srv.records("web.example.", "web.example. 60 IN A 192.0.2.1")
			for {
				// Failed answers of retries that ran meanwhile, then
				// the set again.
				if a := sink.next(); a.State != interpreter.Failed {
					if a.State != interpreter.Bound || !slices.Equal(a.Endpoints, endpoints(t, "192.0.2.1:80")) {
						t.Fatalf("answer %s, want the set again", describe(a))
					}
					break
				}
			}
		})
	}
}

func TestLogsFailingOnceAndRecovery(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	srv.set("web.example.", mdns.TypeA, reply{rcode: mdns.RcodeServerFailure})
	logs := new(kindtest.LogRecorder)
	env := testEnv(t)
	env.Log = slog.New(logs)
	r := start(t, testSettings(), env, srv.addr)
	sink := resolve(t, r, "/dns/web.example/80")
	for range 3 {
		sink.expectFailed("SERVFAIL")
	}
	srv.records("web.example.", "web.example. 60 IN A 192.0.2.1")
	for sink.next().State == interpreter.Failed {
	}
	if w, i := logs.Count(slog.LevelWarn, ""), logs.Count(slog.LevelInfo, ""); w != 1 || i != 1 {
		t.Errorf("%d warnings and %d infos, want 1 each", w, i)
	}
}

func TestTimeoutRetried(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	srv.set("web.example.", mdns.TypeA, reply{silent: true})
	st := testSettings()
	st.Timeout = 100 * time.Millisecond
	env := testEnv(t)
	r := start(t, st, env, srv.addr)
	sink := resolve(t, r, "/dns/web.example/80")
	sink.expectFailed("dns: A web.example.: " + srv.addr + ": no answer within 100ms (udp)")
	sink.expectFailed("no answer within 100ms")
	if n := srv.count("web.example.", mdns.TypeA); n < 2 {
		t.Errorf("%d queries, want a retry", n)
	}
	srv.records("web.example.", "web.example. 60 IN A 192.0.2.1")
	for {
		if a := sink.next(); a.State != interpreter.Failed {
			if a.State != interpreter.Bound {
				t.Fatalf("answer %s", describe(a))
			}
			break
		}
	}
}

func TestServersTriedInOrder(t *testing.T) {
	t.Parallel()
	down, up := newTestServer(t), newTestServer(t)
	down.set("web.example.", mdns.TypeA, reply{silent: true})
	down.set("web.example.", mdns.TypeAAAA, reply{rcode: mdns.RcodeRefused})
	up.records("web.example.", "web.example. 60 IN A 192.0.2.1")
	st := testSettings()
	st.Timeout = 100 * time.Millisecond
	env := testEnv(t)

	r := start(t, st, env, down.addr, up.addr)
	resolve(t, r, "/dns/web.example/80").expectBound("192.0.2.1:80")
	if n := env.Stats.Errors.Load(); n != 2 {
		t.Errorf("Errors %d, want 2 (one per query to the server down)", n)
	}

	r = start(t, st, testEnv(t), down.addr, down.addr)
	resolve(t, r, "/dns/web.example/80").expectFailed(
		"A web.example.: " + down.addr + ": no answer within 100ms (udp); " + down.addr + ": no answer within 100ms (udp)")
}

func TestTruncatedAnswerAskedOverTCP(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	a := []mdns.RR{parseRR(t, "web.example. 60 IN A 192.0.2.1")}
	srv.set("web.example.", mdns.TypeA, reply{answer: a, truncateUDP: true})
	srv.set("web.example.", mdns.TypeAAAA, reply{answer: []mdns.RR{parseRR(t, "web.example. 60 IN AAAA 2001:db8::1")}})
	r := start(t, testSettings(), testEnv(t), srv.addr)
	resolve(t, r, "/dns/web.example/80").expectBound("192.0.2.1:80", "[2001:db8::1]:80")
	if udp, tcp := srv.count("web.example.", mdns.TypeA), srv.tcpCount("web.example.", mdns.TypeA); udp != 2 || tcp != 1 {
		t.Errorf("A asked %d times, %d over TCP; want once over each", udp, tcp)
	}
	if n := srv.tcpCount("web.example.", mdns.TypeAAAA); n != 0 {
		t.Errorf("AAAA asked %d times over TCP, want 0", n)
	}

	t.Run("TCP fails too", func(t *testing.T) {
		srv.set("web.example.", mdns.TypeA, reply{answer: a, truncateUDP: true, tcpRcode: mdns.RcodeServerFailure})
		resolve(t, r, "/dns/web.example/81").expectFailed(srv.addr, "server answered SERVFAIL")
	})
	t.Run("no TCP listener", func(t *testing.T) {
		udpOnly := newUDPServer(t, func(w mdns.ResponseWriter, req *mdns.Msg) {
			m := new(mdns.Msg).SetReply(req)
			m.Truncated = true
			w.WriteMsg(m)
		})
		r := start(t, testSettings(), testEnv(t), udpOnly)
		resolve(t, r, "/dns/web.example/80").expectFailed(udpOnly, "over TCP after a truncated UDP answer")
	})
}

// newUDPServer serves handler over UDP only, on 127.0.0.1.
func newUDPServer(t *testing.T, handler mdns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: handler}
	started, served := make(chan struct{}), make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { defer close(served); srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { srv.Shutdown(); <-served })
	return pc.LocalAddr().String()
}

func TestMalformedAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler mdns.HandlerFunc
		want    string
	}{
		{"garbage with the right ID", func(w mdns.ResponseWriter, req *mdns.Msg) {
			w.Write([]byte{byte(req.Id >> 8), byte(req.Id), 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xff})
		}, "malformed answer: bad question name: dns: buffer size too small; no valid answer within 200ms (udp)"},
		{"wrong ID", func(w mdns.ResponseWriter, req *mdns.Msg) {
			m := new(mdns.Msg).SetReply(req)
			m.Id++
			w.WriteMsg(m)
		}, "malformed answer: wrong ID; no valid answer within 200ms (udp)"},
		{"another question", func(w mdns.ResponseWriter, req *mdns.Msg) {
			m := new(mdns.Msg).SetReply(req)
			m.Question[0].Name = "other.example."
			w.WriteMsg(m)
		}, "malformed answer: for question A other.example., not A web.example.; no valid answer within 200ms (udp)"},
		{"a query, not a response", func(w mdns.ResponseWriter, req *mdns.Msg) {
			w.WriteMsg(req)
		}, "malformed answer: not a response to a query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := newUDPServer(t, tt.handler)
			st := testSettings()
			st.Timeout = 200 * time.Millisecond
			r := start(t, st, testEnv(t), addr)
			resolve(t, r, "/dns/web.example/80").expectFailed(addr, tt.want)
		})
	}
}

func TestSRV(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	srv.set("_web._tcp.example.", mdns.TypeSRV, reply{
		answer: []mdns.RR{
			parseRR(t, "_web._tcp.example. 60 IN SRV 10 6 8080 a.example."),
			parseRR(t, "_web._tcp.example. 60 IN SRV 10 0 8081 b.example."),
			parseRR(t, "_web._tcp.example. 60 IN SRV 20 100 9090 c.example."),
		},
		extra: []mdns.RR{
			parseRR(t, "a.example. 60 IN A 192.0.2.1"),
			parseRR(t, "a.example. 60 IN AAAA 2001:db8::1"),
		},
	})
	srv.records("b.example.", "b.example. 60 IN A 192.0.2.2")
	srv.records("c.example.", "c.example. 60 IN A 192.0.2.3")
	r := start(t, testSettings(), testEnv(t), srv.addr)
	resolve(t, r, "/dnssrv/_web._tcp.example").expectBound("192.0.2.1:8080*3", "192.0.2.2:8081*0.01", "[2001:db8::1]:8080*3")
	for _, c := range []struct {
		name  string
		qtype uint16
		want  int
	}{
		{"a.example.", mdns.TypeA, 0}, // from the additional section
		{"b.example.", mdns.TypeA, 1},
		{"b.example.", mdns.TypeAAAA, 1},
		{"c.example.", mdns.TypeA, 0}, // not of the lowest priority
	} {
		if n := srv.count(c.name, c.qtype); n != c.want {
			t.Errorf("%s %s asked %d times, want %d", mdns.TypeToString[c.qtype], c.name, n, c.want)
		}
	}

	t.Run("changes followed", func(t *testing.T) {
		srv.set("_x._tcp.example.", mdns.TypeSRV, reply{answer: []mdns.RR{parseRR(t, "_x._tcp.example. 1 IN SRV 0 1 80 b.example.")}})
		sink := resolve(t, r, "/dnssrv/_x._tcp.example")
		sink.expectBound("192.0.2.2:80")
		srv.set("_x._tcp.example.", mdns.TypeSRV, reply{answer: []mdns.RR{parseRR(t, "_x._tcp.example. 1 IN SRV 0 1 80 c.example.")}})
		sink.expectBound("192.0.2.3:80")
	})
	t.Run("not available", func(t *testing.T) {
		srv.set("_none._tcp.example.", mdns.TypeSRV, reply{answer: []mdns.RR{parseRR(t, "_none._tcp.example. 60 IN SRV 0 0 0 .")}})
		resolve(t, r, "/dnssrv/_none._tcp.example").expectBound()
	})
	t.Run("NXDOMAIN", func(t *testing.T) {
		resolve(t, r, "/dnssrv/_gone._tcp.example").expectState(interpreter.NotFound)
	})
	t.Run("target NXDOMAIN", func(t *testing.T) {
		srv.set("_y._tcp.example.", mdns.TypeSRV, reply{answer: []mdns.RR{
			parseRR(t, "_y._tcp.example. 60 IN SRV 0 1 80 gone.example."),
			parseRR(t, "_y._tcp.example. 60 IN SRV 0 1 81 b.example."),
		}})
		resolve(t, r, "/dnssrv/_y._tcp.example").expectBound("192.0.2.2:81")
	})
	t.Run("target lookup fails", func(t *testing.T) {
		srv.set("_z._tcp.example.", mdns.TypeSRV, reply{answer: []mdns.RR{parseRR(t, "_z._tcp.example. 60 IN SRV 0 1 80 broken.example.")}})
		srv.set("broken.example.", mdns.TypeA, reply{rcode: mdns.RcodeServerFailure})
		resolve(t, r, "/dnssrv/_z._tcp.example").expectFailed("SRV _z._tcp.example.: target A broken.example.: " + srv.addr + ": server answered SERVFAIL")
	})
	t.Run("too many targets to look up", func(t *testing.T) {
		var rrs []mdns.RR
		for i := range maxTargetLookups + 1 {
			rrs = append(rrs, parseRR(t, fmt.Sprintf("_many._tcp.example. 60 IN SRV 0 1 80 t%d.example.", i)))
		}
		srv.set("_many._tcp.example.", mdns.TypeSRV, reply{answer: rrs})
		resolve(t, r, "/dnssrv/_many._tcp.example").expectFailed("more than 32 targets without addresses in the additional section")
	})
}

// queryGaps waits for n queries of (name, qtype) and returns the time
// between each and the next.
func queryGaps(srv *testServer, name string, qtype uint16, n int) []time.Duration {
	srv.waitQueries(name, qtype, n)
	times := srv.queryTimes(name, qtype)
	gaps := make([]time.Duration, 0, n-1)
	for i := 1; i < n; i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	return gaps
}

func TestRefreshTiming(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, srv *testServer)
		st      func(st *Settings)
		queries int
		min     time.Duration // every gap between queries at least
	}{
		{"the record TTL", func(t *testing.T, srv *testServer) {
			srv.records("web.example.", "web.example. 1 IN A 192.0.2.1")
		}, nil, 2, time.Second},
		{"the smallest TTL used", func(t *testing.T, srv *testServer) {
			srv.records("web.example.", "web.example. 3600 IN A 192.0.2.1", "web.example. 1 IN AAAA 2001:db8::1")
		}, nil, 2, time.Second},
		{"TTL 0 clamped to ttl_min", func(t *testing.T, srv *testServer) {
			srv.records("web.example.", "web.example. 0 IN A 192.0.2.1")
		}, func(st *Settings) { st.TTLMin = 300 * time.Millisecond }, 4, 300 * time.Millisecond},
		{"long TTL clamped to ttl_max", func(t *testing.T, srv *testServer) {
			srv.records("web.example.", "web.example. 3600 IN A 192.0.2.1")
		}, func(st *Settings) { st.TTLMax = 200 * time.Millisecond }, 3, 200 * time.Millisecond},
		{"NXDOMAIN: SOA negative TTL", func(t *testing.T, srv *testServer) {
			srv.set("web.example.", mdns.TypeA, reply{rcode: mdns.RcodeNameError, ns: []mdns.RR{soa(t, 1)}})
			srv.set("web.example.", mdns.TypeAAAA, reply{rcode: mdns.RcodeNameError, ns: []mdns.RR{soa(t, 1)}})
		}, nil, 2, time.Second},
		{"no records, no SOA: ttl_min", func(t *testing.T, srv *testServer) {
			srv.set("web.example.", mdns.TypeA, reply{})
			srv.set("web.example.", mdns.TypeAAAA, reply{})
		}, func(st *Settings) { st.TTLMin = 200 * time.Millisecond }, 3, 200 * time.Millisecond},
		{"no records: SOA negative TTL clamped to ttl_max", func(t *testing.T, srv *testServer) {
			srv.set("web.example.", mdns.TypeA, reply{ns: []mdns.RR{soa(t, 3600)}})
			srv.set("web.example.", mdns.TypeAAAA, reply{ns: []mdns.RR{soa(t, 3600)}})
		}, func(st *Settings) { st.TTLMax = 200 * time.Millisecond }, 3, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t)
			tt.setup(t, srv)
			st := testSettings()
			if tt.st != nil {
				tt.st(st)
			}
			r := start(t, st, testEnv(t), srv.addr)
			sink := resolve(t, r, "/dns/web.example/80")
			sink.next()
			for i, gap := range queryGaps(srv, "web.example.", mdns.TypeA, tt.queries) {
				if gap < tt.min {
					t.Errorf("query %d came %s after the one before, want at least %s", i+2, gap, tt.min)
				}
			}
		})
	}
}

// waitGoroutines waits for the number of goroutines to fall to base.
// There is no event to wait on for that, hence the polling.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCancelStopsWatch(t *testing.T) {
	srv := newTestServer(t)
	srv.records("web.example.", "web.example. 0 IN A 192.0.2.1")
	st := testSettings()
	st.TTLMin = 20 * time.Millisecond
	base := runtime.NumGoroutine()
	r := start(t, st, testEnv(t), srv.addr)
	sink := newSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	kindtest.ResolveUntil(ctx, r, "/dns/web.example/80", sink)
	sink.expectBound("192.0.2.1:80")
	srv.waitQueries("web.example.", mdns.TypeA, 3)
	cancel()
	waitGoroutines(t, base)
	r.mu.Lock()
	live := len(r.watches)
	r.mu.Unlock()
	if live != 0 {
		t.Fatalf("%d watches left", live)
	}
	// Nothing is left to run: no query may come in 10 ttl_min.
	queries, calls := srv.count("web.example.", mdns.TypeA), sink.calls.Load()
	time.Sleep(10 * st.TTLMin)
	if n := srv.count("web.example.", mdns.TypeA); n != queries {
		t.Errorf("%d queries after the watch was cancelled", n-queries)
	}
	if n := sink.calls.Load(); n != calls {
		t.Errorf("%d answers after the watch was cancelled", n-calls)
	}
}

func TestCloseAbortsQueriesAndWaits(t *testing.T) {
	srv := newTestServer(t)
	srv.records("web.example.", "web.example. 60 IN A 192.0.2.1")
	srv.holdQueries()
	st := testSettings()
	st.Timeout = time.Minute
	base := runtime.NumGoroutine()
	r := newResolver(st, []string{srv.addr}, testEnv(t))
	var sinks []*testSink
	for i := range 3 {
		sink := newSink(t)
		sinks = append(sinks, sink)
		kindtest.ResolveUntil(t.Context(), r, fmt.Sprintf("/dns/web.example/%d", 80+i), sink)
	}
	srv.waitQueries("web.example.", mdns.TypeA, 3)
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitFor):
		t.Fatal("Close did not abort the queries in flight")
	}
	srv.release()
	waitGoroutines(t, base)
	for i, s := range sinks {
		if n := s.calls.Load(); n != 0 {
			t.Errorf("sink %d called %d times", i, n)
		}
	}

	sink := newSink(t)
	kindtest.ResolveUntil(t.Context(), r, "/dns/web.example/80", sink)
	sink.expectFailed("interpreter closed")
}

func TestCloseWaitsForSink(t *testing.T) {
	srv := newTestServer(t)
	srv.records("web.example.", "web.example. 60 IN A 192.0.2.1")
	r := newResolver(testSettings(), []string{srv.addr}, testEnv(t))
	sink := newSink(t)
	sink.entered, sink.block = make(chan struct{}, 1), make(chan struct{})
	kindtest.ResolveUntil(t.Context(), r, "/dns/web.example/80", sink)
	select {
	case <-sink.entered:
	case <-time.After(waitFor):
		t.Fatal("no answer")
	}
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	// There is no event for "Close is waiting"; give it time to return
	// wrongly.
	select {
	case <-closed:
		t.Fatal("Close returned while a sink call was running")
	case <-time.After(200 * time.Millisecond):
	}
	close(sink.block)
	select {
	case <-closed:
	case <-time.After(waitFor):
		t.Fatal("Close did not return")
	}
}

func TestQueriesBounded(t *testing.T) {
	srv := newTestServer(t)
	const names = 5
	for i := range names {
		srv.records(fmt.Sprintf("h%d.example.", i), fmt.Sprintf("h%d.example. 60 IN A 192.0.2.%d", i, i+1))
	}
	srv.holdQueries()
	r := start(t, testSettings(), testEnv(t), srv.addr)
	r.maxInFlight = 2
	var sinks []*testSink
	for i := range names {
		sinks = append(sinks, resolve(t, r, fmt.Sprintf("/dns/h%d.example/80", i)))
	}
	srv.waitUntil(func() bool { return srv.inFlight == 2 }, "2 queries in flight")
	// Give a third query time to arrive, wrongly.
	time.Sleep(200 * time.Millisecond)
	srv.mu.Lock()
	in := srv.inFlight
	srv.mu.Unlock()
	if in != 2 {
		t.Errorf("%d queries in flight, want 2", in)
	}
	srv.release()
	for i, s := range sinks {
		s.expectBound(fmt.Sprintf("192.0.2.%d:80", i+1))
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.maxIn > 2 {
		t.Errorf("%d queries in flight at once, want at most 2", srv.maxIn)
	}
}

func TestResolveBadName(t *testing.T) {
	r := newResolver(testSettings(), []string{"127.0.0.1:1"}, testEnv(t))
	defer r.Close()
	sink := newSink(t)
	kindtest.ResolveUntil(t.Context(), r, "/dns/web.example", sink)
	if len(sink.ch) != 1 {
		t.Fatal("no answer before Resolve returned")
	}
	sink.expectFailed(`dns: "/dns/web.example" has no port`)
}
