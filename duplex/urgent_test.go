package duplex

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sendWithUrgent writes "head", then "!" as TCP urgent (MSG_OOB) data, then
// "tail" from the raw client fd, optionally half-closes, and waits until all
// of it sits in the receive queue of inner (the duplex's client socket).
func sendWithUrgent(t *testing.T, client, inner int, fin bool) {
	t.Helper()
	for _, step := range []struct {
		p     string
		flags int
	}{{"head", 0}, {"!", unix.MSG_OOB}, {"tail", 0}} {
		if err := unix.Sendto(client, []byte(step.p), step.flags, nil); err != nil {
			t.Fatalf("send %q: %v", step.p, err)
		}
	}
	if fin {
		if err := unix.Shutdown(client, unix.SHUT_WR); err != nil {
			t.Fatal(err)
		}
	}
	// Everything sent was acknowledged by inner: it is in inner's queue.
	waitQueue(t, client, unix.SIOCOUTQ, 0)
}

// waitQueue waits until the queue of fd that req (SIOCINQ, SIOCOUTQ)
// measures holds want bytes.
func waitQueue(t *testing.T, fd int, req uint, want int) {
	t.Helper()
	for deadline := time.Now().Add(ioTimeout); ; {
		n, err := unix.IoctlGetInt(fd, req)
		if err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes queued, want %d", n, want)
		}
		runtime.Gosched()
	}
}

// drain reads what the raw server fd holds now (non-blocking).
func drainNow(t *testing.T, fd int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EAGAIN || n == 0 {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n]...)
	}
}

