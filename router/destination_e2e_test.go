package router

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/switchyard-proxy/switchyard/interpreter/destination"
	"github.com/switchyard-proxy/switchyard/interpreter/destination/destpb"
	"github.com/switchyard-proxy/switchyard/server"
)

// dstAuthority is the authority the destination tests' server asks for;
// the name is /svc/ and it.
const dstAuthority = "web.test.svc.cluster.local:8080"

// dstFixture is linkerd2's Destination service on loopback, serving one
// endpoint set, the test's, to every Get of dstAuthority: each stream
// starts with the set (an add, or no_endpoints), and each change the test
// makes is sent to every open stream as the adds and removes that make
// it, as the controller does.
type dstFixture struct {
	destpb.UnimplementedDestinationServer
	t       testing.TB
	addr    string
	gets    atomic.Int64 // Get streams of dstAuthority, over every restart
	conns   atomic.Int64 // TCP connections accepted
	mu      sync.Mutex
	srv     *grpc.Server
	set     []string      // "IP:port"; nil: exists, no endpoints
	changed chan struct{} // closed and replaced by each change
	any     bool          // serve the set for every authority; set before the first Get
}

func startDstFixture(t testing.TB, initial ...string) *dstFixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &dstFixture{t: t, addr: ln.Addr().String(), set: initial, changed: make(chan struct{})}
	f.serve(ln)
	t.Cleanup(f.stop)
	return f
}

func (f *dstFixture) serve(ln net.Listener) {
	srv := grpc.NewServer()
	destpb.RegisterDestinationServer(srv, f)
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(countingAccepts{ln, &f.conns})
}

// stop ends every stream and closes the listener, as a controller that dies.
func (f *dstFixture) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

func (f *dstFixture) restart() {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("destination fixture: listening again on %s: %v", f.addr, err)
	}
	f.serve(ln)
}

// setEndpoints makes addrs the set from now on.
func (f *dstFixture) setEndpoints(addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set = addrs
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *dstFixture) settings() *destination.Settings {
	return &destination.Settings{
		Addr:       f.addr,
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: 100 * time.Millisecond,
		Timeout:    e2eWait,
	}
}

func (f *dstFixture) config() *Config {
	cfg := discoveryConfig("destination", f.settings())
	cfg.Routers[0].Servers[0].Dst = "/svc/" + dstAuthority
	return cfg
}

func (f *dstFixture) Get(req *destpb.GetDestination, s grpc.ServerStreamingServer[destpb.Update]) error {
	if req.GetPath() != dstAuthority && !f.any {
		return s.Send(&destpb.Update{Update: &destpb.Update_NoEndpoints{NoEndpoints: &destpb.NoEndpoints{Exists: false}}})
	}
	if req.GetPath() == dstAuthority {
		f.gets.Add(1)
	}
	var sent []string
	first := true
	for {
		f.mu.Lock()
		set, changed := slices.Clone(f.set), f.changed
		f.mu.Unlock()
		for _, u := range dstDiff(sent, set, first) {
			if err := s.Send(u); err != nil {
				return err
			}
		}
		sent, first = set, false
		select {
		case <-changed:
		case <-s.Context().Done():
			return nil
		}
	}
}

// dstDiff is the updates that take a stream from set from to set to.
func dstDiff(from, to []string, first bool) []*destpb.Update {
	if len(to) == 0 {
		if first || len(from) > 0 {
			return []*destpb.Update{{Update: &destpb.Update_NoEndpoints{NoEndpoints: &destpb.NoEndpoints{Exists: true}}}}
		}
		return nil
	}
	var out []*destpb.Update
	add := &destpb.WeightedAddrSet{}
	for _, a := range to {
		if !slices.Contains(from, a) {
			add.Addrs = append(add.Addrs, &destpb.WeightedAddr{Addr: dstWire(a), Weight: 10000})
		}
	}
	if len(add.Addrs) > 0 {
		out = append(out, &destpb.Update{Update: &destpb.Update_Add{Add: add}})
	}
	rm := &destpb.AddrSet{}
	for _, a := range from {
		if !slices.Contains(to, a) {
			rm.Addrs = append(rm.Addrs, dstWire(a))
		}
	}
	if len(rm.Addrs) > 0 {
		out = append(out, &destpb.Update{Update: &destpb.Update_Remove{Remove: rm}})
	}
	return out
}

func dstWire(s string) *destpb.TcpAddress {
	ap := netip.MustParseAddrPort(s)
	b := ap.Addr().As4()
	return &destpb.TcpAddress{
		Ip:   &destpb.IPAddress{Ip: &destpb.IPAddress_Ipv4{Ipv4: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])}},
		Port: uint32(ap.Port()),
	}
}

// countingAccepts counts the connections a listener accepts.
type countingAccepts struct {
	net.Listener
	n *atomic.Int64
}

func (l countingAccepts) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// Traffic follows the Destination service's updates: added endpoints
// take connections, removed ones none, no_endpoints{exists} fails new
// connections fast, and a stream open across the changes keeps flowing.
func TestDestinationTrafficFollowsUpdates(t *testing.T) {
	a, b := startNamedBackend(t, "a"), startNamedBackend(t, "b")
	f := startDstFixture(t, a.addr)
	p := startProxy(t, f.config())
	first := dial(t, p.addr)
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("first connection: %q, %v", got, err)
	}
	f.setEndpoints(b.addr)
	waitRoute(t, p.addr, "b")
	f.setEndpoints()
	waitNoEndpoints(t, p)
	if s := nameState(t, p); s.State != "bound" || len(s.Endpoints) != 0 && s.Endpoints[0].State != "retired" {
		t.Errorf("after no_endpoints the name is %s with %+v, want bound and empty", s.State, s.Endpoints)
	}
	f.setEndpoints(a.addr)
	waitRoute(t, p.addr, "a")
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("the first stream after the updates: %q, %v", got, err)
	}
	if got := f.gets.Load(); got != 1 {
		t.Errorf("%d Get streams, want one throughout", got)
	}
}

// With the Destination service down the last set serves; when it comes
// back, the new stream's first update replaces the set.
func TestDestinationDownLastSetServes(t *testing.T) {
	a, b := startNamedBackend(t, "a"), startNamedBackend(t, "b")
	f := startDstFixture(t, a.addr)
	p := startProxy(t, f.config())
	expectRoute(t, p.addr, "a", 3)
	f.stop()
	waitFailures(t, p, 2)
	expectRoute(t, p.addr, "a", 5)
	f.setEndpoints(b.addr)
	f.restart()
	waitRoute(t, p.addr, "b")
	if st := p.srv.Stats(); st.Ended[server.ReasonNoEndpoints]+st.Ended[server.ReasonConnectFailed] != 0 {
		t.Errorf("connections failed across the outage: %v", st.Ended)
	}
}
