package namerd

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

var (
	one = ep("127.0.0.1:8080", 1)
	two = ep("127.0.0.1:8081", 1)
)

// startWatch starts a watch of name and returns the server's request for it.
func startWatch(t *testing.T, name string) (testInterp, *fakeNamerd, *kindtest.Recorder, *fakeRequest) {
	t.Helper()
	f := startFakeNamerd(t, nil)
	in := newTestInterp(t, testSettings(f.url(), true))
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, name, sink)
	fr := f.next(t)
	checkRequest(t, fr.r, "default", name, true)
	return in, f, sink, fr
}

func TestWatchNamerdSequence(t *testing.T) {
	_, _, sink, fr := startWatch(t, "/svc/web")
	fr.send(t, boundOne+"\n")
	sink.ExpectBound(t, one)
	fr.send(t, boundTwo+"\n")
	sink.ExpectBound(t, one, two)
	fr.send(t, negative+"\n")
	sink.ExpectNotFound(t)
}

func TestWatchChunking(t *testing.T) {
	tests := []struct {
		name string
		send func(t *testing.T, fr *fakeRequest)
	}{
		{"byte by byte", func(t *testing.T, fr *fakeRequest) {
			fr.sendBytewise(t, boundOne+"\n"+boundTwo+"\n"+negative+"\n")
		}},
		{"three in one chunk", func(t *testing.T, fr *fakeRequest) {
			fr.send(t, boundOne+"\n"+boundTwo+"\n"+negative+"\n")
		}},
		{"split across objects", func(t *testing.T, fr *fakeRequest) {
			all := boundOne + "\n" + boundTwo + "\n" + negative + "\n"
			fr.send(t, all[:30], all[30:len(boundOne)+40], all[len(boundOne)+40:])
		}},
		{"no newlines", func(t *testing.T, fr *fakeRequest) {
			fr.send(t, boundOne+boundTwo[:7], boundTwo[7:]+negative)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, sink, fr := startWatch(t, "/svc/web")
			tt.send(t, fr)
			sink.ExpectBound(t, one)
			sink.ExpectBound(t, one, two)
			sink.ExpectNotFound(t)
		})
	}
}

func TestWatchWeightsFromMeta(t *testing.T) {
	in, _, sink, fr := startWatch(t, "/svc/web")
	fr.send(t, `{"type":"bound","addrs":[{"ip":"10.0.0.7","port":9000,"meta":{"endpoint_addr_weight":0.5,"nodeName":"n1"}},`+
		`{"ip":"10.0.0.8","port":9000,"meta":{"endpoint_addr_weight":3}},{"ip":"::1","port":9000,"meta":{}}],"meta":{}}`+"\n")
	sink.ExpectBound(t, ep("10.0.0.7:9000", 0.5), ep("10.0.0.8:9000", 3), ep("[::1]:9000", 1))
	if in.stats.Updates.Load() != 1 || in.stats.LastGood.Load() == 0 {
		t.Fatalf("updates %d, last good %d; want 1 and set", in.stats.Updates.Load(), in.stats.LastGood.Load())
	}
}

func TestWatchDropsInvalidAddresses(t *testing.T) {
	in, _, sink, fr := startWatch(t, "/svc/web")
	fr.send(t, `{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080},{"ip":"127.0.0.300","port":1},{"ip":"127.0.0.1","port":8081,"meta":{"endpoint_addr_weight":-2}}]}`+"\n")
	sink.ExpectBound(t, one)
	if got := in.stats.Errors.Load(); got != 2 {
		t.Errorf("errors %d, want 2 (one per dropped address)", got)
	}
	if got := in.logs.Count(slog.LevelWarn, "invalid addresses left out"); got != 1 {
		t.Errorf("%d warnings about dropped addresses, want 1", got)
	}
}

