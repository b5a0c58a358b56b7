package destination

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/destination/destpb"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

const (
	webName = "/svc/web.emojivoto.svc.cluster.local:8080"
	webPath = "web.emojivoto.svc.cluster.local:8080"
)

var (
	a = ep("10.0.0.1:8080", 1)
	b = ep("10.0.0.2:8080", 1)
	c = ep("10.0.0.3:8080", 1)
)

// startWatch starts a watch of webName and returns the server's stream for
// it.
func startWatch(t *testing.T) (testInterp, *fakeDst, *kindtest.Recorder, *fakeStream) {
	t.Helper()
	f := startFakeDst(t, nil)
	in := newTestInterp(t, testSettings(f.addr))
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, webName, sink)
	return in, f, sink, f.nextFor(t, webPath)
}

func TestWatchRequest(t *testing.T) {
	_, _, _, fs := startWatch(t)
	if fs.req.GetScheme() != "k8s" || fs.req.GetContextToken() != `{"ns":"test"}` {
		t.Fatalf("request %v, want scheme k8s and the configured context token", fs.req)
	}
}

// TestWatchUpdates follows the set through the kinds of update, with
// redundant ones in between: each step is delivered once, and an update
// that changes nothing is not delivered.
func TestWatchUpdates(t *testing.T) {
	in, _, sink, fs := startWatch(t)
	fs.send(t, add("10.0.0.1:8080", "10.0.0.2:8080*3"))
	sink.ExpectBound(t, a, ep("10.0.0.2:8080", 3))
	fs.send(t, add("10.0.0.2:8080*3"), add("10.0.0.3:8080"))
	sink.ExpectBound(t, a, ep("10.0.0.2:8080", 3), c)
	fs.send(t, remove("10.0.0.1:8080"))
	sink.ExpectBound(t, ep("10.0.0.2:8080", 3), c)
	fs.send(t, remove("10.0.0.1:8080"), add("10.0.0.2:8080"))
	sink.ExpectBound(t, b, c)
	// Removing the last endpoint: an empty set, and no_endpoints{exists:
	// true} is the same answer.
	fs.send(t, remove("10.0.0.2:8080", "10.0.0.3:8080"))
	sink.ExpectBound(t)
	fs.send(t, noEndpoints(true), noEndpoints(false))
	sink.ExpectNotFound(t)
	// A remove changes nothing of a service that does not exist; an add,
	// even an empty one, says it exists.
	fs.send(t, remove("10.0.0.1:8080"), noEndpoints(false), add())
	sink.ExpectBound(t)
	fs.send(t, add("10.0.0.1:8080"))
	sink.ExpectBound(t, a)
	fs.send(t, noEndpoints(true))
	sink.ExpectBound(t)
	// no_endpoints then add is not the add alone: the first cleared the set.
	fs.send(t, add("10.0.0.1:8080", "10.0.0.2:8080"), noEndpoints(true), add("10.0.0.3:8080"))
	sink.ExpectBound(t, a, b)
	sink.ExpectBound(t)
	sink.ExpectBound(t, c)
	// An update of a kind this client does not know changes nothing.
	fs.send(t, &destpb.Update{}, add("10.0.0.1:8080"))
	sink.ExpectBound(t, a, c)

	if got := in.stats.Updates.Load(); got != 13 {
		t.Errorf("updates %d, want 13", got)
	}
	if in.stats.Errors.Load() != 0 || in.stats.Reconnects.Load() != 0 || in.stats.LastGood.Load() == 0 {
		t.Errorf("errors %d, reconnects %d, last good %d; want 0, 0 and set",
			in.stats.Errors.Load(), in.stats.Reconnects.Load(), in.stats.LastGood.Load())
	}
}

func TestWatchWeights(t *testing.T) {
	_, _, sink, fs := startWatch(t)
	fs.send(t, add("10.0.0.1:8080*0", "10.0.0.2:8080*10000", "10.0.0.3:8080*1"))
	sink.ExpectBound(t, a, ep("10.0.0.2:8080", 10000), c)
	// A redundant add with another weight changes the weight.
	fs.send(t, add("10.0.0.2:8080*5"))
	sink.ExpectBound(t, a, ep("10.0.0.2:8080", 5), c)
	fs.send(t, add("10.0.0.2:8080*0"))
	sink.ExpectBound(t, a, b, c)
}

