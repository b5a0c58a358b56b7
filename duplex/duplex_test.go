package duplex

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

// The router's defaults: runtime.pipe_size, runtime.max_pipes and its copy
// buffer.
const (
	defaultPipeSize = 1 << 20
	defaultMaxPipes = 256
	defaultBufSize  = 64 << 10
)

// ioTimeout bounds every wait of these tests on a socket or the loop.
const ioTimeout = 10 * time.Second

// loopbackPair returns the two ends of a loopback TCP connection: outer, for
// the test's goroutines, and inner, a raw non-blocking fd with TCP_NODELAY
// for the duplex, as the router's sockets are. The caller owns inner.
func loopbackPair(tb testing.TB) (outer *net.TCPConn, inner int) {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: ln.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}
	return connectPair(tb, ln, unix.AF_INET, sa)
}

// mappedPair is loopbackPair over 127.0.0.1 as an IPv4-mapped IPv6
// address, as a dual-stack listener accepts IPv4 clients: both ends are
// AF_INET6 sockets.
func mappedPair(tb testing.TB) (outer *net.TCPConn, inner int) {
	tb.Helper()
	mapped := [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}
	lfd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		tb.Fatal(err)
	}
	err = unix.SetsockoptInt(lfd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	if err == nil {
		err = unix.Bind(lfd, &unix.SockaddrInet6{Addr: mapped})
	}
	if err == nil {
		err = unix.Listen(lfd, 1)
	}
	var port int
	if err == nil {
		var la unix.Sockaddr
		if la, err = unix.Getsockname(lfd); err == nil {
			port = la.(*unix.SockaddrInet6).Port
		}
	}
	if err != nil {
		unix.Close(lfd)
		tb.Fatal(err)
	}
	f := os.NewFile(uintptr(lfd), "listener")
	ln, err := net.FileListener(f) // a duplicate: f is closed here
	f.Close()
	if err != nil {
		tb.Fatal(err)
	}
	return connectPair(tb, ln, unix.AF_INET6, &unix.SockaddrInet6{Port: port, Addr: mapped})
}

// connectPair connects a socket of family to sa, where ln listens, and
// returns the accepted end as outer and the connecting one as inner; it
// closes ln.
func connectPair(tb testing.TB, ln net.Listener, family int, sa unix.Sockaddr) (outer *net.TCPConn, inner int) {
	tb.Helper()
	defer ln.Close()
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		tb.Fatal(err)
	}
	err = unix.Connect(fd, sa) // blocking: established on return
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		tb.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		unix.Close(fd)
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), fd
}

// rig is a duplex between two loopback connections, run on a loop of its
// own:
//
//	client ⇄ [cfd | duplex | ufd] ⇄ server
//
// client and server are the outer ends, for the test.
type rig struct {
	client, server *net.TCPConn
	loop           *netpoll.Loop
	pool           *Pool
	conn           *conn
}

// conn owns the duplex on the loop, as a router stream does: it registers
// both sockets, pumps on every event and, once the duplex has finished or
// failed, resets the peer of a failed socket, releases the duplex and closes
// both sockets.
type conn struct {
	loop     *netpoll.Loop
	d        Duplex
	cfd, ufd int
	sides    [2]connSide
	closed   bool

	// Set on the loop before done is closed.
	status Status
	err    error
	failed Side
	up     uint64
	down   uint64
	done   chan struct{}
}

type connSide struct {
	c *conn
	s Side
}

func (cs *connSide) OnEvent(ev uint32) {
	cs.c.d.Ready(cs.s, ev)
	cs.c.pump()
}

func (cs *connSide) OnShutdown() { cs.c.finish(Running) }

func (c *conn) pump() {
	if st := c.d.Pump(); st != Running {
		c.finish(st)
	}
}