func TestWatchFailedAnswerKeepsStream(t *testing.T) {
	in, f, sink, fr := startWatch(t, "/svc/web")
	fr.send(t, boundOne+"\n")
	sink.ExpectBound(t, one)
	fr.send(t, `{"type":"failed","cause":"no dtab for namespace"}`+"\n")
	sink.ExpectFailed(t, "namerd: /svc/web: resolution failed: no dtab for namespace")
	// The same set again is delivered: the Failed answer came in between.
	fr.send(t, boundOne+"\n")
	sink.ExpectBound(t, one)
	if len(f.reqs) != 0 || in.stats.Reconnects.Load() != 0 {
		t.Fatalf("a failed answer made the watch reconnect (%d requests waiting, %d reconnects)", len(f.reqs), in.stats.Reconnects.Load())
	}
}

func TestWatchPendingAndRepeats(t *testing.T) {
	in, _, sink, fr := startWatch(t, "/svc/web")
	fr.send(t, `{"type":"pending"}`+"\n", boundTwo+"\n")
	sink.ExpectBound(t, one, two)
	// The same set, in another order: not delivered again.
	fr.send(t, `{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8081},{"ip":"127.0.0.1","port":8080}]}`+"\n", negative+"\n")
	sink.ExpectNotFound(t)
	if got := in.stats.Updates.Load(); got != 2 {
		t.Fatalf("updates %d, want 2", got)
	}
}

func TestWatchStreamEnds(t *testing.T) {
	tests := []struct {
		name    string
		bound   bool // a good answer comes first
		respond func(t *testing.T, fr *fakeRequest)
		want    []string
	}{
		{"error text then close", true, func(t *testing.T, fr *fakeRequest) {
			fr.send(t, "Invalid path: /svc//web\n")
			fr.end()
		}, []string{`server sent text instead of an answer: "Invalid path: /svc//web"`}},
		{"error text byte by byte", true, func(t *testing.T, fr *fakeRequest) {
			fr.sendBytewise(t, "Resolution failed\n")
			fr.end()
		}, []string{`server sent text instead of an answer: "Resolution failed"`}},
		{"end", true, func(t *testing.T, fr *fakeRequest) { fr.end() }, []string{"namerd ended the watch stream"}},
		{"end before any answer", false, func(t *testing.T, fr *fakeRequest) { fr.end() }, []string{"namerd ended the watch stream"}},
		{"end inside an answer", true, func(t *testing.T, fr *fakeRequest) {
			fr.send(t, boundTwo[:25])
			fr.end()
		}, []string{"stream ended inside an answer"}},
		{"malformed", true, func(t *testing.T, fr *fakeRequest) {
			fr.send(t, `{"type":"bound","addrs":[}`+"\n")
		}, []string{"malformed answer", `'}' where ']' was due`}},
		{"404", false, func(t *testing.T, fr *fakeRequest) { fr.status(t, 404, "") }, []string{"namerd: /svc/web: HTTP 404 Not Found"}},
		{"400 with text", false, func(t *testing.T, fr *fakeRequest) {
			fr.status(t, 400, "Invalid path: Path must start with /\n")
		}, []string{`HTTP 400 Bad Request: "Invalid path: Path must start with /"`}},
		{"500", false, func(t *testing.T, fr *fakeRequest) { fr.status(t, 500, "boom") }, []string{`HTTP 500 Internal Server Error: "boom"`}},
		{"503 long body", false, func(t *testing.T, fr *fakeRequest) {
			fr.status(t, 503, strings.Repeat("z", 10000))
		}, []string{"HTTP 503 Service Unavailable", "(cut)"}},
		{"redirect", false, func(t *testing.T, fr *fakeRequest) {
			fr.do(t, func(w http.ResponseWriter) {
				w.Header().Set("Location", "http://192.0.2.1/")
				w.WriteHeader(http.StatusFound)
			})
			fr.end()
		}, []string{"HTTP 302 Found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, f, sink, fr := startWatch(t, "/svc/web")
			if tt.bound {
				fr.send(t, boundOne+"\n")
				sink.ExpectBound(t, one)
			}
			tt.respond(t, fr)
			sink.ExpectFailed(t, tt.want...)
			// It reconnects, and the set is delivered, again if it was.
			fr = f.next(t)
			checkRequest(t, fr.r, "default", "/svc/web", true)
			fr.send(t, boundOne+"\n")
			sink.ExpectBound(t, one)
			if in.stats.Reconnects.Load() != 1 || in.stats.Errors.Load() != 1 {
				t.Fatalf("reconnects %d, errors %d; want 1 and 1", in.stats.Reconnects.Load(), in.stats.Errors.Load())
			}
		})
	}
}

