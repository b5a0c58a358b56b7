package namerd

import (
	"log/slog"
	"net"
	"net/http"
	"runtime"
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
const sinkCap = 4096

// fakeNamerd is an HTTP server speaking namerd's resolve API on loopback.
// Without an answer function each request is handed to the test (next),
// which writes the response piece by piece, each piece flushed as one
// chunk; with one, requests are answered at once.
type fakeNamerd struct {
	t      *testing.T
	addr   string
	answer func(r *http.Request) (status int, body string) // nil: requests go to reqs
	// headersFirst: a request handed to the test gets its 200 and headers
	// at once, before the test writes anything.
	headersFirst bool
	reqs         chan *fakeRequest
	conns        atomic.Int64 // connections accepted, over every restart

	mu  sync.Mutex
	srv *http.Server
}

type fakeRequest struct {
	r    *http.Request
	ops  chan func(http.ResponseWriter)
	done chan struct{} // closed when the handler has returned
	once sync.Once
}

func startFakeNamerd(t *testing.T, answer func(*http.Request) (int, string)) *fakeNamerd {
	t.Helper()
	f := &fakeNamerd{t: t, answer: answer, reqs: make(chan *fakeRequest, 1024)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeNamerd) url() string { return "http://" + f.addr }

func (f *fakeNamerd) serve(ln net.Listener) {
	srv := &http.Server{
		Handler: f,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				f.conns.Add(1)
			}
		},
	}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the listener and every connection, as a namerd that dies.
func (f *fakeNamerd) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		f.srv.Close()
		f.srv = nil
	}
}

// restart serves again on the same address.
func (f *fakeNamerd) restart() {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("listening again on %s: %v", f.addr, err)
	}
	f.serve(ln)
}

func (f *fakeNamerd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.answer != nil {
		status, body := f.answer(r)
		if status == 0 {
			<-r.Context().Done() // hold the request until the client gives up
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
		return
	}
	fr := &fakeRequest{r: r, ops: make(chan func(http.ResponseWriter)), done: make(chan struct{})}
	defer close(fr.done)
	if f.headersFirst {
		w.Header().Set("Content-Type", "application/json")
		w.(http.Flusher).Flush()
	}
	select {
	case f.reqs <- fr:
	default:
		http.Error(w, "test server: too many requests", http.StatusServiceUnavailable)
		return
	}
	for {
		select {
		case op, ok := <-fr.ops:
			if !ok {
				return
			}
			op(w)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// next returns the next request the server received.
func (f *fakeNamerd) next(t *testing.T) *fakeRequest {
	t.Helper()
	select {
	case fr := <-f.reqs:
		return fr
	case <-time.After(wait):
		t.Fatalf("no request reached the server within %s", wait)
		return nil
	}
}

func (fr *fakeRequest) do(t *testing.T, op func(http.ResponseWriter)) {
	t.Helper()
	select {
	case fr.ops <- op:
	case <-fr.done:
		t.Fatalf("the request ended before the server could write to it")
	case <-time.After(wait):
		t.Fatalf("the handler took no write within %s", wait)
	}
}

// send writes each piece as one flushed chunk.
func (fr *fakeRequest) send(t *testing.T, pieces ...string) {
	t.Helper()
	for _, p := range pieces {
		fr.do(t, func(w http.ResponseWriter) { w.Write([]byte(p)) })
	}
}

// sendBytewise writes s one byte per chunk.
func (fr *fakeRequest) sendBytewise(t *testing.T, s string) {
	t.Helper()
	for i := range len(s) {
		fr.send(t, s[i:i+1])
	}
}

func (fr *fakeRequest) status(t *testing.T, code int, body string) {
	t.Helper()
	fr.do(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		w.Write([]byte(body))
	})
	fr.end()
}

// end ends the response: the handler returns, the stream closes.
func (fr *fakeRequest) end() { fr.once.Do(func() { close(fr.ops) }) }

// ended waits until the handler has returned: the server saw the request end.
func (fr *fakeRequest) ended(t *testing.T) {
	t.Helper()
	select {
	case <-fr.done:
	case <-time.After(wait):
		t.Fatalf("the server did not see the request end within %s", wait)
	}
}

// checkRequest checks a request for name in namespace ns.
func checkRequest(t *testing.T, r *http.Request, ns, name string, watch bool) {
	t.Helper()
	if r.Method != http.MethodGet || r.URL.Path != "/api/1/resolve/"+ns {
		t.Errorf("request %s %s, want GET /api/1/resolve/%s", r.Method, r.URL.Path, ns)
	}
	q := r.URL.Query()
	if q.Get("path") != name {
		t.Errorf("path=%q, want %q", q.Get("path"), name)
	}
	if got := q.Has("watch"); got != watch || (watch && q.Get("watch") != "true") {
		t.Errorf("watch=%q, want watch %v", q.Get("watch"), watch)
	}
}

// testSettings are fast settings for a server at base.
func testSettings(base string, watch bool) Settings {
	return Settings{
		BaseURL:    base,
		Namespace:  "default",
		Watch:      watch,
		Period:     time.Hour,
		BackoffMin: 5 * time.Millisecond,
		BackoffMax: 20 * time.Millisecond,
		Timeout:    2 * time.Second,
	}
}

type testInterp struct {
	*Interpreter
	stats *interpreter.Stats
	logs  *kindtest.LogRecorder
}

// newTestInterp builds an interpreter closed at the end of the test.
func newTestInterp(t *testing.T, st Settings) testInterp {
	t.Helper()
	ti := testInterp{stats: new(interpreter.Stats), logs: new(kindtest.LogRecorder)}
	in, err := st.New(interpreter.Env{Router: "test", Log: slog.New(ti.logs), Stats: ti.stats})
	if err != nil {
		t.Fatal(err)
	}
	ti.Interpreter = in.(*Interpreter)
	t.Cleanup(func() { ti.Close() })
	return ti
}

// waitGoroutines waits until no goroutine runs one of the interpreter's
// functions, or the transport's connection loops.
func waitGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var found []string
		for _, fn := range []string{"namerd.(*nameWatch).watchLoop", "namerd.(*poller).run", "namerd.(*poller).stop", "net/http.(*persistConn)"} {
			if strings.Contains(stacks, fn) {
				found = append(found, fn)
			}
		}
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines still running %v after Close:\n%s", found, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond, which reads state that has no event to wait on
// (counters), until it holds.
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

func testLogger() *slog.Logger { return slog.New(new(kindtest.LogRecorder)) }
