package router

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/server"
)

// withEndpoints returns a copy of cfg whose static name has the backends
// given.
func withEndpoints(cfg *Config, backends ...string) *Config {
	out := cfg.withServersCopied()
	var eps []interpreter.Endpoint
	for _, b := range backends {
		eps = append(eps, interpreter.Endpoint{Addr: netip.MustParseAddrPort(b), Weight: 1})
	}
	out.Routers[0].Interpreter.Settings = &interpreter.StaticSettings{Names: map[string][]interpreter.Endpoint{testDst: eps}}
	return out
}

// hold opens a connection through addr to a named backend and returns it
// with the backend's name, the connection left open.
func hold(t *testing.T, addr string) (*net.TCPConn, string) {
	t.Helper()
	c := dial(t, addr)
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("?\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(e2eWait))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("held connection: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, strings.TrimSuffix(line, "\n")
}

func reload(t *testing.T, p *testProxy, cfg *Config) {
	t.Helper()
	notes, err := p.Reload(cfg)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if len(notes) > 0 {
		t.Fatalf("Reload notes: %v", notes)
	}
}

// A reload that changes a static name's endpoints hands them to the
// balancer in place: the name keeps its balancer, the endpoint that stays
// keeps its load (a connection open on it), and a new connection goes by
// that load, to the endpoint added.
func TestReloadKeepsNamesAndLoad(t *testing.T) {
	a, b := startNamedBackend(t, "A"), startNamedBackend(t, "B")
	cfg := testConfig(a.addr)
	p := startProxy(t, cfg)
	held, name := hold(t, p.addr)
	if name != "A" {
		t.Fatalf("held connection reached %q, want A", name)
	}
	before := p.Routers()[0].Binder()

	reload(t, p, withEndpoints(cfg, a.addr, b.addr))
	if p.Generation() != 2 {
		t.Fatalf("generation %d after a reload, want 2", p.Generation())
	}
	if p.Routers()[0].Binder() != before {
		t.Fatal("the reload built a new binder: names in use lost their balancers")
	}
	st := nameState(t, p)
	loads := map[string]int64{}
	for _, e := range st.Endpoints {
		loads[e.Addr.String()] = e.Load
	}
	if loads[a.addr] != 1 || loads[b.addr] != 0 || len(loads) != 2 {
		t.Fatalf("endpoint loads after the reload %v, want %s: 1, %s: 0", loads, a.addr, b.addr)
	}
	if _, name := hold(t, p.addr); name != "B" { // A carries the held connection
		t.Fatalf("the connection after the reload reached %q, want B: the load of A was lost", name)
	}
	if _, err := held.Write([]byte("?\n")); err != nil {
		t.Fatalf("the held connection broke across the reload: %v", err)
	}
}

// A reload whose router needs a new binder (here bind_idle changed)
// builds one for new connections; the old generation keeps its own for
// the connections it has open, and is released, its binder closed, when
// the last of them ends.
func TestReloadReleasesTheOldGenerationAtItsLastStream(t *testing.T) {
	a, b := startNamedBackend(t, "A"), startNamedBackend(t, "B")
	cfg := testConfig(a.addr)
	p := startProxy(t, cfg)
	held, _ := hold(t, p.addr)
	old := p.Routers()[0].Binder()

	next := withEndpoints(cfg, b.addr)
	next.Routers[0].BindIdle = time.Hour
	reload(t, p, next)
	if p.Routers()[0].Binder() == old {
		t.Fatal("bind_idle changed and the binder was kept")
	}
	expectRoute(t, p.addr, "B", 3)
	if n := live(p); n != 2 {
		t.Fatalf("%d generations live with a stream of the first open, want 2", n)
	}
	if old.Len() != 1 {
		t.Fatalf("the old generation's binder has %d names while its stream is open, want 1", old.Len())
	}
	held.Close()
	waitFor(t, "the first generation released", e2eWait, func() bool { return live(p) == 1 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live[0].routers[0].names.binder == old {
		t.Fatal("the generation released is the new one")
	}
}

// A reload that fails (a new server on an address another socket holds)
// changes nothing: the generation, the servers, the descriptors.
func TestReloadThatFailsChangesNothing(t *testing.T) {
	a, b := startNamedBackend(t, "A"), startNamedBackend(t, "B")
	cfg := testConfig(a.addr)
	p := startProxy(t, cfg)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	expectRoute(t, p.addr, "A", 1)
	fds, g := socketFDs(t), goroutines()

	bad := withEndpoints(cfg, b.addr)
	srv := bad.Routers[0].Servers[0]
	srv.Listen = netip.MustParseAddrPort(taken.Addr().String())
	bad.Routers[0].Servers = append(bad.Routers[0].Servers, srv)
	bad.Routers[0].BindIdle = time.Hour // so that the failed build made a binder to close
	_, err = p.Reload(bad)
	if !errors.Is(err, server.ErrAddrInUse) || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("Reload = %v, want address in use naming %s", err, taken.Addr())
	}
	if p.Generation() != 1 || p.Config().Routers[0].BindIdle != cfg.Routers[0].BindIdle {
		t.Fatalf("a failed reload changed the configuration: generation %d", p.Generation())
	}
	expectRoute(t, p.addr, "A", 3)
	waitFor(t, "descriptors back", e2eWait, func() bool { return socketFDs(t) <= fds })
	waitFor(t, "goroutines back", e2eWait, func() bool { return goroutines() <= g })
	reload(t, p, withEndpoints(cfg, b.addr))
	if p.Generation() != 2 {
		t.Fatalf("generation %d after a failed reload and a good one, want 2", p.Generation())
	}
	expectRoute(t, p.addr, "B", 2)
}

// Servers a reload drops stop accepting while their connections run on;
// servers it adds start; the count of open connections spans both.
func TestReloadAddsAndRemovesServers(t *testing.T) {
	a := startNamedBackend(t, "A")
	cfg := testConfig(a.addr)
	second := cfg.Routers[0].Servers[0]
	cfg.Routers[0].Servers = append(cfg.Routers[0].Servers, second)
	p := startProxy(t, cfg)
	dropped := p.Routers()[0].Servers()[1].Addr().String()
	held, _ := hold(t, dropped)

	next := cfg.withServersCopied()
	next.Routers[0].Servers[1].Listen = netip.MustParseAddrPort("127.0.0.2:0")
	reload(t, p, next)
	added := p.Routers()[0].Servers()[1].Addr().String()
	if added == dropped {
		t.Fatalf("the new server took the dropped one's address %s", added)
	}
	expectRoute(t, added, "A", 2)
	expectRoute(t, p.addr, "A", 2)
	if c, err := net.DialTimeout("tcp", dropped, time.Second); err == nil {
		c.Close()
		t.Fatalf("a connection to the dropped server %s was accepted", dropped)
	}
	// The connections of expectRoute end as the proxy sees their resets.
	waitFor(t, "only the held connection open", e2eWait, func() bool { return p.Open() == 1 })
	if _, err := held.Write([]byte("?\n")); err != nil {
		t.Fatalf("the held connection on the dropped server broke: %v", err)
	}
	line, err := bufio.NewReader(held).ReadString('\n')
	if err != nil || line != "A\n" {
		t.Fatalf("the held connection answered %q, %v", line, err)
	}
	held.Close()
	waitFor(t, "the dropped server's connection ended", e2eWait, func() bool { return p.Open() == 0 })
	waitFor(t, "the dropped server forgotten", e2eWait, func() bool { return len(p.allServers()) == 2 })
}

// What a running proxy cannot change comes back as notes, and keeps its
// running value.
func TestReloadKeepsTheRuntime(t *testing.T) {
	a := startNamedBackend(t, "A")
	cfg := testConfig(a.addr)
	p := startProxy(t, cfg)
	next := cfg.withServersCopied()
	next.Runtime.Workers, next.Runtime.MaxPipes = 3, 7
	notes, err := p.Reload(next)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"runtime.workers = 3 takes a restart: keeping 2", "runtime.max_pipes = 7 takes a restart: keeping 64"}
	if strings.Join(notes, "|") != strings.Join(want, "|") {
		t.Fatalf("notes %q, want %q", notes, want)
	}
	if rt := p.Config().Runtime; rt != cfg.Runtime {
		t.Fatalf("running runtime %+v, want %+v", rt, cfg.Runtime)
	}
	expectRoute(t, p.addr, "A", 2)
}

// A server whose address a reload keeps keeps its counters when its
// router and destination stay, and the metrics read them across reloads.
func TestReloadKeepsCountersOfARouteUnchanged(t *testing.T) {
	a, b := startNamedBackend(t, "A"), startNamedBackend(t, "B")
	cfg := testConfig(a.addr)
	p := startProxy(t, cfg)
	expectRoute(t, p.addr, "A", 3)
	for i := range 6 {
		reload(t, p, withEndpoints(cfg, []string{a.addr, b.addr}[i%2]))
	}
	expectRoute(t, p.addr, "B", 2)
	waitFor(t, "5 connections ended", e2eWait, func() bool { return p.srv.Stats().Active == 0 })
	st := p.srv.Stats()
	var ended uint64
	for _, n := range st.Ended {
		ended += n
	}
	if st.Accepted != 5 || ended != 5 {
		t.Fatalf("accepted %d and ended %d across reloads, want 5 and 5", st.Accepted, ended)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector("test"))
	p.ReloadFailed()
	waitFor(t, "the old generations released", e2eWait, func() bool { return live(p) == 1 })
	for _, c := range []struct {
		name  string
		value float64
	}{
		{`switchyard_connections_accepted_total{router="test",server="` + p.addr + `",dst="` + testDst + `"}`, 5},
		{`switchyard_reloads_total{result="taken"}`, 6},
		{`switchyard_reloads_total{result="failed"}`, 1},
		{`switchyard_config_generation`, 7},
		{`switchyard_config_generations_live`, 1},
	} {
		if got := sample(t, reg, c.name); got != c.value {
			t.Errorf("%s = %v, want %v", c.name, got, c.value)
		}
	}
}

// socketFDs counts this process's open sockets: the descriptors a reload
// would leak, not the splice pipes the loops pool as traffic needs them.
func socketFDs(t testing.TB) int { return openFDs(t, "socket:") }

func live(p *testProxy) int { return p.liveGenerations() }

// A reload opens the access log again: after logrotate moves the file, the
// connections accepted after the reload are logged in a new file at the
// path, and a connection open across it in the moved one, which is closed
// when that connection, the old generation's last, ends.
func TestReloadOpensTheAccessLogAgain(t *testing.T) {
	a := startNamedBackend(t, "A")
	dir := t.TempDir()
	path, moved := filepath.Join(dir, "access.log"), filepath.Join(dir, "access.log.1")
	cfg := testConfig(a.addr)
	cfg.Log = LogConfig{Access: true, AccessPath: path}
	p := startProxy(t, cfg)
	held, _ := hold(t, p.addr)
	expectRoute(t, p.addr, "A", 1)
	waitFor(t, "the first line written", e2eWait, func() bool { return countLines(t, path) == 1 })
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	reload(t, p, cfg)
	expectRoute(t, p.addr, "A", 2)
	waitFor(t, "two lines in the new file", e2eWait, func() bool { return countLines(t, path) == 2 })
	held.Close()
	waitFor(t, "the held connection's line in the moved file", e2eWait, func() bool { return countLines(t, moved) == 2 })
	waitFor(t, "the old generation released", e2eWait, func() bool { return live(p) == 1 })
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

// A reload that drops a router with two servers and no connection open
// releases its generation at once; neither server may take a connection
// after that, into a generation whose binder and access log are closed.
func TestReloadDroppingARouterStopsAllItsServers(t *testing.T) {
	a := startNamedBackend(t, "A")
	cfg := testConfig(a.addr)
	cfg.Log = LogConfig{Access: true, AccessPath: filepath.Join(t.TempDir(), "access.log")}
	gone := cfg.Routers[0]
	gone.Label = "gone"
	gone.Servers = []ServerConfig{gone.Servers[0], gone.Servers[0]}
	cfg.Routers = append(cfg.Routers, gone)
	p := startProxy(t, cfg)
	var (
		mu      sync.Mutex
		dropped []string // every address the router has listened on
	)
	for _, s := range p.Routers()[1].Servers() {
		dropped = append(dropped, s.Addr().String())
	}
	next := cfg.withServersCopied()
	next.Routers = next.Routers[:1]
	// Clients keep dialling the servers of the router being dropped while
	// it is, so that one may land between the swap and the close.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				addrs := slices.Clone(dropped)
				mu.Unlock()
				for _, addr := range addrs {
					if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
						c.Close()
					}
				}
			}
		}()
	}
	for range 20 {
		reload(t, p, next)
		reload(t, p, cfg)
		mu.Lock()
		for _, s := range p.Routers()[1].Servers() {
			dropped = append(dropped, s.Addr().String())
		}
		mu.Unlock()
	}
	reload(t, p, next)
	close(stop)
	wg.Wait()
	waitFor(t, "the old generations released", e2eWait, func() bool { return live(p) == 1 })
	for _, addr := range dropped {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("a dropped server %s accepted a connection", addr)
		}
	}
	expectRoute(t, p.addr, "A", 2)
}

