package consul

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

// wait bounds every wait for an event in these tests.
const wait = 10 * time.Second

// sinkCap is how many answers a test's sink (kindtest.Recorder) holds
// until the test takes them.
const sinkCap = 256

// fakeConsul is a Consul agent's health endpoint on loopback, with
// blocking queries: a query without index, or with one lower than the
// service's, is answered at once; otherwise it is held until the service's
// index passes it or its wait ends, as Consul does. A service nobody
// registered answers [] with the catalog's index.
type fakeConsul struct {
	t     *testing.T
	srv   *httptest.Server
	reqs  chan seenRequest
	conns atomic.Int64 // connections accepted

	openConns atomic.Int64 // connections open

	// intercept, when set, sees each request first and may answer it
	// itself, returning true.
	intercept atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]

	inFlight, maxBlocking atomic.Int64 // blocking queries held, and the most at once

	mu       sync.Mutex
	index    uint64 // the catalog's index: the highest of the services'
	services map[string]fakeService
	changed  chan struct{} // closed at each change
}

type fakeService struct {
	index   uint64
	entries []string // the JSON of each service entry
}

// seenRequest is what the server saw of a request.
type seenRequest struct {
	at       time.Time
	method   string
	path     string // as sent, escaped
	query    url.Values
	token    string
	hasToken bool
	proto    int
}

func (r seenRequest) index() string { return r.query.Get("index") }

func startFakeConsul(t *testing.T) *fakeConsul {
	return startFake(t, false)
}

func startFake(t *testing.T, tls bool) *fakeConsul {
	t.Helper()
	f := &fakeConsul{
		t:        t,
		reqs:     make(chan seenRequest, 1<<14),
		index:    1,
		services: make(map[string]fakeService),
		changed:  make(chan struct{}),
	}
	f.srv = httptest.NewUnstartedServer(f)
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			f.conns.Add(1)
			f.openConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			f.openConns.Add(-1)
		}
	}
	if tls {
		f.srv.EnableHTTP2 = true
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeConsul) url() string { return f.srv.URL }

// set registers service with the given entries (none: no passing
// instance), as a new change of the catalog.
func (f *fakeConsul) set(service string, entries ...string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.services[service] = fakeService{index: f.index, entries: entries}
	f.broadcastLocked()
	return f.index
}

// setIndex sets service's index as given, lower ones too: what a snapshot
// restore does.
func (f *fakeConsul) setIndex(service string, index uint64, entries ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[service] = fakeService{index: index, entries: entries}
	f.index = max(f.index, index)
	f.broadcastLocked()
}

func (f *fakeConsul) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConsul) entries(service string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.services[service].entries)
}

func (f *fakeConsul) serviceIndex(service string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.services[service].index
}

// state returns service's index and response body, and the channel closed
// at the next change.
func (f *fakeConsul) state(service string) (uint64, string, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[service]
	if !ok {
		return f.index, "[]", f.changed
	}
	return s.index, "[" + strings.Join(s.entries, ",") + "]", f.changed
}

