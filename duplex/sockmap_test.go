package duplex

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

// offRig is an offloaded stream between two loopback connections, owned on
// a loop of its own as a router stream owns it:
//
//	client ⇄ [cfd | sockmap | ufd] ⇄ server
type offRig struct {
	client, server *net.TCPConn
	loop           *netpoll.Loop
	off            *Offload
	cfd, ufd       int
	sides          [2]offSide
	timer          netpoll.Timer
	wakeups        int // events delivered to the owner
	closed         bool

	// Set on the loop before done is closed.
	status   Status
	err      error
	failed   Side
	up, down uint64
	done     chan struct{}
}

type offSide struct {
	r *offRig
	s Side
}

func (os *offSide) OnEvent(ev uint32) {
	os.r.wakeups++
	os.r.off.Ready(os.s, ev)
	os.r.pump()
}

func (os *offSide) OnShutdown() { os.r.finish(Running) }

func (r *offRig) OnTimer(int64) { r.pump() }

func (r *offRig) pump() {
	if st := r.off.Pump(); st != Running {
		r.finish(st)
		return
	}
	if r.off.Draining() {
		r.loop.Schedule(&r.timer, r.loop.Now()+r.off.PollDelay(), r)
	}
}

func (r *offRig) finish(st Status) {
	if r.closed {
		return
	}
	r.closed = true
	r.loop.Cancel(&r.timer)
	r.status, r.err, r.failed = st, r.off.Err(), r.off.FailedSide()
	if st == Failed {
		resetPeerOf(r.failed, r.cfd, r.ufd)
	}
	r.up, r.down = r.off.Stop()
	_ = r.loop.Close(r.cfd)
	_ = r.loop.Close(r.ufd)
	close(r.done)
}

// needOffload fails the test where root cannot load the offload's maps and
// program; it skips only without root, where the router splices instead.
func needOffload(t *testing.T) {
	t.Helper()
	if err := OffloadSupported(); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("no sockmap offload without root: %v", err)
		}
		t.Fatalf("root cannot load the sockmap offload: %v", err)
	}
}

// newOffRig offloads a fresh pair of connections; before, if not nil, runs
// on the outer ends first (to leave bytes in the receive queues).
func newOffRig(t *testing.T, before func(r *offRig)) *offRig {
	t.Helper()
	return newOffRigOf(t, loopbackPair, before)
}

// newOffRigOf is newOffRig with connections made by pair.
func newOffRigOf(t *testing.T, pair func(testing.TB) (*net.TCPConn, int), before func(r *offRig)) *offRig {
	t.Helper()
	needOffload(t)
	l, err := netpoll.NewLoop(0)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- l.Run() }()
	r := &offRig{loop: l, done: make(chan struct{})}
	r.client, r.cfd = pair(t)
	r.server, r.ufd = pair(t)
	t.Cleanup(func() {
		l.Stop()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		l.Free()
	})
	if before != nil {
		before(r)
	}
	r.sides = [2]offSide{{r, Client}, {r, Upstream}}
	started := make(chan error, 1)
	onLoopOf(t, l, func() {
		r.off, err = StartOffload(NewPool(defaultPipeSize, defaultMaxPipes, defaultBufSize), r.cfd, r.ufd, false)
		if err != nil {
			started <- err
			return
		}
		if err := l.Add(r.cfd, OffloadEvents, &r.sides[Client]); err != nil {
			started <- err
			return
		}
		if err := l.Add(r.ufd, OffloadEvents, &r.sides[Upstream]); err != nil {
			started <- err
			return
		}
		r.pump()
		started <- nil
	})
	if err := <-started; err != nil {
		t.Fatalf("StartOffload: %v", err)
	}
	return r
}

func (r *offRig) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(ioTimeout):
		t.Fatal("the offloaded stream did not finish")
	}
}