// Reloads keep the generations before them live while they have
// connections open, up to maxGenerations: past that a reload is refused,
// with a reason, until the oldest is released.
func TestReloadRefusedPastMaxGenerations(t *testing.T) {
	a, b := startNamedBackend(t, "A"), startNamedBackend(t, "B")
	cfg := testConfig(a.addr)
	p := startProxy(t, cfg)
	configs := []*Config{withEndpoints(cfg, b.addr), withEndpoints(cfg, a.addr)}
	var held []*net.TCPConn
	for i := range maxGenerations - 1 {
		c, _ := hold(t, p.addr)
		held = append(held, c)
		reload(t, p, configs[i%2])
	}
	if n := live(p); n != maxGenerations {
		t.Fatalf("%d generations live, want %d", n, maxGenerations)
	}
	hold(t, p.addr) // keeps the running one live too
	if _, err := p.Reload(cfg); err == nil || !strings.Contains(err.Error(), "reload refused") {
		t.Fatalf("Reload past %d live generations = %v, want refused", maxGenerations, err)
	}
	if p.Generation() != maxGenerations {
		t.Fatalf("generation %d after a refused reload, want %d", p.Generation(), maxGenerations)
	}
	held[0].Close()
	waitFor(t, "the oldest generation released", e2eWait, func() bool { return live(p) == maxGenerations-1 })
	reload(t, p, cfg)
}
