package router

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/switchyard-proxy/switchyard/binder"
	"github.com/switchyard-proxy/switchyard/interpreter/dns"
	"github.com/switchyard-proxy/switchyard/interpreter/file"
	"github.com/switchyard-proxy/switchyard/interpreter/namerd"
	"github.com/switchyard-proxy/switchyard/netpoll"
)

// fileConfig is testConfig with a file interpreter reading dir.
func fileConfig(t *testing.T, dir string) *Config {
	t.Helper()
	cfg := testConfig()
	cfg.Routers[0].Interpreter = InterpreterConfig{Kind: "file", Settings: &file.Settings{Dir: dir, Prefix: "/svc"}}
	return cfg
}

func writeService(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// heapInUse returns the bytes of heap and goroutine stacks in use, after
// a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// namesSetup makes, for one interpreter kind, a configuration whose server
// reaches backend, and the n-th of many other names that resolve to it.
type namesSetup func(t *testing.T, backend string, names int) (*Config, func(i int) string)

// Ten thousand names bound on one loop, as connections to them would: they
// resolve off the loop while a stream on it keeps flowing, and once their
// connections are gone and bind_idle has passed, the cache, the watches,
// the goroutines and the memory are back where they started. Twice, so
// that what stays is seen not to grow.
func TestTenThousandNamesComeAndGo(t *testing.T) {
	for _, tt := range []struct {
		kind  string
		setup namesSetup
		// goroutines that may stay: kept-alive connections to the
		// resolver (namerd's client keeps up to 32, each with a reader
		// and a writer, and the test's server one per connection).
		slack int
		// heap that may stay: capacity (maps do not shrink, idle
		// connections keep their buffers). namerd's poll timers, stopped,
		// stay in the runtime's timer heaps, with what they reference,
		// until the next timer work there clears them (Go deletes
		// stopped timers lazily): the second round's replace the first's.
		keep  uint64
		names int
	}{
		{"file", fileNames, 0, 3 << 20, 10000},
		{"dns", dnsNames, 0, 3 << 20, 10000},
		{"namerd-poll", namerdPollNames, 3 * 32, 8 << 20, 3000},
		// namerd polls share 32 connections: 3,000 names keep the test
		// short on two CPUs. A watch stream is a connection a name, two
		// descriptors in this process with the test's namerd: 2,000 fit
		// the open-files limit.
		{"namerd-watch", namerdWatchNames, 0, 8 << 20, 2000},
		// One gRPC connection carries every name's Get stream.
		{"destination", destinationNames, 0, 8 << 20, 1000},
		// A blocking query a name, on at most max_connections (64)
		// kept-alive connections: a reader and a writer each, and the
		// test's server one per connection.
		{"consul", consulNames, 3 * 64, 8 << 20, 1000},
	} {
		t.Run(tt.kind, func(t *testing.T) { manyNames(t, tt.setup, tt.slack, tt.keep, tt.names) })
	}
}

// fileNames: a directory with a file for every other name (the odd ones do
// not exist).
func fileNames(t *testing.T, backend string, names int) (*Config, func(int) string) {
	dir := t.TempDir()
	line := fmt.Sprintf("127.0.0.1 %d\n", netip.MustParseAddrPort(backend).Port())
	writeService(t, dir, "test", line)
	for i := 0; i < names; i += 2 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fileConfig(t, dir), func(i int) string { return fmt.Sprintf("/svc/%d", i) }
}

// dnsNames: a DNS server answering every name under test. with an A record
// of 127.0.0.1, for a minute.
func dnsNames(t *testing.T, backend string, names int) (*Config, func(int) string) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg).SetReply(req)
		if q := req.Question; len(q) == 1 && q[0].Qtype == mdns.TypeA {
			m.Answer = append(m.Answer, &mdns.A{
				Hdr: mdns.RR_Header{Name: q[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	port := netip.MustParseAddrPort(backend).Port()
	cfg := discoveryConfig("dns", &dns.Settings{
		Server: pc.LocalAddr().String(), Timeout: 5 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second, TTLMin: time.Second, TTLMax: time.Hour,
	})
	cfg.Routers[0].Servers[0].Dst = fmt.Sprintf("/dns/stream.test/%d", port)
	return cfg, func(i int) string { return fmt.Sprintf("/dns/n%d.test/%d", i, port) }
}

// namerdPollNames: a namerd binding every name to backend, polled hourly
// (watch streams would take two descriptors a name, in this process).
func namerdPollNames(t *testing.T, backend string, names int) (*Config, func(int) string) {
	srv := startBackendHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, namerdBound(backend)+"\n")
	})
	cfg := discoveryConfig("namerd", &namerd.Settings{
		BaseURL: "http://" + srv, Namespace: "default", Watch: false, Period: time.Hour,
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second, Timeout: 10 * time.Second,
	})
	return cfg, func(i int) string { return fmt.Sprintf("/svc/%d", i) }
}

// namerdWatchNames: a namerd binding every name to backend, on one watch
// stream a name, held open.
func namerdWatchNames(t *testing.T, backend string, names int) (*Config, func(int) string) {
	srv := startBackendHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, namerdBound(backend)+"\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	cfg := discoveryConfig("namerd", &namerd.Settings{
		BaseURL: "http://" + srv, Namespace: "default", Watch: true, Period: time.Hour,
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second, Timeout: 10 * time.Second,
	})
	return cfg, func(i int) string { return fmt.Sprintf("/svc/%d", i) }
}

// destinationNames: a Destination service answering every authority with
// backend, each Get stream held open.
func destinationNames(t *testing.T, backend string, names int) (*Config, func(int) string) {
	f := startDstFixture(t, backend)
	f.any = true
	return f.config(), func(i int) string { return fmt.Sprintf("/svc/n%d.test.svc.cluster.local:80", i) }
}