func TestWatchIPv6(t *testing.T) {
	_, _, sink, fs := startWatch(t)
	fs.send(t, add("[2001:db8::1]:443", "[::ffff:10.0.0.1]:8080"))
	// The IPv4-mapped address is the IPv4 one, and sorts first.
	sink.ExpectBound(t, a, ep("[2001:db8::1]:443", 1))
	fs.send(t, remove("10.0.0.1:8080"))
	sink.ExpectBound(t, ep("[2001:db8::1]:443", 1))
}

func TestWatchDropsInvalidAddresses(t *testing.T) {
	in, _, sink, fs := startWatch(t)
	fs.send(t, addWire(
		tcp("10.0.0.1:8080"),
		&destpb.TcpAddress{Ip: tcp("10.0.0.2:1").Ip, Port: 0},
		&destpb.TcpAddress{Ip: tcp("10.0.0.2:1").Ip, Port: 70000},
		&destpb.TcpAddress{Port: 80},
		nil,
		tcp("0.0.0.0:80"),
		tcp("[ff02::1]:80"),
	))
	sink.ExpectBound(t, a)
	if got := in.stats.Errors.Load(); got != 6 {
		t.Errorf("errors %d, want 6 (one per dropped address)", got)
	}
	if got := in.logs.Count(slog.LevelWarn, "invalid addresses left out"); got != 1 {
		t.Errorf("%d warnings about dropped addresses, want 1", got)
	}
	fs.send(t, &destpb.Update{Update: &destpb.Update_Remove{Remove: &destpb.AddrSet{Addrs: []*destpb.TcpAddress{{Port: 8080}, tcp("10.0.0.1:8080")}}}})
	sink.ExpectBound(t)
	if got := in.stats.Errors.Load(); got != 7 {
		t.Errorf("errors %d, want 7", got)
	}
}

// TestWatchReconnectKeepsStaleSet: after a stream ends, the set stays as
// it was (the Failed answer keeps the balancer's last good set) until,
// and only until, the first update of the next stream, which applies to
// an empty set.
func TestWatchReconnectKeepsStaleSet(t *testing.T) {
	z := ep("10.0.0.9:8080", 1)
	tests := []struct {
		name  string
		end   error // how the first stream ends
		want  string
		first *destpb.Update // the next stream's first update
		check func(t *testing.T, sink *kindtest.Recorder)
		then  []interpreter.Endpoint // after an add of z
	}{
		{"add replaces", nil, "the Destination service ended the stream", add("10.0.0.3:8080"),
			func(t *testing.T, sink *kindtest.Recorder) { sink.ExpectBound(t, c) }, []interpreter.Endpoint{c, z}},
		{"the same add", status.Error(codes.Unavailable, "draining"), "draining (gRPC status Unavailable)", add("10.0.0.1:8080", "10.0.0.2:8080"),
			func(t *testing.T, sink *kindtest.Recorder) { sink.ExpectBound(t, a, b) }, []interpreter.Endpoint{a, b, z}},
		{"remove replaces", status.Error(codes.Internal, "boom"), "boom (gRPC status Internal)", remove("10.0.0.1:8080"),
			func(t *testing.T, sink *kindtest.Recorder) { sink.ExpectBound(t) }, []interpreter.Endpoint{z}},
		{"not found", nil, "the Destination service ended the stream", noEndpoints(false),
			func(t *testing.T, sink *kindtest.Recorder) { sink.ExpectNotFound(t) }, []interpreter.Endpoint{z}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, f, sink, fs := startWatch(t)
			fs.send(t, add("10.0.0.1:8080", "10.0.0.2:8080"))
			sink.ExpectBound(t, a, b)
			fs.end(t, tt.end)
			sink.ExpectFailed(t, "destination: "+webName+": "+tt.want)
			next := f.nextFor(t, webPath)
			// The new stream is open and has said nothing: nothing
			// replaced the set.
			sink.ExpectEmpty(t)
			next.send(t, tt.first)
			tt.check(t, sink)
			next.send(t, add("10.0.0.9:8080"))
			sink.ExpectBound(t, tt.then...)
			if in.stats.Reconnects.Load() != 1 || in.stats.Errors.Load() != 1 {
				t.Fatalf("reconnects %d, errors %d; want 1 and 1", in.stats.Reconnects.Load(), in.stats.Errors.Load())
			}
		})
	}
}

