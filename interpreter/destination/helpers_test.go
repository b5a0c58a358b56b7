package destination

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/destination/destpb"
)

// wait bounds every wait for an event in these tests.
const wait = 10 * time.Second

// fakeDst is a Destination service on loopback, built from the same
// generated code. Each Get is handed to the test (next), which scripts the
// stream's updates and end; refuse, when set, answers a Get at once with
// an error instead.
type fakeDst struct {
	destpb.UnimplementedDestinationServer
	t       *testing.T
	addr    string
	opts    []grpc.ServerOption
	streams chan *fakeStream
	conns   atomic.Int64 // connections accepted, over every restart

	mu     sync.Mutex
	srv    *grpc.Server
	refuse func(path string) error
}

type fakeStream struct {
	req  *destpb.GetDestination
	ops  chan streamOp
	done chan struct{} // closed when the handler has returned
}

// A streamOp sends u, or ends the stream with err (nil: status OK).
type streamOp struct {
	u   *destpb.Update
	end bool
	err error
}

func startFakeDst(t *testing.T, creds credentials.TransportCredentials) *fakeDst {
	t.Helper()
	f := &fakeDst{t: t, streams: make(chan *fakeStream, 2048)}
	if creds != nil {
		f.opts = append(f.opts, grpc.Creds(creds))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeDst) serve(ln net.Listener) {
	srv := grpc.NewServer(f.opts...)
	destpb.RegisterDestinationServer(srv, f)
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(countingListener{ln, &f.conns})
}

// stop closes the listener and every connection, as a server that dies.
func (f *fakeDst) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// restart serves again on the same address.
func (f *fakeDst) restart() {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("listening again on %s: %v", f.addr, err)
	}
	f.serve(ln)
}

func (f *fakeDst) setRefuse(refuse func(path string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuse = refuse
}

func (f *fakeDst) Get(req *destpb.GetDestination, s grpc.ServerStreamingServer[destpb.Update]) error {
	f.mu.Lock()
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != nil {
		if err := refuse(req.GetPath()); err != nil {
			return err
		}
	}
	fs := &fakeStream{req: req, ops: make(chan streamOp), done: make(chan struct{})}
	defer close(fs.done)
	select {
	case f.streams <- fs:
	default:
		return status.Error(codes.ResourceExhausted, "test server: too many streams")
	}
	for {
		select {
		case op := <-fs.ops:
			if op.end {
				return op.err
			}
			if err := s.Send(op.u); err != nil {
				return err
			}
		case <-s.Context().Done():
			return s.Context().Err()
		}
	}
}

// next returns the next stream the server received.
func (f *fakeDst) next(t *testing.T) *fakeStream {
	t.Helper()
	select {
	case fs := <-f.streams:
		return fs
	case <-time.After(wait):
		t.Fatalf("no stream reached the server within %s", wait)
		return nil
	}
}

// nextFor returns the next stream, checking that it asks for path.
func (f *fakeDst) nextFor(t *testing.T, path string) *fakeStream {
	t.Helper()
	fs := f.next(t)
	if got := fs.req.GetPath(); got != path {
		t.Fatalf("stream for path %q, want %q", got, path)
	}
	return fs
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func (fs *fakeStream) do(t *testing.T, op streamOp) {
	t.Helper()
	select {
	case fs.ops <- op:
	case <-fs.done:
		t.Fatalf("the stream ended before the server could write to it")
	case <-time.After(wait):
		t.Fatalf("the handler took no operation within %s", wait)
	}
}

// send sends each update in turn.
func (fs *fakeStream) send(t *testing.T, us ...*destpb.Update) {
	t.Helper()
	for _, u := range us {
		fs.do(t, streamOp{u: u})
	}
}

// end ends the stream with err, nil for status OK.
func (fs *fakeStream) end(t *testing.T, err error) {
	t.Helper()
	fs.do(t, streamOp{end: true, err: err})
}

// ended waits until the handler has returned: the server saw the stream end.
func (fs *fakeStream) ended(t *testing.T) {
	t.Helper()
	select {
	case <-fs.done:
	case <-time.After(wait):
		t.Fatalf("the server did not see the stream end within %s", wait)
	}
}

// toWire is the wire form of ap, IPv4 as ipv4.
func toWire(ap netip.AddrPort) *destpb.TcpAddress {
	ip := &destpb.IPAddress{}
	if a := ap.Addr(); a.Is4() {
		b := a.As4()
		ip.Ip = &destpb.IPAddress_Ipv4{Ipv4: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])}
	} else {
		b := a.As16()
		ip.Ip = &destpb.IPAddress_Ipv6{Ipv6: &destpb.IPv6{First: getUint64(b[:8]), Last: getUint64(b[8:])}}
	}
	return &destpb.TcpAddress{Ip: ip, Port: uint32(ap.Port())}
}

func getUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// tcp is the wire form of "IP:port".
func tcp(s string) *destpb.TcpAddress { return toWire(netip.MustParseAddrPort(s)) }

// add is an add of "IP:port" or "IP:port*weight" (weight 0 when not given).
func add(addrs ...string) *destpb.Update {
	set := &destpb.WeightedAddrSet{}
	for _, s := range addrs {
		var w uint64
		if a, ws, ok := strings.Cut(s, "*"); ok {
			s = a
			var err error
			if w, err = strconv.ParseUint(ws, 10, 32); err != nil {
				panic(err)
			}
		}
		set.Addrs = append(set.Addrs, &destpb.WeightedAddr{Addr: tcp(s), Weight: uint32(w)})
	}
	return &destpb.Update{Update: &destpb.Update_Add{Add: set}}
}