// consulNames: a Consul agent whose every service has backend as its one
// passing instance, blocking queries held until their wait.
func consulNames(t *testing.T, backend string, names int) (*Config, func(int) string) {
	f := startConsulFixture(t, backend)
	f.any = true
	return f.config(), func(i int) string { return fmt.Sprintf("/svc/n%d", i) }
}

// startBackendHTTP serves h on 127.0.0.1 until the test ends.
func startBackendHTTP(t *testing.T, h http.HandlerFunc) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func manyNames(t *testing.T, setup namesSetup, slack int, keep uint64, names int) {
	b := startBackend(t, echo)
	cfg, nameOf := setup(t, b.addr, names)
	cfg.Runtime.Workers = 1
	cfg.Routers[0].BindIdle = 300 * time.Millisecond
	cfg.Routers[0].MaxNames = 2 * names
	p := startProxy(t, cfg)
	bd := p.Routers()[0].Binder()

	c := dial(t, p.addr)
	if got, err := echoLine(c, "ping"); err != nil || got != "ping\n" {
		t.Fatalf("stream: %q, %v", got, err)
	}
	baseGoroutines, baseHeap := goroutines(), heapInUse()
	var kept []uint64
	var cachedMax uint64
	for round := range 2 {
		cached, worst := bindNames(t, p, c, names, nameOf)
		cachedMax = max(cachedMax, cached-baseHeap)
		// The client shares the test's two CPUs with ten thousand
		// resolutions: a round trip may wait for a CPU, not for the loop.
		if worst > 3*time.Second {
			t.Errorf("a round trip on the loop took %v while names resolved", worst)
		}
		released := time.Now()
		waitFor(t, "idle names to be evicted", 30*time.Second, func() bool { return bd.Len() == 1 })
		waitFor(t, "goroutines back to baseline", 10*time.Second, func() bool { return goroutines() <= baseGoroutines+slack })
		// The interpreter drops stopped watches on its own goroutine, a
		// moment after the eviction: poll for the heap to come down.
		var after uint64
		deadline := time.Now().Add(10 * time.Second)
		for after = heapInUse(); after > baseHeap+keep; after = heapInUse() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: heap %d B above its baseline 10s after eviction, want at most %d", round, after-baseHeap, keep)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Under the bound it may still be coming down: what is kept is
		// what stays, the least of the next samples.
		for range 10 {
			time.Sleep(10 * time.Millisecond)
			after = min(after, heapInUse())
		}
		kept = append(kept, after)
		t.Logf("round %d: %d names cached, %.0f B of heap and stacks each; slowest round trip meanwhile %v; evicted %v after release; %d B of heap kept after",
			round, names, float64(cached-baseHeap)/float64(names), worst, time.Since(released).Round(time.Millisecond), int64(after)-int64(baseHeap))
	}
	// What stays is capacity, reused: it does not grow with each round.
	// A leak of the names would be a round's worth (2 KB a name and more):
	// the tolerance is what may be kept, or a hundredth of a round, which
	// a leak of 300 B a name passes (10,000 names). Half of what may be
	// kept flaked: the dns kind once kept 1.7 MB more in its second round
	// than in its first (0.67 MB), within keep, in a clean CI run.
	if kept[1] > kept[0]+max(keep, cachedMax/100) {
		t.Errorf("heap kept after eviction grew from %d B to %d B between rounds",
			int64(kept[0]-baseHeap), int64(kept[1]-baseHeap))
	}
	if got, err := echoLine(c, "ping"); err != nil || got != "ping\n" {
		t.Fatalf("stream after eviction: %q, %v", got, err)
	}
}

// bindNames binds nameOf(0) ... on the proxy's only loop, 100 names per task,
// as connections to them would, while c pings through the same loop; once
// every name has its answer it releases them all. It returns the heap in
// use with the names cached, and the slowest round trip of c meanwhile.
func bindNames(t *testing.T, p *testProxy, c net.Conn, names int, nameOf func(int) string) (heap uint64, worst time.Duration) {
	bd := p.Routers()[0].Binder()
	loop := p.workers[0].loop
	stop := make(chan struct{})
	pinged := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				pinged <- nil
				return
			default:
			}
			start := time.Now()
			if got, err := echoLine(c, "ping"); err != nil || got != "ping\n" {
				pinged <- fmt.Errorf("stream during resolution: %q, %v", got, err)
				return
			}
			worst = max(worst, time.Since(start))
		}
	}()

	bound := make(chan []*binder.Name, names/100)
	for batch := 0; batch < names; batch += 100 {
		err := loop.Post(func() {
			var got []*binder.Name
			for i := batch; i < batch+100; i++ {
				n, err := bd.Bind(nameOf(i), loop.Now())
				if err != nil {
					t.Errorf("bind: %v", err)
					continue
				}
				got = append(got, n)
			}
			bound <- got
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var all []*binder.Name
	for range names / 100 {
		all = append(all, <-bound...)
	}
	waitFor(t, "every name to resolve", 60*time.Second, func() bool {
		for _, n := range all {
			if !n.Balancer().Resolved() {
				return false
			}
		}
		return true
	})
	close(stop)
	if err := <-pinged; err != nil {
		t.Fatal(err)
	}
	heap = heapInUse()
	release := func(ns []*binder.Name) func() {
		return func() {
			for _, n := range ns {
				n.Release(netpoll.Monotonic())
			}
		}
	}(all)
	all = nil
	if err := loop.Post(release); err != nil {
		t.Fatal(err)
	}
	return heap, worst
}