// resetPeerOf sets a zero linger on the socket opposite the failed side,
// so that closing it resets the peer, as the router does.
func resetPeerOf(failed Side, cfd, ufd int) {
	peer := cfd
	if failed == Client {
		peer = ufd
	}
	_ = unix.SetsockoptLinger(peer, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
}

func (c *conn) finish(st Status) {
	if c.closed {
		return
	}
	c.closed = true
	c.status, c.err, c.failed = st, c.d.Err(), c.d.FailedSide()
	if st == Failed {
		resetPeerOf(c.failed, c.cfd, c.ufd)
	}
	c.up, c.down = c.d.Bytes()
	c.d.Release()
	_ = c.loop.Close(c.cfd)
	_ = c.loop.Close(c.ufd)
	close(c.done)
}

// newRig starts a loop with a pool of maxPipes pipes of pipeSize bytes and
// a copy buffer of bufSize, and a duplex on it. Everything is released when
// the test ends, and the pool is checked for leaked pipes then.
func newRig(tb testing.TB, pipeSize, maxPipes, bufSize int) *rig {
	tb.Helper()
	l, err := netpoll.NewLoop(0)
	if err != nil {
		tb.Fatal(err)
	}
	r := &rig{loop: l, pool: NewPool(pipeSize, maxPipes, bufSize)}
	errc := make(chan error, 1)
	go func() { errc <- l.Run() }()
	tb.Cleanup(func() {
		l.Stop()
		if err := <-errc; err != nil {
			tb.Errorf("Run: %v", err)
		}
		// The loop has exited: the pool is ours.
		l.Free()
		r.pool.Close()
		if n := r.pool.Open(); n != 0 {
			tb.Errorf("%d pipes still open after the duplex was released", n)
		}
	})
	var cfd, ufd int
	r.client, cfd = loopbackPair(tb)
	r.server, ufd = loopbackPair(tb)
	c := &conn{loop: l, cfd: cfd, ufd: ufd, done: make(chan struct{})}
	c.sides = [2]connSide{{c, Client}, {c, Upstream}}
	r.conn = c
	const events = Events
	r.onLoop(tb, func() {
		c.d.Init(r.pool, cfd, ufd)
		if err := l.Add(cfd, events, &c.sides[Client]); err != nil {
			tb.Error(err)
		}
		if err := l.Add(ufd, events, &c.sides[Upstream]); err != nil {
			tb.Error(err)
		}
		markReady(&c.d)
		c.pump()
	})
	return r
}

// onLoop runs f on the rig's loop and waits for it.
func (r *rig) onLoop(tb testing.TB, f func()) {
	tb.Helper()
	onLoopOf(tb, r.loop, f)
}

// onLoopOf runs f on l and waits for it.
func onLoopOf(tb testing.TB, l *netpoll.Loop, f func()) {
	tb.Helper()
	done := make(chan struct{})
	if err := l.Post(func() { f(); close(done) }); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(ioTimeout):
		tb.Fatal("task did not run on the loop")
	}
}

// wait waits until the duplex has finished or failed and returns its owner,
// whose results are then safe to read.
func (r *rig) wait(tb testing.TB) *conn {
	tb.Helper()
	select {
	case <-r.conn.done:
		return r.conn
	case <-time.After(ioTimeout):
		tb.Fatal("the duplex did not finish")
		return nil
	}
}

// running reports whether the duplex has neither finished nor failed.
func (r *rig) running() bool {
	select {
	case <-r.conn.done:
		return false
	default:
		return true
	}
}

// send writes p to c in writes of chunk bytes, then shuts c's write side.
func send(c *net.TCPConn, p []byte, chunk int) error {
	_ = c.SetWriteDeadline(time.Now().Add(ioTimeout))
	for len(p) > 0 {
		n := min(chunk, len(p))
		if _, err := c.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return c.CloseWrite()
}

func readAll(c *net.TCPConn) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	return io.ReadAll(c)
}

