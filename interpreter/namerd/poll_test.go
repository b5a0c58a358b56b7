package namerd

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

// pollServer answers every request at once with the current value of its
// name, counting requests per name and flagging watch requests.
type pollServer struct {
	*fakeNamerd
	mu      sync.Mutex
	current map[string]string // name -> answer body; absent: neg
	count   map[string]int
	watched atomic.Bool
}

func startPollServer(t *testing.T) *pollServer {
	s := &pollServer{current: make(map[string]string), count: make(map[string]int)}
	s.fakeNamerd = startFakeNamerd(t, s.respond)
	return s
}

func (s *pollServer) respond(r *http.Request) (int, string) {
	if r.URL.Query().Has("watch") || r.URL.Path != "/api/1/resolve/default" {
		s.watched.Store(true)
	}
	name := r.URL.Query().Get("path")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[name]++
	if body, ok := s.current[name]; ok {
		return http.StatusOK, body + "\n"
	}
	return http.StatusOK, negative + "\n"
}

func (s *pollServer) set(name, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current[name] = body
}

func (s *pollServer) requests(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[name]
}

func TestPollFollowsChanges(t *testing.T) {
	s := startPollServer(t)
	st := testSettings(s.url(), false)
	st.Period = 10 * time.Millisecond
	in := newTestInterp(t, st)
	sink := kindtest.NewRecorder(t, sinkCap)
	s.set("/svc/web", boundOne)
	kindtest.ResolveUntil(context.Background(), in, "/svc/web", sink)
	sink.ExpectBound(t, one)
	s.set("/svc/web", boundTwo)
	sink.ExpectBound(t, one, two)
	s.set("/svc/web", negative)
	sink.ExpectNotFound(t)
	if s.watched.Load() {
		t.Fatal("poll mode sent a watch request, or to the wrong path")
	}
	// Unchanged answers are not delivered again, but do count as good.
	n := s.requests("/svc/web")
	waitFor(t, "more polls", func() bool { return s.requests("/svc/web") >= n+3 })
	in.Close()
	sink.ExpectEmpty(t)
	if in.stats.Updates.Load() != 3 || in.stats.Errors.Load() != 0 || in.stats.Reconnects.Load() != 0 {
		t.Fatalf("updates %d, errors %d, reconnects %d; want 3, 0, 0",
			in.stats.Updates.Load(), in.stats.Errors.Load(), in.stats.Reconnects.Load())
	}
}

func TestPollErrorsRetryWithBackoff(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"503", http.StatusServiceUnavailable, "warming up", `HTTP 503 Service Unavailable: "warming up"`},
		{"404", http.StatusNotFound, "", "HTTP 404 Not Found"},
		{"failed answer", http.StatusOK, `{"type":"failed","cause":"boom"}` + "\n", "resolution failed: boom"},
		{"text", http.StatusOK, "Invalid path: x\n", `server sent text instead of an answer: "Invalid path: x"`},
		{"empty", http.StatusOK, "", "namerd sent an empty response"},
		{"cut", http.StatusOK, boundOne[:30], "stream ended inside an answer"},
		// The transport's header timeout and the request's race.
		{"no answer", 0, "", "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			f := startFakeNamerd(t, func(r *http.Request) (int, string) {
				if n.Add(1) <= 3 {
					return tt.status, tt.body
				}
				return http.StatusOK, boundOne + "\n"
			})
			st := testSettings(f.url(), false)
			if tt.status == 0 {
				st.Timeout = 500 * time.Millisecond
			}
			in := newTestInterp(t, st)
			sink := kindtest.NewRecorder(t, sinkCap)
			kindtest.ResolveUntil(context.Background(), in, "/svc/web", sink)
			for range 3 {
				sink.ExpectFailed(t, "namerd: /svc/web: ", tt.want)
			}
			sink.ExpectBound(t, one)
			if in.stats.Errors.Load() != 3 || in.stats.Reconnects.Load() != 3 {
				t.Fatalf("errors %d, reconnects %d; want 3 and 3", in.stats.Errors.Load(), in.stats.Reconnects.Load())
			}
		})
	}
}