func (f *fakeConsul) setIntercept(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.intercept.Store(&h)
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, hasToken := r.Header["X-Consul-Token"]
	seen := seenRequest{at: time.Now(), method: r.Method, path: r.URL.EscapedPath(), query: r.URL.Query(), hasToken: hasToken, proto: r.ProtoMajor}
	if hasToken {
		seen.token = token[0]
	}
	select {
	case f.reqs <- seen:
	default:
		f.t.Error("the fake agent saw more requests than it could record")
	}
	if h := f.intercept.Load(); h != nil && (*h)(w, r) {
		return
	}
	service, ok := strings.CutPrefix(r.URL.Path, "/v1/health/service/")
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	minIndex, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	waitFor := 5 * time.Minute
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			http.Error(w, "bad wait", http.StatusBadRequest)
			return
		}
		waitFor = d
	}
	if minIndex > 0 {
		atomicMax(&f.maxBlocking, f.inFlight.Add(1))
		defer f.inFlight.Add(-1)
	}
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for {
		index, body, changed := f.state(service)
		if minIndex == 0 || index > minIndex {
			writeHealth(w, index, body)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			writeHealth(w, index, body)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// atomicMax raises m to n if n is larger.
func atomicMax(m *atomic.Int64, n int64) {
	for old := m.Load(); n > old && !m.CompareAndSwap(old, n); old = m.Load() {
	}
}

func writeHealth(w http.ResponseWriter, index uint64, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Consul-Index", strconv.FormatUint(index, 10))
	w.Header().Set("X-Consul-Knownleader", "true")
	w.Header().Set("X-Consul-Lastcontact", "0")
	w.Write([]byte(body))
}

// next returns the next request the server saw.
func (f *fakeConsul) next(t *testing.T) seenRequest {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(wait):
		t.Fatalf("no request reached the server within %s", wait)
		return seenRequest{}
	}
}

// nextWithIndex returns the next request with index=want, skipping others.
func (f *fakeConsul) nextWithIndex(t *testing.T, want uint64) seenRequest {
	t.Helper()
	for {
		if r := f.next(t); r.index() == strconv.FormatUint(want, 10) {
			return r
		}
	}
}

// inst is one service instance, as a test registers it.
type inst struct {
	id, node, nodeAddr, addr string
	port                     int
	weight                   int  // Weights.Passing
	noWeights                bool // no Weights at all
}

// json is the instance's entry as Consul's health endpoint writes it.
func (i inst) json() string {
	weights := ""
	if !i.noWeights {
		weights = fmt.Sprintf(`"Weights":{"Passing":%d,"Warning":1},`, i.weight)
	}
	return fmt.Sprintf(`{"Node":{"ID":"7a3f6a2e-1111-2222-3333-444455556666","Node":%q,"Address":%q,"Datacenter":"dc1",`+
		`"TaggedAddresses":{"lan":%[2]q,"wan":%[2]q},"Meta":{"consul-network-segment":""},"CreateIndex":5,"ModifyIndex":5},`+
		`"Service":{"ID":%q,"Service":"web","Tags":["v1","primary"],"Address":%q,"Meta":null,"Port":%d,%s`+
		`"EnableTagOverride":false,"Proxy":{"MeshGateway":{},"Expose":{}},"Connect":{},"CreateIndex":6,"ModifyIndex":6},`+
		`"Checks":[{"Node":%[1]q,"CheckID":"serfHealth","Name":"Serf Health Status","Status":"passing","Notes":"",`+
		`"Output":"Agent alive and reachable","ServiceID":"","ServiceName":"","ServiceTags":[],"Type":"","Definition":{},`+
		`"CreateIndex":5,"ModifyIndex":5}]}`,
		i.node, i.nodeAddr, i.id, i.addr, i.port, weights)
}

var (
	instA = inst{id: "web-1", node: "n1", nodeAddr: "10.0.0.1", addr: "127.0.0.1", port: 8080, weight: 1}
	instB = inst{id: "web-2", node: "n2", nodeAddr: "10.0.0.2", addr: "127.0.0.2", port: 8080, weight: 1}
	epA   = ep("127.0.0.1:8080", 1)
	epB   = ep("127.0.0.2:8080", 1)
)

func ep(addr string, weight float64) interpreter.Endpoint {
	return interpreter.Endpoint{Addr: netip.MustParseAddrPort(addr), Weight: weight}
}

// testSettings are fast settings for an agent at addr.
func testSettings(addr string) Settings {
	return Settings{
		Addr:       addr,
		Wait:       5 * time.Second,
		Timeout:    2 * time.Second,
		BackoffMin: 5 * time.Millisecond,
		BackoffMax: 20 * time.Millisecond,

		MaxConnections: defaultMaxConns,
	}
}

type testInterp struct {
	*Interpreter
	stats *interpreter.Stats
	logs  *kindtest.LogRecorder
}

// newTestInterp builds an interpreter closed at the end of the test, with
// a token bucket fast enough not to slow tests down.
func newTestInterp(t *testing.T, st Settings) testInterp {
	t.Helper()
	ti := testInterp{stats: new(interpreter.Stats), logs: new(kindtest.LogRecorder)}
	in, err := st.New(interpreter.Env{Router: "test", Log: slog.New(ti.logs), Stats: ti.stats})
	if err != nil {
		t.Fatal(err)
	}
	ti.Interpreter = in.(*Interpreter)
	ti.lim.interval = time.Millisecond
	t.Cleanup(func() { ti.Close() })
	return ti
}

// setSlots changes the number of blocking query slots; before any Resolve.
func (n *Interpreter) setSlots(slots int) {
	n.lim.slots = slots
	n.slots = make(chan struct{}, slots)
}

// connCounter counts the connections an interpreter opens, from its side.
type connCounter struct{ open, max, dialed atomic.Int64 }

// countConns has n's transport count its connections; before any Resolve.
func (n *Interpreter) countConns() *connCounter {
	c := new(connCounter)
	tr := n.client.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.dialed.Add(1)
		atomicMax(&c.max, c.open.Add(1))
		return &countedConn{Conn: conn, c: c}, nil
	}
	return c
}

type countedConn struct {
	net.Conn
	c    *connCounter
	once sync.Once
}

func (cc *countedConn) Close() error {
	cc.once.Do(func() { cc.c.open.Add(-1) })
	return cc.Conn.Close()
}

// watchGoroutines counts the goroutines running a watch loop.
func watchGoroutines() int {
	buf := make([]byte, 8<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "consul.(*nameWatch).loop(")
}

// openFDs counts the process's open file descriptors, or -1 where that
// cannot be read.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// waitFor polls cond, which reads state that has no event to wait on
// (counters, goroutines), until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