func statusName(s Status) string {
	switch s {
	case Running:
		return "Running"
	case Finished:
		return "Finished"
	case Failed:
		return "Failed"
	}
	return fmt.Sprintf("Status(%d)", s)
}

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// exchange sends up client → server and down server → client at once, in
// writes of chunk bytes, each followed by a half-close, and checks that
// each side received exactly what the other sent and that the duplex
// finished having counted it.
func (r *rig) exchange(t *testing.T, up, down []byte, chunk int) {
	t.Helper()
	exchangeEnds(t, r.client, r.server, up, down, chunk)
	c := r.wait(t)
	if c.status != Finished {
		t.Fatalf("status %s (%v), want Finished", statusName(c.status), c.err)
	}
	if c.up != uint64(len(up)) || c.down != uint64(len(down)) {
		t.Errorf("Bytes() = %d up, %d down; want %d, %d", c.up, c.down, len(up), len(down))
	}
}

// exchangeEnds sends up client → server and down server → client at once,
// in writes of chunk bytes, each followed by a half-close, and checks that
// each end received exactly what the other sent.
func exchangeEnds(t *testing.T, client, server *net.TCPConn, up, down []byte, chunk int) {
	t.Helper()
	type result struct {
		what string
		got  []byte
		err  error
	}
	results := make(chan result, 4)
	go func() { results <- result{what: "client write", err: send(client, up, chunk)} }()
	go func() { results <- result{what: "server write", err: send(server, down, chunk)} }()
	go func() { got, err := readAll(server); results <- result{"server read", got, err} }()
	go func() { got, err := readAll(client); results <- result{"client read", got, err} }()
	for range 4 {
		res := <-results
		if res.err != nil {
			t.Errorf("%s: %v", res.what, res.err)
		}
		want := map[string][]byte{"server read": up, "client read": down}[res.what]
		if want != nil && sha256.Sum256(res.got) != sha256.Sum256(want) {
			t.Errorf("%s: got %d bytes, want %d, hashes differ", res.what, len(res.got), len(want))
		}
	}
}

func TestDuplexIntegrity(t *testing.T) {
	const size = 1 << 20
	for _, tc := range []struct {
		name     string
		chunk    int
		pipeSize int
		maxPipes int
		bufSize  int
	}{
		{"small writes", 100, defaultPipeSize, defaultMaxPipes, defaultBufSize},
		{"buffer-sized writes", defaultBufSize, defaultPipeSize, defaultMaxPipes, defaultBufSize},
		{"one write", size, defaultPipeSize, defaultMaxPipes, defaultBufSize},
		// The copy buffer is cut to the pipe's size, so that what the
		// destination does not take always fits the pipe.
		{"pipes smaller than the buffer", 10000, 4096, defaultMaxPipes, defaultBufSize},
		// Both directions contend for one pipe: one of them copies.
		{"one pipe", 10000, defaultPipeSize, 1, defaultBufSize},
		{"no pipes", 10000, defaultPipeSize, 0, defaultBufSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.pipeSize, tc.maxPipes, tc.bufSize)
			r.exchange(t, randomBytes(t, size), randomBytes(t, size), tc.chunk)
		})
	}
}

func TestDuplexPoolExhausted(t *testing.T) {
	r := newRig(t, defaultPipeSize, 0, 4096)
	r.exchange(t, randomBytes(t, 1<<20), randomBytes(t, 100), 1<<20)
	r.onLoop(t, func() {
		if st := r.pool.Stats(); st.Exhausted == 0 || st.CreateError != 0 {
			t.Errorf("pool stats %+v, want Exhausted > 0 and no CreateError", st)
		}
		if n := r.pool.Open(); n != 0 {
			t.Errorf("%d pipes open in a pool of at most 0", n)
		}
	})
}

