package router

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/switchyard-proxy/switchyard/interpreter/dns"
	"github.com/switchyard-proxy/switchyard/server"
)

// dnsHost is the host name the DNS tests resolve.
const dnsHost = "backend.test."

// dnsTTL is the TTL of the fixture's records and negative answers, in
// seconds: the proxy asks again this often.
const dnsTTL = 1

// dnsFixture is a DNS server on 127.0.0.1 (UDP) that answers for dnsHost
// with the test's rcode and A records; AAAA gets no records, as does any
// other name.
type dnsFixture struct {
	addr    string
	queries atomic.Int64 // A questions for dnsHost received

	mu    sync.Mutex
	rcode int
	ips   []netip.Addr
}

func startDNSFixture(t testing.TB) *dnsFixture {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &dnsFixture{addr: pc.LocalAddr().String(), rcode: mdns.RcodeNameError}
	srv := &mdns.Server{PacketConn: pc, Handler: f}
	started, served := make(chan struct{}), make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() {
		defer close(served)
		_ = srv.ActivateAndServe()
	}()
	select {
	case <-started:
	case <-time.After(e2eWait):
		t.Fatal("DNS fixture did not start")
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-served
	})
	return f
}

// set makes the fixture answer with rcode and, for NOERROR, A records
// of ips.
func (f *dnsFixture) set(rcode int, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rcode, f.ips = rcode, nil
	for _, ip := range ips {
		f.ips = append(f.ips, netip.MustParseAddr(ip))
	}
}

func (f *dnsFixture) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	m := new(mdns.Msg).SetReply(req)
	if len(req.Question) != 1 || mdns.CanonicalName(req.Question[0].Name) != dnsHost {
		m.Rcode = mdns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	if q.Qtype == mdns.TypeA {
		f.queries.Add(1)
	}
	f.mu.Lock()
	m.Rcode = f.rcode
	if f.rcode == mdns.RcodeSuccess && q.Qtype == mdns.TypeA {
		for _, ip := range f.ips {
			m.Answer = append(m.Answer, &mdns.A{
				Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: dnsTTL},
				A:   ip.AsSlice(),
			})
		}
	}
	f.mu.Unlock()
	if len(m.Answer) == 0 && m.Rcode != mdns.RcodeServerFailure {
		// No records: the SOA gives how long that holds.
		m.Ns = []mdns.RR{&mdns.SOA{
			Hdr: mdns.RR_Header{Name: "test.", Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: dnsTTL},
			Ns:  "ns.test.", Mbox: "admin.test.", Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: dnsTTL,
		}}
	}
	_ = w.WriteMsg(m)
}

func (f *dnsFixture) settings() *dns.Settings {
	return &dns.Settings{
		Server:     f.addr,
		Timeout:    2 * time.Second,
		BackoffMin: 50 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond,
		TTLMin:     time.Second,
		TTLMax:     time.Minute,
	}
}

// config is a proxy whose one server forwards to /dns/<dnsHost>/<port>.
func (f *dnsFixture) config(port uint16) *Config {
	cfg := discoveryConfig("dns", f.settings())
	cfg.Routers[0].Servers[0].Dst = fmt.Sprintf("/dns/%s/%d", dnsHost, port)
	return cfg
}

// startSamePortBackends starts backends named "a" on 127.0.0.1 and "b" on
// 127.0.0.2, on the same port, which a /dns name fixes.
func startSamePortBackends(t testing.TB) (a, b *backend, port uint16) {
	t.Helper()
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("cannot listen on 127.0.0.2 (Linux routes all of 127.0.0.0/8 to lo): %v", err)
	}
	probe.Close()
	for range 20 {
		la, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = uint16(la.Addr().(*net.TCPAddr).Port)
		lb, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
		if err != nil {
			la.Close() // the port is taken on 127.0.0.2: try another
			continue
		}
		return serveNamedBackend(t, la, "a"), serveNamedBackend(t, lb, "b"), port
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return nil, nil, 0
}

// The records of a /dns name change under a running proxy: new
// connections follow them once the TTL has run out, a server failure keeps
// the last set and NXDOMAIN leaves the name without endpoints.
func TestDNSTrafficFollowsRecords(t *testing.T) {
	_, _, port := startSamePortBackends(t)
	f := startDNSFixture(t)
	f.set(mdns.RcodeSuccess, "127.0.0.1")
	p := startProxy(t, f.config(port))
	first := dial(t, p.addr)
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("first connection: %q, %v", got, err)
	}

	f.set(mdns.RcodeSuccess, "127.0.0.2")
	took := waitRoute(t, p.addr, "b")
	t.Logf("traffic followed the new record after %v (TTL %ds)", took, dnsTTL)
	if took > 5*dnsTTL*time.Second {
		t.Errorf("traffic followed the new record after %v, with a TTL of %ds", took, dnsTTL)
	}
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("the stream to a after the record moved: %q, %v", got, err)
	}

	failures := nameState(t, p).Failures
	f.set(mdns.RcodeServerFailure)
	s := waitFailures(t, p, failures+1)
	t.Logf("after SERVFAIL: %s", s.LastError)
	expectRoute(t, p.addr, "b", 5)
	if s := nameState(t, p); s.State != "bound" {
		t.Errorf("after SERVFAIL the name is %s", s.State)
	}

	f.set(mdns.RcodeNameError)
	waitNoEndpoints(t, p)
	if s := nameState(t, p); s.State != "not_found" {
		t.Errorf("after NXDOMAIN the name is %s", s.State)
	}
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("the stream to a after NXDOMAIN: %q, %v", got, err)
	}
	if n := f.queries.Load(); n < 3 {
		t.Errorf("%d A queries, want at least 3", n)
	}
	if st := p.srv.Stats(); st.Ended[server.ReasonConnectFailed]+st.Ended[server.ReasonConnectTimeout] != 0 {
		t.Errorf("ended: %v", st.Ended)
	}
}
