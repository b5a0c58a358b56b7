package destination

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

// resolveMany resolves n names /svc/<prefix><i>.test:80 and answers each
// stream with an endpoint of its own; it returns the stop functions.
func resolveMany(t *testing.T, in interpreter.Interpreter, f *fakeDst, prefix string, n int) []func() {
	t.Helper()
	sinks := make(map[string]*kindtest.Recorder, n)
	endpoints := make(map[string]string, n)
	stops := make([]func(), 0, n)
	for i := range n {
		path := fmt.Sprintf("%s%d.test:80", prefix, i)
		sinks[path] = kindtest.NewRecorder(t, 4)
		endpoints[path] = fmt.Sprintf("10.%d.%d.1:80", i/256, i%256)
		stops = append(stops, in.Resolve("/svc/"+path, sinks[path]))
	}
	for range n {
		fs := f.next(t)
		e, ok := endpoints[fs.req.GetPath()]
		if !ok {
			t.Fatalf("stream for unknown path %q", fs.req.GetPath())
		}
		fs.send(t, add(e))
	}
	for path, s := range sinks {
		s.ExpectBound(t, ep(endpoints[path], 1))
	}
	return stops
}

func TestOneConnectionManyNames(t *testing.T) {
	f := startFakeDst(t, nil)
	in := newTestInterp(t, testSettings(f.addr))
	stops := resolveMany(t, in, f, "s", 20)
	if got := f.conns.Load(); got != 1 {
		t.Fatalf("the server accepted %d connections for 20 names, want 1", got)
	}
	for _, stop := range stops {
		stop()
	}
	// A name after they all went uses the same connection.
	resolveMany(t, in, f, "t", 1)
	if got := f.conns.Load(); got != 1 {
		t.Fatalf("the server accepted %d connections, want 1", got)
	}
}

// TestManyNamesNoLeak watches 1,000 names over one connection, stops them
// all, and checks that goroutines and descriptors go back to what one name
// and the connection cost; then that Close and the server's end leave
// nothing behind.
func TestManyNamesNoLeak(t *testing.T) {
	const names = 1000
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	f := startFakeDst(t, nil)
	st := testSettings(f.addr)
	in, err := st.New(interpreter.Env{Router: "test", Log: slog.New(slog.DiscardHandler), Stats: new(interpreter.Stats)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() }) // on failure; else closed below

	// One name keeps the connection up: the baseline.
	resolveMany(t, in, f, "warm", 1)
	g1, fd1 := runtime.NumGoroutine(), openFDs(t)
	var m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m1)

	stops := resolveMany(t, in, f, "s", names)
	if got := f.conns.Load(); got != 1 {
		t.Fatalf("the server accepted %d connections for %d names, want 1", got, names+1)
	}
	g2 := runtime.NumGoroutine()
	var m2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m2)
	t.Logf("per name, client and test server together: %.1f goroutines, %d bytes of heap, %d of stacks",
		float64(g2-g1)/names, (int64(m2.HeapInuse)-int64(m1.HeapInuse))/names, (int64(m2.StackInuse)-int64(m1.StackInuse))/names)

	for _, stop := range stops {
		stop()
	}
	if g := runtime.NumGoroutine(); g > g2 {
		t.Errorf("stopping %d names raised the goroutines from %d to %d", names, g2, g)
	}
	waitFor(t, "goroutines and descriptors back to one name's", func() bool {
		return runtime.NumGoroutine() <= g1 && openFDs(t) <= fd1
	})

	in.Close()
	f.stop()
	waitFor(t, "goroutines and descriptors back to none", func() bool {
		return runtime.NumGoroutine() <= g0 && openFDs(t) <= fd0
	})
}