// A half-close goes through, the other direction keeps flowing, and the
// duplex finishes only when both directions have.
func TestDuplexHalfClose(t *testing.T) {
	for _, first := range []Side{Client, Upstream} {
		t.Run(first.String()+" closes first", func(t *testing.T) {
			r := newRig(t, defaultPipeSize, defaultMaxPipes, defaultBufSize)
			closer, peer := r.client, r.server
			if first == Upstream {
				closer, peer = r.server, r.client
			}
			if err := send(closer, []byte("request"), 1000); err != nil {
				t.Fatal(err)
			}
			if got, err := readAll(peer); err != nil || string(got) != "request" {
				t.Fatalf("peer read %q, %v; want \"request\" then EOF", got, err)
			}
			if !r.running() {
				t.Fatalf("the duplex ended after one direction's EOF: %s (%v)", statusName(r.conn.status), r.conn.err)
			}
			reply := randomBytes(t, 3<<20)
			go func() { _ = send(peer, reply, 64<<10) }()
			got, err := readAll(closer)
			if err != nil || !bytes.Equal(got, reply) {
				t.Fatalf("reply after the half-close: got %d bytes (%v), want %d", len(got), err, len(reply))
			}
			c := r.wait(t)
			if c.status != Finished {
				t.Fatalf("status %s (%v), want Finished", statusName(c.status), c.err)
			}
			wantUp, wantDown := uint64(len("request")), uint64(len(reply))
			if first == Upstream {
				wantUp, wantDown = wantDown, wantUp
			}
			if c.up != wantUp || c.down != wantDown {
				t.Errorf("Bytes() = %d up, %d down; want %d, %d", c.up, c.down, wantUp, wantDown)
			}
		})
	}
}

// A reset on one side makes Pump fail naming that side, so that its owner
// resets the other.
func TestDuplexReset(t *testing.T) {
	for _, tc := range []struct {
		reset    Side
		inFlight bool // the other side is sending when the reset comes
	}{
		{Client, false},
		{Upstream, false},
		{Client, true},
		{Upstream, true},
	} {
		name := fmt.Sprintf("%v resets", tc.reset)
		if tc.inFlight {
			name += " while the other sends"
		}
		t.Run(name, func(t *testing.T) {
			r := newRig(t, defaultPipeSize, defaultMaxPipes, defaultBufSize)
			resetter, other := r.client, r.server
			if tc.reset == Upstream {
				resetter, other = r.server, r.client
			}
			if err := exchangeOne(resetter, other); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			sent := make(chan error, 1) // the sender's last write error
			if tc.inFlight {
				go func() {
					p := make([]byte, 64<<10)
					for {
						select {
						case <-stop:
							sent <- nil
							return
						default:
						}
						if _, err := other.Write(p); err != nil {
							sent <- err
							return
						}
					}
				}()
				// Let the pipe and the resetter's receive queue fill.
				time.Sleep(20 * time.Millisecond)
			} else {
				sent <- nil
			}
			if err := resetter.SetLinger(0); err != nil {
				t.Fatal(err)
			}
			resetter.Close()
			c := r.wait(t)
			close(stop)
			if c.status != Failed {
				t.Fatalf("status %s, want Failed", statusName(c.status))
			}
			if c.failed != tc.reset {
				t.Errorf("FailedSide() = %v, want %v (err %v)", c.failed, tc.reset, c.err)
			}
			if !errors.Is(c.err, unix.ECONNRESET) && !errors.Is(c.err, unix.EPIPE) {
				t.Errorf("Err() = %v, want ECONNRESET or EPIPE", c.err)
			}
			// The owner reset the other side, as the router does.
			_ = other.SetReadDeadline(time.Now().Add(ioTimeout))
			_, err := io.Copy(io.Discard, other)
			if werr := <-sent; !errors.Is(err, unix.ECONNRESET) && !errors.Is(werr, unix.ECONNRESET) {
				// The first call after the reset reports it, read or write.
				t.Errorf("the other side read %v and wrote %v, want a reset", err, werr)
			}
		})
	}
}

// exchangeOne sends a byte from a to b and one back, so the duplex is known
// to carry both ways.
func exchangeOne(a, b *net.TCPConn) error {
	var buf [1]byte
	for _, dir := range [][2]*net.TCPConn{{a, b}, {b, a}} {
		_ = dir[1].SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := dir[0].Write([]byte("x")); err != nil {
			return err
		}
		if _, err := io.ReadFull(dir[1], buf[:]); err != nil {
			return err
		}
	}
	return nil
}

