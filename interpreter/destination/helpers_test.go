package destination

import (
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
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
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

// wait bounds every wait for an event in these tests.
const wait = 10 * time.Second

// sinkCap is how many answers a test's sink (kindtest.Recorder) holds
// until the test takes them.
const sinkCap = 4096

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