// ends returns the outer end on side s's side of the proxy, and the other.
func (r *offRig) ends(s Side) (this, other *net.TCPConn) {
	if s == Upstream {
		return r.server, r.client
	}
	return r.client, r.server
}

func (r *offRig) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func TestOffloadBothWays(t *testing.T) {
	const size = 8 << 20
	for _, chunk := range []int{100, 64 << 10, size} {
		t.Run(fmt.Sprintf("writes of %d bytes", chunk), func(t *testing.T) {
			r := newOffRig(t, nil)
			exchangeEnds(t, r.client, r.server, randomBytes(t, size), randomBytes(t, size), chunk)
			r.wait(t)
			if r.status != Finished {
				t.Fatalf("status %s (%v), want Finished", statusName(r.status), r.err)
			}
			if r.up != size || r.down != size {
				t.Errorf("Stop() = %d up, %d down; want %d each", r.up, r.down, size)
			}
			// 16 MiB moved: the owner heard of the two FINs and
			// little else.
			if r.wakeups > 8 {
				t.Errorf("the owner was woken %d times, want a few (FINs only)", r.wakeups)
			}
		})
	}
}

// IPv4 clients of a dual-stack listener have AF_INET6 sockets with
// IPv4-mapped addresses; their packets are IPv4, and they are offloaded.
func TestOffloadIPv4Mapped(t *testing.T) {
	const size = 1 << 20
	r := newOffRigOf(t, mappedPair, nil)
	exchangeEnds(t, r.client, r.server, randomBytes(t, size), randomBytes(t, size), 64<<10)
	r.wait(t)
	if r.status != Finished {
		t.Fatalf("status %s (%v), want Finished", statusName(r.status), r.err)
	}
	if r.up != size || r.down != size {
		t.Errorf("Stop() = %d up, %d down; want %d each", r.up, r.down, size)
	}
}

// Bytes sent before the offload, waiting in the receive queue, are not
// stranded there.
func TestOffloadQueuedBeforeStart(t *testing.T) {
	r := newOffRig(t, func(r *offRig) {
		if _, err := r.client.Write([]byte("early")); err != nil {
			t.Fatal(err)
		}
		// The bytes are in the proxy side's receive queue before the
		// offload starts: read that side's queue length until they are.
		waitQueue(t, r.cfd, unix.SIOCINQ, 5)
	})
	buf := make([]byte, 5)
	_ = r.server.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(r.server, buf); err != nil || string(buf) != "early" {
		t.Fatalf("server read %q, %v; want \"early\"", buf, err)
	}
}

func TestOffloadHalfClose(t *testing.T) {
	for _, first := range []Side{Client, Upstream} {
		t.Run(first.String()+" closes first", func(t *testing.T) {
			r := newOffRig(t, nil)
			closer, peer := r.ends(first)
			request := randomBytes(t, 1<<20)
			go func() { _ = send(closer, request, 64<<10) }()
			if got, err := readAll(peer); err != nil || !bytes.Equal(got, request) {
				t.Fatalf("peer read %d bytes, %v; want %d then EOF", len(got), err, len(request))
			}
			if !r.running() {
				t.Fatalf("the stream ended after one direction's EOF: %s (%v)", statusName(r.status), r.err)
			}
			reply := randomBytes(t, 3<<20)
			go func() { _ = send(peer, reply, 64<<10) }()
			got, err := readAll(closer)
			if err != nil || !bytes.Equal(got, reply) {
				t.Fatalf("reply after the half-close: got %d bytes (%v), want %d", len(got), err, len(reply))
			}
			r.wait(t)
			if r.status != Finished {
				t.Fatalf("status %s (%v), want Finished", statusName(r.status), r.err)
			}
			wantUp, wantDown := uint64(len(request)), uint64(len(reply))
			if first == Upstream {
				wantUp, wantDown = wantDown, wantUp
			}
			if r.up != wantUp || r.down != wantDown {
				t.Errorf("Stop() = %d up, %d down; want %d, %d", r.up, r.down, wantUp, wantDown)
			}
		})
	}
}