func TestPollServerRestarts(t *testing.T) {
	s := startPollServer(t)
	st := testSettings(s.url(), false)
	st.Period = 10 * time.Millisecond
	in := newTestInterp(t, st)
	sink := kindtest.NewRecorder(t, sinkCap)
	s.set("/svc/web", boundTwo)
	kindtest.ResolveUntil(context.Background(), in, "/svc/web", sink)
	sink.ExpectBound(t, one, two)
	s.stop()
	sink.ExpectFailed(t, "namerd: /svc/web:")
	s.restart()
	for {
		r := sink.Next(t)
		if r.State == interpreter.Failed {
			continue
		}
		if r.State != interpreter.Bound || len(r.Endpoints) != 2 {
			t.Fatalf("after the restart got %v %v, want the two endpoints", r.State, r.Endpoints)
		}
		break
	}
}

func TestPollReusesConnections(t *testing.T) {
	s := startPollServer(t)
	st := testSettings(s.url(), false)
	st.Period = 5 * time.Millisecond
	st.Timeout = wait // a request that times out costs its connection
	in := newTestInterp(t, st)
	const names, polls = 100, 3 // more names than connections
	for i := range names {
		kindtest.ResolveUntil(context.Background(), in, "/svc/s"+strconv.Itoa(i), kindtest.NewRecorder(t, sinkCap))
	}
	waitFor(t, "every name polled several times", func() bool {
		for i := range names {
			if s.requests("/svc/s"+strconv.Itoa(i)) < polls {
				return false
			}
		}
		return true
	})
	if c := s.conns.Load(); c > pollConns {
		t.Fatalf("%d connections for %d names polled %d times each, want at most %d", c, names, polls, pollConns)
	}
}

func TestPollCancelAndClose(t *testing.T) {
	base := runtime.NumGoroutine()
	s := startPollServer(t)
	st := testSettings(s.url(), false)
	st.Period = 5 * time.Millisecond
	in, err := st.New(interpreter.Env{Router: "test", Log: testLogger(), Stats: new(interpreter.Stats)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() }) // on failure; else closed below
	s.set("/svc/a", boundOne)
	s.set("/svc/b", boundTwo)
	ctxA, cancelA := context.WithCancel(context.Background())
	sinkA, sinkB := kindtest.NewRecorder(t, sinkCap), kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(ctxA, in, "/svc/a", sinkA)
	kindtest.ResolveUntil(context.Background(), in, "/svc/b", sinkB)
	sinkA.ExpectBound(t, one)
	sinkB.ExpectBound(t, one, two)

	cancelA()
	stoppedAt := s.requests("/svc/a")
	nb := s.requests("/svc/b")
	waitFor(t, "/svc/b polled 20 more times", func() bool { return s.requests("/svc/b") >= nb+20 })
	if got := s.requests("/svc/a"); got > stoppedAt+1 {
		t.Fatalf("/svc/a polled %d times after its watch was canceled", got-stoppedAt)
	}

	in.Close()
	waitGoroutines(t)
	sinkA.ExpectEmpty(t)
	sinkB.ExpectEmpty(t)
	s.stop()
	waitFor(t, "the goroutine count returns to its baseline", func() bool { return runtime.NumGoroutine() <= base })
}

func TestPollLargeAnswerReusesConnection(t *testing.T) {
	s := startPollServer(t)
	st := testSettings(s.url(), false)
	st.Period = 5 * time.Millisecond
	in := newTestInterp(t, st)
	var b strings.Builder
	b.WriteString(`{"type":"bound","addrs":[`)
	const addrs = 500
	for i := range addrs {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"ip":"10.0.%d.%d","port":80,"meta":{"nodeName":"node-%d"}}`, i/256, i%256, i)
	}
	b.WriteString(`],"meta":{}}`)
	s.set("/svc/big", b.String())
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, "/svc/big", sink)
	if r := sink.Next(t); r.State != interpreter.Bound || len(r.Endpoints) != addrs {
		t.Fatalf("got %v with %d endpoints, want bound with %d", r.State, len(r.Endpoints), addrs)
	}
	waitFor(t, "5 polls", func() bool { return s.requests("/svc/big") >= 5 })
	if c := s.conns.Load(); c != 1 {
		t.Fatalf("%d connections for one name polled sequentially, want 1", c)
	}
}
