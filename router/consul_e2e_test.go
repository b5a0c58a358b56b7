package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter/consul"
	"github.com/switchyard-proxy/switchyard/server"
)

// consulFixture is a Consul agent's health endpoint for the service
// "test" (the name testDst): blocking queries answer at once when the
// client's index is behind, else when the set changes or the wait runs
// out, as Consul does.
type consulFixture struct {
	srv     *httptest.Server
	queries atomic.Int64
	mu      sync.Mutex
	index   uint64
	set     []string      // "IP:port"; nil: the service is unknown
	changed chan struct{} // closed and replaced by each change
	any     bool          // serve the set for every service; set before the first query
}

func startConsulFixture(t testing.TB, initial ...string) *consulFixture {
	t.Helper()
	f := &consulFixture{index: 1, set: initial, changed: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.health))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *consulFixture) setEndpoints(addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.set = addrs
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *consulFixture) settings() *consul.Settings {
	return &consul.Settings{
		Addr:       f.srv.URL,
		Wait:       time.Minute,
		Timeout:    e2eWait,
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: 100 * time.Millisecond,

		MaxConnections: 64,
	}
}

func (f *consulFixture) config() *Config { return discoveryConfig("consul", f.settings()) }

func (f *consulFixture) health(w http.ResponseWriter, r *http.Request) {
	if !f.any && r.URL.Path != "/v1/health/service/test" || r.URL.Query().Get("passing") != "true" {
		http.Error(w, "consul fixture: unexpected request "+r.URL.String(), http.StatusBadRequest)
		return
	}
	f.queries.Add(1)
	seen, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	f.mu.Lock()
	index, set, changed := f.index, f.set, f.changed
	f.mu.Unlock()
	if seen >= index && wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-changed:
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
		index, set = f.index, f.set
		f.mu.Unlock()
	}
	var entries []string
	for _, a := range set {
		ap := netip.MustParseAddrPort(a)
		entries = append(entries, fmt.Sprintf(
			`{"Node":{"Node":"n1","Address":"192.0.2.1"},"Service":{"ID":"i-%d","Service":"s","Address":%q,"Port":%d,"Weights":{"Passing":1,"Warning":1}},"Checks":[]}`,
			ap.Port(), ap.Addr().String(), ap.Port()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Consul-Index", strconv.FormatUint(index, 10))
	fmt.Fprint(w, "["+strings.Join(entries, ",")+"]")
}

// Traffic follows Consul's answers to blocking queries: a change of the
// passing instances moves new connections, an empty answer (the service
// unknown, or none passing) makes the name not found, and a stream open
// across the changes keeps flowing.
func TestConsulTrafficFollowsUpdates(t *testing.T) {
	a, b := startNamedBackend(t, "a"), startNamedBackend(t, "b")
	f := startConsulFixture(t, a.addr)
	p := startProxy(t, f.config())
	first := dial(t, p.addr)
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("first connection: %q, %v", got, err)
	}
	f.setEndpoints(b.addr)
	waitRoute(t, p.addr, "b")
	f.setEndpoints()
	waitNoEndpoints(t, p)
	if s := nameState(t, p); s.State != "not_found" {
		t.Errorf("with no instance passing the name is %s", s.State)
	}
	f.setEndpoints(a.addr)
	waitRoute(t, p.addr, "a")
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("the first stream after the updates: %q, %v", got, err)
	}
	if st := p.srv.Stats(); st.Ended[server.ReasonConnectFailed] != 0 {
		t.Errorf("connections failed: %v", st.Ended)
	}
}