func TestWatchFailingLogsOnce(t *testing.T) {
	in, f, sink, fr := startWatch(t, "/svc/web")
	for range 3 {
		fr.status(t, 503, "not ready")
		sink.ExpectFailed(t, "HTTP 503")
		fr = f.next(t)
	}
	fr.send(t, boundOne+"\n")
	sink.ExpectBound(t, one)
	if w, i := in.logs.Count(slog.LevelWarn, "resolution failing"), in.logs.Count(slog.LevelInfo, "resolves again"); w != 1 || i != 1 {
		t.Fatalf("%d warnings and %d recoveries logged, want 1 and 1", w, i)
	}
	if in.stats.Errors.Load() != 3 || in.stats.Reconnects.Load() != 3 {
		t.Fatalf("errors %d, reconnects %d; want 3 and 3", in.stats.Errors.Load(), in.stats.Reconnects.Load())
	}
}

// holdingListener accepts connections and never answers on them.
func holdingListener(t *testing.T) (addr string, accepted chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = make(chan net.Conn, 100)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	return ln.Addr().String(), accepted
}

func waitAccept(t *testing.T, accepted chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		return c
	case <-time.After(wait):
		t.Fatal("no connection within", wait)
		return nil
	}
}

func TestWatchServerNeverAnswers(t *testing.T) {
	addr, accepted := holdingListener(t)
	st := testSettings("http://"+addr, true)
	st.Timeout = 250 * time.Millisecond
	in := newTestInterp(t, st)
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, "/svc/web", sink)
	first := waitAccept(t, accepted)
	defer first.Close()
	// The request's deadline or the transport's header timeout, whichever
	// fires first.
	sink.ExpectFailed(t, "timeout")
	second := waitAccept(t, accepted)
	defer second.Close()
	sink.ExpectFailed(t, "timeout")
	if in.stats.Reconnects.Load() < 1 {
		t.Fatalf("reconnects %d, want at least 1", in.stats.Reconnects.Load())
	}
}

func TestWatchStallInsideAnswer(t *testing.T) {
	f := startFakeNamerd(t, nil)
	st := testSettings(f.url(), true)
	st.Timeout = 250 * time.Millisecond
	in := newTestInterp(t, st)
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, "/svc/web", sink)
	fr := f.next(t)
	fr.send(t, boundOne+"\n", boundTwo[:20])
	sink.ExpectBound(t, one)
	sink.ExpectFailed(t, "receiving an answer took longer than the timeout (250ms)")
	fr.ended(t)
	f.next(t).send(t, boundTwo+"\n")
	sink.ExpectBound(t, one, two)
}

func TestWatchQuietStreamIsNotTimedOut(t *testing.T) {
	f := startFakeNamerd(t, nil)
	st := testSettings(f.url(), true)
	st.Timeout = 250 * time.Millisecond
	in := newTestInterp(t, st)
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, "/svc/web", sink)
	fr := f.next(t)
	fr.send(t, boundOne+"\n")
	sink.ExpectBound(t, one)
	// Several timeouts pass with nothing sent: the stream must stay open.
	time.Sleep(3 * st.Timeout)
	fr.send(t, "\n", boundTwo+"\n")
	sink.ExpectBound(t, one, two)
	if in.stats.Reconnects.Load() != 0 {
		t.Fatalf("a quiet stream was reopened %d times", in.stats.Reconnects.Load())
	}
}

