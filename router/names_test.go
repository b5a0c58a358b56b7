package router

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/binder"
	"github.com/switchyard-proxy/switchyard/interpreter/file"
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

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Ten thousand names bound on one loop, as connections to them would: they
// resolve off the loop while a stream on it keeps flowing, and once their
// connections are gone and bind_idle has passed, the cache, the watches,
// the goroutines and the memory are back where they started.
func TestTenThousandNamesComeAndGo(t *testing.T) {
	const names = 10000
	b := startBackend(t, echo)
	dir := t.TempDir()
	line := fmt.Sprintf("127.0.0.1 %d\n", netip.MustParseAddrPort(b.addr).Port())
	writeService(t, dir, "test", line)
	for i := 0; i < names; i += 2 { // the odd ones do not exist
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fileConfig(t, dir)
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
	for round := range 2 {
		cached, worst := bindNames(t, p, c, names)
		if worst > time.Second {
			t.Errorf("a round trip on the loop took %v while names resolved", worst)
		}
		released := time.Now()
		waitFor(t, "idle names to be evicted", 30*time.Second, func() bool { return bd.Len() == 1 })
		waitFor(t, "goroutines back to baseline", 10*time.Second, func() bool { return goroutines() <= baseGoroutines })
		// The interpreter drops stopped watches on its own goroutine, a
		// moment after the eviction. What stays is capacity (maps do not
		// shrink), the same after every round: nothing accumulates.
		var after uint64
		waitFor(t, "the heap back near its baseline", 10*time.Second, func() bool {
			after = heapInUse()
			return after <= baseHeap+1536<<10
		})
		t.Logf("round %d: %d names cached, %.0f B of heap each; slowest round trip meanwhile %v; evicted %v after release; %d B of heap kept after",
			round, names, float64(cached-baseHeap)/names, worst, time.Since(released).Round(time.Millisecond), int64(after-baseHeap))
	}
	if got, err := echoLine(c, "ping"); err != nil || got != "ping\n" {
		t.Fatalf("stream after eviction: %q, %v", got, err)
	}
}

// bindNames binds /svc/0 ... on the proxy's only loop, 100 names per task,
// as connections to them would, while c pings through the same loop; once
// every name has its answer it releases them all. It returns the heap in
// use with the names cached, and the slowest round trip of c meanwhile.
func bindNames(t *testing.T, p *testProxy, c net.Conn, names int) (heap uint64, worst time.Duration) {
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
				n, err := bd.Bind(fmt.Sprintf("/svc/%d", i), loop.Now())
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
