package dns

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// waitFor bounds every wait of the tests for something to happen.
const waitFor = 10 * time.Second

// reply is how the test server answers one question.
type reply struct {
	rcode       int
	answer      []mdns.RR
	ns          []mdns.RR
	extra       []mdns.RR
	truncateUDP bool // over UDP: no records and the TC bit
	tcpRcode    int  // over TCP, when not 0: this rcode instead
	silent      bool // no reply at all
}

// key is a question the test server knows, or a query it counts.
type key struct {
	name  string // canonical
	qtype uint16
}

// testServer is a DNS server on 127.0.0.1, UDP and TCP on the same port,
// whose replies the test sets and changes. Questions it has no reply for
// get NXDOMAIN.
type testServer struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	replies  map[key]reply
	counts   map[key]int // queries received, UDP and TCP
	tcp      map[key]int // of which over TCP
	times    map[key][]time.Time
	inFlight int
	maxIn    int           // most queries in the handler at once
	hold     chan struct{} // when not nil, queries wait until it is closed
	changed  chan struct{} // closed and replaced on every query
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	s := &testServer{
		t:       t,
		replies: make(map[key]reply),
		counts:  make(map[key]int),
		tcp:     make(map[key]int),
		times:   make(map[key][]time.Time),
		changed: make(chan struct{}),
	}
	pc, l := listenUDPAndTCP(t)
	s.addr = pc.LocalAddr().String()
	udp := &mdns.Server{PacketConn: pc, Handler: s}
	tcp := &mdns.Server{Listener: l, Handler: s}
	for _, srv := range []*mdns.Server{udp, tcp} {
		started, served := make(chan struct{}), make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { defer close(served); srv.ActivateAndServe() }()
		select {
		case <-started:
		case <-time.After(waitFor):
			t.Fatal("test DNS server did not start")
		}
		t.Cleanup(func() {
			s.release()
			srv.Shutdown()
			<-served
		})
	}
	return s
}

// listenUDPAndTCP listens on a free port of 127.0.0.1 for both.
func listenUDPAndTCP(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("no port of 127.0.0.1 free for both UDP and TCP")
	return nil, nil
}

func (s *testServer) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	k := key{mdns.CanonicalName(q.Name), q.Qtype}
	overTCP := w.RemoteAddr().Network() == "tcp"

	s.mu.Lock()
	s.counts[k]++
	if overTCP {
		s.tcp[k]++
	}
	s.times[k] = append(s.times[k], time.Now())
	s.inFlight++
	s.maxIn = max(s.maxIn, s.inFlight)
	close(s.changed)
	s.changed = make(chan struct{})
	rep, ok := s.replies[k]
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	if !ok {
		rep = reply{rcode: mdns.RcodeNameError}
	}
	if rep.silent {
		return
	}
	m := new(mdns.Msg).SetReply(req)
	m.Rcode = rep.rcode
	m.Answer, m.Ns, m.Extra = rep.answer, rep.ns, rep.extra
	switch {
	case overTCP && rep.tcpRcode != 0:
		m.Rcode, m.Answer, m.Ns, m.Extra = rep.tcpRcode, nil, nil, nil
	case !overTCP && rep.truncateUDP:
		m.Truncated, m.Answer, m.Ns, m.Extra = true, nil, nil, nil
	}
	w.WriteMsg(m)
}

// set makes the server answer (name, qtype) with rep.
func (s *testServer) set(name string, qtype uint16, rep reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies[key{mdns.CanonicalName(name), qtype}] = rep
}

// records makes the server answer the A and AAAA questions of name with
// the records among rrs (given in zone file syntax), NOERROR, as one
// change. A type without records gets NODATA with an SOA record of TTL
// 3600, as a real server gives.
func (s *testServer) records(name string, rrs ...string) {
	s.t.Helper()
	byType := map[uint16]*reply{mdns.TypeA: {}, mdns.TypeAAAA: {}}
	for _, text := range rrs {
		rr := parseRR(s.t, text)
		rep, ok := byType[rr.Header().Rrtype]
		if !ok {
			s.t.Fatalf("records takes A and AAAA records, not %q", text)
		}
		rep.answer = append(rep.answer, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for qtype, rep := range byType {
		if len(rep.answer) == 0 {
			rep.ns = []mdns.RR{soa(s.t, 3600)}
		}
		s.replies[key{mdns.CanonicalName(name), qtype}] = *rep
	}
}

// count returns how many times (name, qtype) was asked.
func (s *testServer) count(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key{mdns.CanonicalName(name), qtype}]
}

func (s *testServer) tcpCount(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcp[key{mdns.CanonicalName(name), qtype}]
}

// queryTimes returns when (name, qtype) was asked.
func (s *testServer) queryTimes(name string, qtype uint16) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times[key{mdns.CanonicalName(name), qtype}]...)
}

// waitQueries waits until (name, qtype) has been asked n times in all.
func (s *testServer) waitQueries(name string, qtype uint16, n int) {
	s.t.Helper()
	s.waitUntil(func() bool { return s.counts[key{mdns.CanonicalName(name), qtype}] >= n },
		"%d queries for %s %s", n, mdns.TypeToString[qtype], name)
}

// waitUntil waits until cond, called with s.mu held, is true.
func (s *testServer) waitUntil(cond func() bool, format string, args ...any) {
	s.t.Helper()
	deadline := time.After(waitFor)
	for {
		s.mu.Lock()
		ok, changed := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			s.t.Fatalf("test DNS server: no "+format+" within %s", append(args, waitFor)...)
		}
	}
}

// holdQueries makes queries wait in the handler until release.
func (s *testServer) holdQueries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
}

func (s *testServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

func parseRR(t testing.TB, text string) mdns.RR {
	t.Helper()
	rr, err := mdns.NewRR(text)
	if err != nil || rr == nil {
		t.Fatalf("bad test record %q: %v", text, err)
	}
	return rr
}

// soa is an SOA record of example. whose negative TTL is ttl.
func soa(t testing.TB, ttl int) mdns.RR {
	return parseRR(t, fmt.Sprintf("example. %d IN SOA ns.example. admin.example. 1 60 60 60 %d", ttl, ttl))
}