func TestWatchServerRestarts(t *testing.T) {
	in, f, sink, fr := startWatch(t, "/svc/web")
	fr.send(t, boundTwo+"\n")
	sink.ExpectBound(t, one, two)

	f.stop()
	sink.ExpectFailed(t, "namerd: /svc/web:")
	// Retries fail while it is down.
	sink.ExpectFailed(t, "connection refused")

	f.restart()
	fr = f.next(t)
	checkRequest(t, fr.r, "default", "/svc/web", true)
	fr.send(t, boundTwo+"\n")
	for {
		r := sink.Next(t)
		if r.State == interpreter.Failed {
			continue // retries before the restart
		}
		if r.State != interpreter.Bound || len(r.Endpoints) != 2 {
			t.Fatalf("after the restart got %v %v, want the two endpoints", r.State, r.Endpoints)
		}
		break
	}
	if in.logs.Count(slog.LevelWarn, "resolution failing") != 1 || in.logs.Count(slog.LevelInfo, "resolves again") != 1 {
		t.Fatalf("want one warning and one recovery logged")
	}
}

func TestWatchCancel(t *testing.T) {
	f := startFakeNamerd(t, nil)
	in := newTestInterp(t, testSettings(f.url(), true))
	sink := kindtest.NewRecorder(t, sinkCap)
	ctx, cancel := context.WithCancel(context.Background())
	kindtest.ResolveUntil(ctx, in, "/svc/web", sink)
	fr := f.next(t)
	fr.send(t, boundOne+"\n")
	sink.ExpectBound(t, one)

	cancel()
	fr.ended(t)
	waitFor(t, "the watch goroutine ends", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "namerd.(*nameWatch).watchLoop")
	})
	in.Close()
	sink.ExpectEmpty(t)
	if len(f.reqs) != 0 {
		t.Fatalf("a canceled watch sent another request")
	}
}

func TestWatchManyNamesCloseWaits(t *testing.T) {
	base := runtime.NumGoroutine()
	f := startFakeNamerd(t, nil)
	f.headersFirst = true // so that no request waits for its headers while the others are answered
	st := testSettings(f.url(), true)
	st.Timeout = wait
	in, err := st.New(interpreter.Env{Router: "test", Log: testLogger(), Stats: new(interpreter.Stats)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() }) // on failure; else closed below
	const names = 200
	sinks := make(map[string]*kindtest.Recorder)
	for i := range names {
		name := "/svc/s" + strconv.Itoa(i)
		sinks[name] = kindtest.NewRecorder(t, sinkCap)
		kindtest.ResolveUntil(context.Background(), in, name, sinks[name])
	}
	for range names {
		fr := f.next(t)
		fr.send(t, boundOne+"\n")
	}
	for _, s := range sinks {
		s.ExpectBound(t, one)
	}
	in.Close()
	waitGoroutines(t)
	for _, s := range sinks {
		s.ExpectEmpty(t)
	}
	f.stop()
	waitFor(t, "the goroutine count returns to its baseline", func() bool { return runtime.NumGoroutine() <= base })
}

func TestResolveInvalidNameOrClosed(t *testing.T) {
	f := startFakeNamerd(t, nil)
	in := newTestInterp(t, testSettings(f.url(), true))
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, "/svc//web", sink)
	sink.ExpectFailed(t, `namerd: "/svc//web" has an empty segment`)

	in.Close()
	kindtest.ResolveUntil(context.Background(), in, "/svc/web", sink)
	sink.ExpectFailed(t, "namerd: interpreter closed")
	if len(f.reqs) != 0 {
		t.Fatal("a request was sent")
	}
}

func TestBackoffResetsAfterGoodAnswer(t *testing.T) {
	f := startFakeNamerd(t, nil)
	st := testSettings(f.url(), true)
	st.BackoffMin, st.BackoffMax = time.Second, time.Hour
	in := newTestInterp(t, st)
	w := in.newNameWatch("/svc/web", kindtest.NewRecorder(t, sinkCap))
	defer w.release()
	for range 20 {
		w.backoff.Next()
	}
	if err := w.handle(answer{res: interpreter.NotFoundAnswer()}); err != nil {
		t.Fatal(err)
	}
	if d := w.backoff.Next(); d > st.BackoffMin {
		t.Fatalf("backoff after a good answer %s, want at most backoff_min %s", d, st.BackoffMin)
	}
}
