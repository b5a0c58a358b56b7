package consul

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

func TestTokenBucket(t *testing.T) {
	b := tokenBucket{interval: time.Second, burst: 2}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration // since t0
		want time.Duration
	}{
		{0, 0}, {0, 0}, // the burst
		{0, time.Second},           // then one per interval: at 1s...
		{time.Second, time.Second}, // ...and at 2s
		{4 * time.Second, 0},       // a quiet spell fills the bucket again...
		{4 * time.Second, 0},       // ...up to the burst
		{4 * time.Second, time.Second},
		{time.Minute, 0},
	}
	for i, s := range steps {
		if got := max(0, b.take(t0.Add(s.at))); got != s.want {
			t.Fatalf("step %d (at %s): wait %s, want %s", i, s.at, got, s.want)
		}
	}
}

func TestBlockingWaitShares(t *testing.T) {
	in := newTestInterp(t, testSettings("http://127.0.0.1:1"))
	in.st.Wait = time.Minute
	slots := int64(blockingSlots(defaultMaxConns))
	tests := []struct {
		active   int64
		min, max time.Duration
	}{
		{1, time.Minute - time.Minute/16, time.Minute},
		{slots, time.Minute - time.Minute/16, time.Minute},
		{4 * slots, 15*time.Second - 15*time.Second/16, 15 * time.Second},
		{1000 * slots, time.Second - time.Second/16, time.Second}, // not below minSharedWait
	}
	for _, tt := range tests {
		in.active.Store(tt.active)
		for range 100 {
			if d := in.blockingWait(); d < tt.min || d > tt.max || d%time.Millisecond != 0 {
				t.Fatalf("%d names: wait %s, want whole milliseconds in [%s, %s]", tt.active, d, tt.min, tt.max)
			}
		}
	}
	in.active.Store(0)
	in.st.Wait = time.Nanosecond
	if d := in.blockingWait(); d != time.Millisecond {
		t.Fatalf("wait %s for a 1ns setting, want 1ms: Consul takes 0 for its default", d)
	}
}

func TestNamesShareBlockingSlots(t *testing.T) {
	t.Run("first answers do not wait for a slot", func(t *testing.T) {
		f := startFakeConsul(t)
		f.set("a", instA.json())
		f.set("b", instB.json())
		f.set("c", instA.json(), instB.json())
		st := testSettings(f.url())
		st.Wait = time.Minute
		in := newTestInterp(t, st)
		in.setSlots(2)
		resolve(t, in, "/svc/a").ExpectBound(t, epA)
		resolve(t, in, "/svc/b").ExpectBound(t, epB)
		waitFor(t, "both slots taken by blocking queries", func() bool { return f.inFlight.Load() == 2 })
		start := time.Now()
		resolve(t, in, "/svc/c").ExpectBound(t, epA, epB)
		if d := time.Since(start); d > st.Wait/2 {
			t.Fatalf("the first answer of a third name took %s: it waited for a slot", d)
		}
		if m := f.maxBlocking.Load(); m > 2 {
			t.Fatalf("%d blocking queries at once, want at most 2 slots", m)
		}
	})
	t.Run("names take turns", func(t *testing.T) {
		f := startFakeConsul(t)
		const names, slots = 12, 3
		for i := range names {
			f.set("s"+strconv.Itoa(i), instA.json())
		}
		st := testSettings(f.url())
		st.Wait = time.Second
		in := newTestInterp(t, st)
		in.setSlots(slots)
		in.lim.minSharedWait = 10 * time.Millisecond
		sinks := make([]*kindtest.Recorder, names)
		for i := range names {
			sinks[i] = resolve(t, in, "/svc/s"+strconv.Itoa(i))
			sinks[i].ExpectBound(t, epA)
		}
		// Every name still sees its changes, although only three
		// queries block at a time, each waiting a quarter of the wait.
		for i := range names {
			f.set("s"+strconv.Itoa(i), instB.json())
		}
		for i := range names {
			sinks[i].ExpectBound(t, epB)
		}
		if m := f.maxBlocking.Load(); m > slots {
			t.Fatalf("%d blocking queries at once, want at most %d", m, slots)
		}
		for len(f.reqs) > 0 { // those sent before every name was watched
			<-f.reqs
		}
		for r := f.next(t); ; r = f.next(t) {
			if r.query.Has("wait") {
				if d, _ := time.ParseDuration(r.query.Get("wait")); d > st.Wait*slots/names {
					t.Fatalf("wait=%s with %d names on %d slots, want at most %s", d, names, slots, st.Wait*slots/names)
				}
				break
			}
		}
	})
}

func TestManyNamesStopLeavesNothing(t *testing.T) {
	f := startFakeConsul(t)
	const names = 1000
	for i := range names / 2 { // the other half are unknown: NotFound
		f.set("s"+strconv.Itoa(i), instA.json())
	}
	baseG, baseFD := runtime.NumGoroutine(), openFDs()

	st := testSettings(f.url())
	st.Timeout = wait
	in, err := st.New(interpreter.Env{Router: "test", Log: slog.New(new(kindtest.LogRecorder)), Stats: new(interpreter.Stats)})
	if err != nil {
		t.Fatal(err)
	}
	n := in.(*Interpreter)
	t.Cleanup(func() { n.Close() }) // on failure; else closed below
	conns := n.countConns()
	ctx, stopAll := context.WithCancel(context.Background())
	sinks := make([]*kindtest.Recorder, names)
	for i := range names {
		sinks[i] = kindtest.NewRecorder(t, 4)
		kindtest.ResolveUntil(ctx, n, "/svc/s"+strconv.Itoa(i), sinks[i])
	}
	for i, s := range sinks {
		if i < names/2 {
			s.ExpectBound(t, epA)
		} else {
			s.ExpectNotFound(t)
		}
	}
	waitFor(t, "the blocking slots taken", func() bool { return f.inFlight.Load() == int64(blockingSlots(st.MaxConnections)) })
	if g := watchGoroutines(); g != names {
		t.Fatalf("%d watch goroutines for %d names", g, names)
	}

	if c := conns.max.Load(); c > int64(st.MaxConnections) {
		t.Fatalf("%d connections open at once, want at most %d (%d dialed)", c, st.MaxConnections, conns.dialed.Load())
	}

	stopAll()
	waitFor(t, "every watch goroutine ends after stop", func() bool {
		return watchGoroutines() == 0 && n.active.Load() == 0 && len(n.slots) == 0 && f.inFlight.Load() == 0
	})
	maxConns := int64(st.MaxConnections)
	// What is left is at most the kept-alive connections, both ends. (The
	// server may count a connection the client closed a little longer.)
	waitFor(t, "connections at most those kept alive", func() bool {
		return conns.open.Load() <= maxConns && f.openConns.Load() <= maxConns
	})
	// Each connection has a read and a write loop in the client, and one
	// in the server.
	waitFor(t, "goroutines at most those of the connections kept alive", func() bool { return int64(runtime.NumGoroutine()) <= int64(baseG)+3*maxConns })
	if baseFD >= 0 {
		waitFor(t, "open files at most the connections kept alive", func() bool { return int64(openFDs()) <= int64(baseFD)+2*maxConns })
	}
	n.Close()
	for _, s := range sinks {
		s.ExpectEmpty(t)
	}
	waitFor(t, "the goroutine count back to its baseline", func() bool { return runtime.NumGoroutine() <= baseG })
	if baseFD >= 0 {
		waitFor(t, "the open files back to their baseline", func() bool { return openFDs() <= baseFD })
	}
}