func TestOffloadReset(t *testing.T) {
	for _, reset := range []Side{Client, Upstream} {
		t.Run(reset.String()+" resets", func(t *testing.T) {
			r := newOffRig(t, nil)
			resetter, other := r.ends(reset)
			if err := exchangeOne(resetter, other); err != nil {
				t.Fatal(err)
			}
			if err := resetter.SetLinger(0); err != nil {
				t.Fatal(err)
			}
			resetter.Close()
			r.wait(t)
			if r.status != Failed || r.failed != reset {
				t.Fatalf("status %s, failed %v (%v); want Failed, %v", statusName(r.status), r.failed, r.err, reset)
			}
			if !errors.Is(r.err, unix.ECONNRESET) && !errors.Is(r.err, unix.EPIPE) {
				t.Errorf("Err() = %v, want ECONNRESET or EPIPE", r.err)
			}
			_ = other.SetReadDeadline(time.Now().Add(ioTimeout))
			if _, err := io.Copy(io.Discard, other); !errors.Is(err, unix.ECONNRESET) {
				t.Errorf("the other side read %v, want a reset", err)
			}
			if r.up != 1 || r.down != 1 {
				t.Errorf("Stop() = %d up, %d down; want 1 each", r.up, r.down)
			}
		})
	}
}

// LastActive follows the program's batches, on the loop's clock.
func TestOffloadLastActive(t *testing.T) {
	r := newOffRig(t, nil)
	var idle int64
	onLoopOf(t, r.loop, func() { idle = r.off.LastActive() })
	if idle != 0 {
		t.Errorf("LastActive before any byte = %d, want 0", idle)
	}
	before := netpoll.Monotonic()
	if err := exchangeOne(r.client, r.server); err != nil {
		t.Fatal(err)
	}
	after := netpoll.Monotonic()
	var last int64
	onLoopOf(t, r.loop, func() { last = r.off.LastActive() })
	// The clocks are matched once, to within a few µs.
	if slack := int64(time.Millisecond); last < before-slack || last > after+slack {
		t.Errorf("LastActive = %d, want within [%d, %d]", last, before, after)
	}
}

// Stop takes both sockets out of every map.
func TestOffloadStopEmptiesMaps(t *testing.T) {
	r := newOffRig(t, nil)
	if err := exchangeOne(r.client, r.server); err != nil {
		t.Fatal(err)
	}
	var keys [2]sockKey
	onLoopOf(t, r.loop, func() { keys = r.off.key; r.finish(Running) })
	o, _ := loadOffloader()
	var c sockCount
	var fd uint32
	for _, k := range keys {
		if err := o.counters.Lookup(&k, &c); err == nil {
			t.Errorf("counters still hold %x", k)
		}
		for _, m := range []*ebpf.Map{o.targets, o.verdict} {
			if err := m.Lookup(&k, &fd); err == nil {
				t.Errorf("a sockhash still holds %x", k)
			}
		}
	}
}

func TestOffloadFallsBackForIPv6(t *testing.T) {
	needOffload(t)
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp6", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cf, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	sf, err := s.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	before := OffloadFallbacks()[FallbackNotIPv4]
	_, err = StartOffload(NewPool(defaultPipeSize, defaultMaxPipes, defaultBufSize), int(cf.Fd()), int(sf.Fd()), false)
	var oe *OffloadError
	if !errors.As(err, &oe) || oe.Reason != FallbackNotIPv4 {
		t.Fatalf("StartOffload on IPv6 = %v, want an OffloadError %q", err, FallbackNotIPv4)
	}
	if got := OffloadFallbacks()[FallbackNotIPv4]; got != before+1 {
		t.Errorf("fallbacks counted %d, want %d", got, before+1)
	}
}