// addWire is an add of wire addresses, each weighing 1.
func addWire(addrs ...*destpb.TcpAddress) *destpb.Update {
	set := &destpb.WeightedAddrSet{}
	for _, a := range addrs {
		set.Addrs = append(set.Addrs, &destpb.WeightedAddr{Addr: a, Weight: 1})
	}
	return &destpb.Update{Update: &destpb.Update_Add{Add: set}}
}

func remove(addrs ...string) *destpb.Update {
	set := &destpb.AddrSet{}
	for _, s := range addrs {
		set.Addrs = append(set.Addrs, tcp(s))
	}
	return &destpb.Update{Update: &destpb.Update_Remove{Remove: set}}
}

func noEndpoints(exists bool) *destpb.Update {
	return &destpb.Update{Update: &destpb.Update_NoEndpoints{NoEndpoints: &destpb.NoEndpoints{Exists: exists}}}
}

func ep(s string, w float64) interpreter.Endpoint {
	return interpreter.Endpoint{Addr: netip.MustParseAddrPort(s), Weight: w}
}

// recSink records answers, and flags concurrent calls.
type recSink struct {
	ch         chan interpreter.Resolution
	active     atomic.Int32
	concurrent atomic.Bool
	overflow   atomic.Bool
}

func newRecSink(t *testing.T) *recSink { return newRecSinkCap(t, 4096) }

// newRecSinkCap is a recSink that records up to n answers.
func newRecSinkCap(t *testing.T, n int) *recSink {
	s := &recSink{ch: make(chan interpreter.Resolution, n)}
	t.Cleanup(func() {
		if s.concurrent.Load() {
			t.Error("the sink was called concurrently")
		}
		if s.overflow.Load() {
			t.Error("the sink got more answers than it could record")
		}
	})
	return s
}

func (s *recSink) Update(r interpreter.Resolution) {
	if s.active.Add(1) != 1 {
		s.concurrent.Store(true)
	}
	defer s.active.Add(-1)
	r.Endpoints = slices.Clone(r.Endpoints)
	select {
	case s.ch <- r:
	default:
		s.overflow.Store(true)
	}
}

func (s *recSink) next(t *testing.T) interpreter.Resolution {
	t.Helper()
	select {
	case r := <-s.ch:
		return r
	case <-time.After(wait):
		t.Fatalf("no answer within %s", wait)
		return interpreter.Resolution{}
	}
}

// expectBound checks that the next answer is Bound to eps, in order.
func (s *recSink) expectBound(t *testing.T, eps ...interpreter.Endpoint) {
	t.Helper()
	r := s.next(t)
	if eps == nil {
		eps = []interpreter.Endpoint{}
	}
	if r.State != interpreter.Bound || !reflect.DeepEqual(r.Endpoints, eps) {
		t.Fatalf("got %v %v (%v), want bound %v", r.State, r.Endpoints, r.Err, eps)
	}
}

func (s *recSink) expectNotFound(t *testing.T) {
	t.Helper()
	if r := s.next(t); r.State != interpreter.NotFound {
		t.Fatalf("got %v %v (%v), want not_found", r.State, r.Endpoints, r.Err)
	}
}

// expectFailed checks that the next answer is Failed with an error
// containing each of subs, and returns it.
func (s *recSink) expectFailed(t *testing.T, subs ...string) error {
	t.Helper()
	r := s.next(t)
	if r.State != interpreter.Failed || r.Err == nil {
		t.Fatalf("got %v %v (%v), want failed", r.State, r.Endpoints, r.Err)
	}
	for _, sub := range subs {
		if !strings.Contains(r.Err.Error(), sub) {
			t.Fatalf("error %q, want it to contain %q", r.Err, sub)
		}
	}
	return r.Err
}

// expectEmpty checks that nothing more was delivered so far.
func (s *recSink) expectEmpty(t *testing.T) {
	t.Helper()
	select {
	case r := <-s.ch:
		t.Fatalf("unexpected answer %v %v (%v)", r.State, r.Endpoints, r.Err)
	default:
	}
}

// logRecorder is a slog.Handler that keeps records, for checks on levels.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}

// count returns how many records at level have a message containing msg.
func (l *logRecorder) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

// testSettings are fast settings for a server at addr.
func testSettings(addr string) Settings {
	return Settings{
		Addr:         addr,
		ContextToken: `{"ns":"test"}`,
		BackoffMin:   5 * time.Millisecond,
		BackoffMax:   20 * time.Millisecond,
		Timeout:      2 * time.Second,
	}
}

type testInterp struct {
	*Interpreter
	stats *interpreter.Stats
	logs  *logRecorder
}

// newTestInterp builds an interpreter closed at the end of the test.
func newTestInterp(t *testing.T, st Settings) testInterp {
	t.Helper()
	ti := testInterp{stats: new(interpreter.Stats), logs: new(logRecorder)}
	in, err := st.New(interpreter.Env{Router: "test", Log: slog.New(ti.logs), Stats: ti.stats})
	if err != nil {
		t.Fatal(err)
	}
	ti.Interpreter = in.(*Interpreter)
	t.Cleanup(func() { ti.Close() })
	return ti
}

// waitFor polls cond, which reads state that has no event to wait on
// (counters, goroutines, descriptors), until it holds.
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

// stacks returns every goroutine's stack.
func stacks() string {
	buf := make([]byte, 4<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}