// TestDuplexSteadyStateAllocs pumps batches through a duplex driven by hand
// (no loop) and counts the allocations per batch once pipes and buffers are
// in place: there must be none, whichever way the bytes move.
func TestDuplexSteadyStateAllocs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		batch    int
		maxPipes int
		bufSize  int
	}{
		{"copy", 512, defaultMaxPipes, defaultBufSize},
		// The first read fills the buffer: splice from then on.
		{"splice", 256 << 10, defaultMaxPipes, 4096},
		{"no pipes", 64 << 10, 0, defaultBufSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newDriven(t, defaultPipeSize, tc.maxPipes, tc.bufSize, tc.batch)
			x.batch(t) // warm up: the first pipe, the pool's free list
			allocs := testing.AllocsPerRun(50, func() { x.batch(t) })
			if allocs != 0 {
				t.Errorf("%v allocations per batch of %d bytes, want 0", allocs, tc.batch)
			}
			if spliced := x.d.h[0].bulk; spliced != (tc.name == "splice") {
				t.Errorf("the direction moved by splice: %v; want %v", spliced, !spliced)
			}
			if tc.maxPipes == 0 && x.pool.Stats().Exhausted == 0 {
				t.Error("the exhausted pool's copy path was not taken")
			}
		})
	}
}

// driven is a duplex pumped by the test goroutine itself, with the outer
// ends of its sockets as raw non-blocking fds, so that nothing but the
// duplex and raw syscalls runs during a batch.
type driven struct {
	d                 Duplex
	pool              *Pool
	client, server    int // outer ends
	payload, received []byte
}

func newDriven(t *testing.T, pipeSize, maxPipes, bufSize, batch int) *driven {
	x := &driven{
		pool:     NewPool(pipeSize, maxPipes, bufSize),
		payload:  randomBytes(t, batch),
		received: make([]byte, 1<<20),
	}
	clientOuter, cfd := loopbackPair(t)
	serverOuter, ufd := loopbackPair(t)
	x.client, x.server = rawFD(t, clientOuter), rawFD(t, serverOuter)
	x.d.Init(x.pool, cfd, ufd)
	markReady(&x.d)
	t.Cleanup(func() {
		x.d.Release()
		unix.Close(cfd)
		unix.Close(ufd)
		x.pool.Close()
	})
	return x
}

// rawFD returns a non-blocking duplicate of c's fd, closed when the test ends.
func rawFD(t *testing.T, c *net.TCPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if cerr := rc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// batch writes the payload into the client's end and pumps until the
// server's end has received all of it, as epoll would report readiness.
func (x *driven) batch(t *testing.T) {
	written, got := 0, 0
	for got < len(x.payload) {
		if written < len(x.payload) {
			n, e := netpoll.Write(x.client, x.payload[written:])
			if e == 0 {
				written += n
			} else if e != unix.EAGAIN {
				t.Fatalf("client write: %v", e)
			}
		}
		x.d.Ready(Client, netpoll.EventIn)
		x.d.Ready(Upstream, netpoll.EventOut)
		if st := x.d.Pump(); st != Running {
			t.Fatalf("Pump: %s (%v)", statusName(st), x.d.Err())
		}
		n, e := netpoll.Read(x.server, x.received)
		if e == 0 {
			got += n
		} else if e != unix.EAGAIN {
			t.Fatalf("server read: %v", e)
		}
	}
	if got != len(x.payload) {
		t.Fatalf("server received %d bytes, want %d", got, len(x.payload))
	}
}

// markReady records both sockets of d as readable and writable, as a test
// that cannot know what epoll reported before it took over must.
func markReady(d *Duplex) {
	for i := range d.h {
		d.h[i].readable = true
		d.h[i].writable = true
	}
}