// Where the maps and program were not made (no root: this runs on every
// machine), StartOffload declines at once, counted as "bpf", and the
// sockets are left as they were: spliced, the stream goes on.
func TestOffloadWithoutProgram(t *testing.T) {
	saved := offloadState.Swap(nil)
	t.Cleanup(func() { offloadState.Store(saved) })
	r := newRig(t, defaultPipeSize, defaultMaxPipes, defaultBufSize)
	before := OffloadFallbacks()[FallbackBPF]
	var err error
	r.onLoop(t, func() { _, err = StartOffload(r.pool, r.conn.cfd, r.conn.ufd, false) })
	var oe *OffloadError
	if !errors.As(err, &oe) || oe.Reason != FallbackBPF || oe.Broken || oe.Up != 0 || oe.Down != 0 {
		t.Fatalf("StartOffload = %#v, want an OffloadError %q that moved nothing", err, FallbackBPF)
	}
	if got := OffloadFallbacks()[FallbackBPF]; got != before+1 {
		t.Errorf("fallbacks counted %d, want %d", got, before+1)
	}
	r.exchange(t, randomBytes(t, 1<<20), randomBytes(t, 1<<20), 64<<10)
}

// The kernel may refuse the second socket after the program began to move
// the first one's bytes: StartOffload then reports the stream broken, with
// the bytes moved, and leaves nothing in the maps. Refused before any byte
// moved, the stream is merely declined.
func TestOffloadRefusedAfterBytesMoved(t *testing.T) {
	needOffload(t)
	for _, sent := range []bool{true, false} {
		t.Run(fmt.Sprintf("bytes sent %v", sent), func(t *testing.T) {
			client, cfd := loopbackPair(t)
			server, ufd := loopbackPair(t)
			t.Cleanup(func() { unix.Close(cfd); unix.Close(ufd) })
			msg := []byte("moved while half offloaded")
			got := make([]byte, len(msg))
			var sendErr error
			insertFault = func(step int) error {
				if step != 5 { // 4: the client's verdict, 5: the upstream's
					return nil
				}
				if sent {
					if _, sendErr = client.Write(msg); sendErr == nil {
						_ = server.SetReadDeadline(time.Now().Add(ioTimeout))
						_, sendErr = io.ReadFull(server, got)
					}
				}
				return unix.ENOMEM
			}
			t.Cleanup(func() { insertFault = nil })
			pool := NewPool(defaultPipeSize, defaultMaxPipes, defaultBufSize)
			defer pool.Close()
			before := OffloadFallbacks()[FallbackMapsFull]
			_, err := StartOffload(pool, cfd, ufd, false)
			insertFault = nil
			if sendErr != nil {
				t.Fatalf("the client's bytes did not go through the program: %v", sendErr)
			}
			var oe *OffloadError
			if !errors.As(err, &oe) || oe.Reason != FallbackMapsFull {
				t.Fatalf("StartOffload = %v, want an OffloadError %q", err, FallbackMapsFull)
			}
			want := uint64(0)
			if sent {
				want = uint64(len(msg))
				if !bytes.Equal(got, msg) {
					t.Errorf("upstream got %q, want %q", got, msg)
				}
			}
			if oe.Broken != sent || oe.Up != want || oe.Down != 0 {
				t.Errorf("broken %v, up %d, down %d; want %v, %d, 0", oe.Broken, oe.Up, oe.Down, sent, want)
			}
			if got := OffloadFallbacks()[FallbackMapsFull]; got != before+1 {
				t.Errorf("fallbacks counted %d, want %d", got, before+1)
			}
			o, _ := loadOffloader()
			var c sockCount
			var fd uint32
			for _, s := range []int{cfd, ufd} {
				k, err := keyOf(s)
				if err != nil {
					t.Fatal(err)
				}
				if o.counters.Lookup(&k, &c) == nil || o.targets.Lookup(&k, &fd) == nil || o.verdict.Lookup(&k, &fd) == nil {
					t.Errorf("the maps still hold %x", k)
				}
			}
		})
	}
}