func TestWatchRefusedThenBack(t *testing.T) {
	in, f, sink, fs := startWatch(t)
	fs.send(t, add("10.0.0.1:8080"))
	sink.ExpectBound(t, a)
	refusals := make(chan string, 100)
	f.setRefuse(func(path string) error {
		refusals <- path
		if len(refusals) > 3 {
			return nil
		}
		return status.Error(codes.Unavailable, "not ready")
	})
	fs.end(t, status.Error(codes.Unavailable, "shutting down"))
	sink.ExpectFailed(t, "shutting down")
	for range 3 {
		sink.ExpectFailed(t, "destination: "+webName+": not ready (gRPC status Unavailable)")
	}
	fs = f.nextFor(t, webPath)
	fs.send(t, add("10.0.0.1:8080"))
	sink.ExpectBound(t, a)
	if in.stats.Errors.Load() != 4 || in.stats.Reconnects.Load() != 4 {
		t.Fatalf("errors %d, reconnects %d; want 4 and 4", in.stats.Errors.Load(), in.stats.Reconnects.Load())
	}
	if w, i := in.logs.Count(slog.LevelWarn, "resolution failing"), in.logs.Count(slog.LevelInfo, "resolves again"); w != 1 || i != 1 {
		t.Fatalf("%d warnings and %d recoveries logged, want 1 and 1", w, i)
	}
	if got := f.conns.Load(); got != 1 {
		t.Fatalf("%d connections, want 1: refused streams do not cost a connection", got)
	}
}

func TestWatchNotFoundFirst(t *testing.T) {
	_, _, sink, fs := startWatch(t)
	fs.send(t, noEndpoints(false))
	sink.ExpectNotFound(t)
	fs.send(t, noEndpoints(true))
	sink.ExpectBound(t)
}

func TestWatchServerRestarts(t *testing.T) {
	in, f, sink, fs := startWatch(t)
	fs.send(t, add("10.0.0.1:8080", "10.0.0.2:8080"))
	sink.ExpectBound(t, a, b)

	f.stop()
	sink.ExpectFailed(t, "destination: "+webName+":", "Unavailable")
	// Retries fail while it is down.
	sink.ExpectFailed(t, "connection refused")

	f.restart()
	fs = f.nextFor(t, webPath)
	fs.send(t, add("10.0.0.2:8080"))
	for {
		r := sink.Next(t)
		if r.State == interpreter.Failed {
			continue // retries before the restart
		}
		if r.State != interpreter.Bound || len(r.Endpoints) != 1 || r.Endpoints[0] != b {
			t.Fatalf("after the restart got %v %v, want only %v", r.State, r.Endpoints, b)
		}
		break
	}
	if in.logs.Count(slog.LevelWarn, "resolution failing") != 1 || in.logs.Count(slog.LevelInfo, "resolves again") != 1 {
		t.Fatalf("want one warning and one recovery logged")
	}
	if got := f.conns.Load(); got != 2 {
		t.Fatalf("%d connections over the restart, want 2", got)
	}
}

func TestWatchWrongService(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer() // no Destination service
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	in := newTestInterp(t, testSettings(ln.Addr().String()))
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, webName, sink)
	sink.ExpectFailed(t, "unknown service io.linkerd.proxy.destination.Destination (gRPC status Unimplemented)")
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
	st := testSettings(addr)
	st.Timeout = 250 * time.Millisecond
	in := newTestInterp(t, st)
	sink := kindtest.NewRecorder(t, sinkCap)
	start := time.Now()
	kindtest.ResolveUntil(context.Background(), in, webName, sink)
	first := waitAccept(t, accepted)
	defer first.Close()
	sink.ExpectFailed(t, "no connection within the timeout (250ms)", "Unavailable")
	if d := time.Since(start); d > 10*st.Timeout {
		t.Errorf("the first failure took %s, with a timeout of %s", d, st.Timeout)
	}
	second := waitAccept(t, accepted)
	defer second.Close()
	if in.stats.Errors.Load() < 1 {
		t.Fatalf("errors %d, want at least 1", in.stats.Errors.Load())
	}
}