// readWrite's short-read rule ("a short read emptied the receive queue")
// does not hold when the peer sent urgent data: read(2) stops at the urgent
// mark with bytes still queued behind it. Were the direction to record src
// as not readable then, no new EPOLLET edge would come for bytes that
// already arrived, and "tail" would be stuck until the client sent more or
// closed. EPOLLPRI marks the direction urgent: it reads on to EAGAIN.
func TestUrgentDataDoesNotLoseReadiness(t *testing.T) {
	x := newDriven(t, defaultPipeSize, defaultMaxPipes, defaultBufSize, 16)
	x.batch(t) // established, copy mode
	cfd := x.d.h[0].src
	sendWithUrgent(t, x.client, cfd, false)

	// One edge for everything that arrived, as epoll reports it for a
	// socket registered with Events: urgent data raises EPOLLPRI too.
	x.d.Ready(Client, unix.EPOLLIN|unix.EPOLLPRI)
	if st := x.d.Pump(); st != Running {
		t.Fatalf("Pump: %s (%v)", statusName(st), x.d.Err())
	}
	got := drainNow(t, x.server)
	var peek [16]byte
	left, _, _ := unix.Recvfrom(cfd, peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if !x.d.h[0].readable && left > 0 {
		t.Fatalf("after one edge the upstream got %q; the client socket still holds %q "+
			"but the duplex marked it not readable: no further EPOLLIN edge will come for it",
			got, peek[:left])
	}
	if string(got) != "headtail" {
		t.Errorf("upstream got %q, want %q", got, "headtail")
	}
}

// In bulk (splice) mode urgent data is worse: splice (tcp_read_sock) stops
// at the urgent byte and cannot skip it, so every later splice returns
// EAGAIN, and after the client's FIN it returns 0, which would read as EOF
// with the bytes behind the mark dropped. An urgent direction stops
// splicing and reads, which steps over the urgent byte.
func TestUrgentDataInSpliceModeIsNotTruncated(t *testing.T) {
	x := newDriven(t, defaultPipeSize, defaultMaxPipes, 4096, 64<<10)
	x.batch(t)
	if !x.d.h[0].bulk {
		t.Fatal("setup: the direction did not switch to splice")
	}
	cfd := x.d.h[0].src
	sendWithUrgent(t, x.client, cfd, true)

	x.d.Ready(Client, unix.EPOLLIN|unix.EPOLLPRI|unix.EPOLLRDHUP)
	for i := 0; i < 10 && !x.d.h[0].shut; i++ {
		x.d.Ready(Upstream, unix.EPOLLOUT)
		if st := x.d.Pump(); st == Failed {
			t.Fatalf("Pump failed: %v", x.d.Err())
		}
	}
	got := drainNow(t, x.server)
	var peek [16]byte
	left, _, _ := unix.Recvfrom(cfd, peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if string(got) != "headtail" {
		t.Errorf("upstream got %q (direction shut: %v, client socket still holds %q), want %q",
			got, x.d.h[0].shut, peek[:max(left, 0)], "headtail")
	}
}

// End to end on a running loop: the client sends urgent data in the middle
// of a request and waits for the answer; the bytes after the urgent mark
// must be forwarded (the urgent byte itself is not).
func TestUrgentDataDoesNotHangOnLoop(t *testing.T) {
	r := newRig(t, defaultPipeSize, defaultMaxPipes, defaultBufSize)
	if err := exchangeOne(r.client, r.server); err != nil {
		t.Fatal(err)
	}
	client := rawFD(t, r.client)
	// Everything arrives while the loop is busy, so that it sees one edge.
	r.onLoop(t, func() { sendWithUrgent(t, client, r.conn.cfd, false) })
	want := []byte("headtail")
	got := make([]byte, 0, len(want))
	buf := make([]byte, 16)
	_ = r.server.SetReadDeadline(time.Now().Add(3 * time.Second))
	for len(got) < len(want) {
		n, err := r.server.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if err != io.EOF {
				t.Fatalf("upstream got %q then %v; want %q", got, err, want)
			}
			break
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("upstream got %q, want %q", got, want)
	}
}

// A client that half-closes and then resets: the direction reading the
// client is already at EOF and will not read again, and the other one only
// notices a dead client on its next write. Unless EPOLLERR after EOF is
// checked (SO_ERROR), an idle upstream would be neither reset nor closed
// and the stream would live until idle_timeout (forever with 0s).
func TestResetAfterHalfCloseIsPropagated(t *testing.T) {
	r := newRig(t, defaultPipeSize, defaultMaxPipes, defaultBufSize)
	if err := exchangeOne(r.client, r.server); err != nil {
		t.Fatal(err)
	}
	if err := r.client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The FIN went through: the upstream reads EOF.
	_ = r.server.SetReadDeadline(time.Now().Add(ioTimeout))
	var b [1]byte
	if n, err := r.server.Read(b[:]); n != 0 || err != io.EOF {
		t.Fatalf("upstream read %d, %v; want EOF", n, err)
	}
	if err := r.client.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	r.client.Close() // RST
	select {
	case <-r.conn.done:
		if r.conn.status != Failed {
			t.Errorf("status %s, want Failed", statusName(r.conn.status))
		}
	case <-time.After(3 * time.Second):
		var up, down bool
		r.onLoop(t, func() { up, down = r.conn.d.h[0].shut, r.conn.d.h[1].readable })
		t.Fatalf("the client reset 3s ago and the duplex is still Running "+
			"(client→upstream shut: %v, upstream readable: %v); the upstream was not told", up, down)
	}
}

// A read that stopped short at an urgent mark leaves the segment behind
// the mark queued and read in part. A duplex that has not yet seen the
// mark's EPOLLPRI must not call itself quiet: an offload would then send
// that segment again from its start.
func TestQuietNotAtUrgentMark(t *testing.T) {
	x := newDriven(t, defaultPipeSize, defaultMaxPipes, defaultBufSize, 16)
	x.batch(t)
	if !x.d.Quiet() {
		t.Fatal("not quiet after a batch was delivered in full")
	}
	sendWithUrgent(t, x.client, x.d.h[0].src, false)
	x.d.Ready(Client, unix.EPOLLIN) // its EPOLLPRI not yet seen
	if st := x.d.Pump(); st != Running {
		t.Fatalf("Pump: %s (%v)", statusName(st), x.d.Err())
	}
	if x.d.h[0].readable {
		t.Fatal("setup: the read did not stop short at the urgent mark")
	}
	if x.d.Quiet() {
		t.Fatal("quiet with the bytes behind an urgent mark still queued")
	}
}