func TestWatchQuietStreamIsNotTimedOut(t *testing.T) {
	f := startFakeDst(t, nil)
	st := testSettings(f.addr)
	st.Timeout = 250 * time.Millisecond
	in := newTestInterp(t, st)
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, webName, sink)
	fs := f.nextFor(t, webPath)
	// Several timeouts pass with nothing sent, before the first update and
	// after it: the stream must stay open.
	time.Sleep(3 * st.Timeout)
	fs.send(t, add("10.0.0.1:8080"))
	sink.ExpectBound(t, a)
	time.Sleep(3 * st.Timeout)
	fs.send(t, add("10.0.0.2:8080"))
	sink.ExpectBound(t, a, b)
	if in.stats.Reconnects.Load() != 0 || in.stats.Errors.Load() != 0 {
		t.Fatalf("a quiet stream was reopened %d times (%d errors)", in.stats.Reconnects.Load(), in.stats.Errors.Load())
	}
}

func TestWatchStop(t *testing.T) {
	f := startFakeDst(t, nil)
	in := newTestInterp(t, testSettings(f.addr))
	sink := kindtest.NewRecorder(t, sinkCap)
	stop := in.Resolve(webName, sink)
	fs := f.nextFor(t, webPath)
	fs.send(t, add("10.0.0.1:8080"))
	sink.ExpectBound(t, a)

	stop()
	stop() // idempotent
	fs.ended(t)
	waitFor(t, "the watch goroutine ends", func() bool {
		return !strings.Contains(stacks(), "destination.(*nameWatch).watchLoop")
	})
	sink.ExpectEmpty(t)
	if len(f.streams) != 0 || in.stats.Errors.Load() != 0 || in.stats.Reconnects.Load() != 0 {
		t.Fatalf("a stopped watch opened another stream (%d waiting), errors %d, reconnects %d",
			len(f.streams), in.stats.Errors.Load(), in.stats.Reconnects.Load())
	}
	in.Close()
	sink.ExpectEmpty(t)
}

func TestCloseStopsEverything(t *testing.T) {
	f := startFakeDst(t, nil)
	in := newTestInterp(t, testSettings(f.addr))
	sinks := make([]*kindtest.Recorder, 5)
	var streams []*fakeStream
	for i := range sinks {
		sinks[i] = kindtest.NewRecorder(t, sinkCap)
		in.Resolve("/svc/s"+strconv.Itoa(i)+":80", sinks[i])
		streams = append(streams, f.next(t))
	}
	in.Close()
	if strings.Contains(stacks(), "destination.(*nameWatch).watchLoop") {
		t.Fatal("a watch goroutine outlived Close")
	}
	for _, fs := range streams {
		fs.ended(t)
	}
	for _, s := range sinks {
		s.ExpectEmpty(t)
	}
	if err := in.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestResolveInvalidNameOrClosed(t *testing.T) {
	f := startFakeDst(t, nil)
	in := newTestInterp(t, testSettings(f.addr))
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, "/svc/web", sink)
	sink.ExpectFailed(t, `destination: "/svc/web": "web" has no port`)
	if in.stats.Errors.Load() != 1 {
		t.Fatalf("errors %d, want 1", in.stats.Errors.Load())
	}

	in.Close()
	kindtest.ResolveUntil(context.Background(), in, webName, sink)
	sink.ExpectFailed(t, "destination: interpreter closed")
	if len(f.streams) != 0 || f.conns.Load() != 0 {
		t.Fatal("a stream was opened")
	}
}

func TestBackoffResetsAfterGoodUpdate(t *testing.T) {
	f := startFakeDst(t, nil)
	st := testSettings(f.addr)
	st.BackoffMin, st.BackoffMax = time.Second, time.Hour
	in := newTestInterp(t, st)
	w := in.newNameWatch(webName, webPath, kindtest.NewRecorder(t, sinkCap))
	defer w.release()
	for range 20 {
		w.backoff.Next()
	}
	w.handle(noEndpoints(false))
	if d := w.backoff.Next(); d > st.BackoffMin {
		t.Fatalf("backoff after a good update %s, want at most backoff_min %s", d, st.BackoffMin)
	}
}
