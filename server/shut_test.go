package server

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

// closingDispatcher closes every accepted connection at once.
type closingDispatcher struct{ s *Server }

func (d *closingDispatcher) Dispatch(_ *netpoll.Loop, fd int, env *Envelope) {
	unix.Close(fd)
	d.s.Done(env.Counters, ReasonEOF)
}

func startLoops(t *testing.T, n int) []*netpoll.Loop {
	t.Helper()
	var loops []*netpoll.Loop
	for i := 0; i < n; i++ {
		l, err := netpoll.NewLoop(i)
		if err != nil {
			t.Fatal(err)
		}
		go l.Run()
		loops = append(loops, l)
		t.Cleanup(func() { l.Stop(); <-l.Done(); l.Free() })
	}
	return loops
}

func startServer(t *testing.T, cfg Config, loops []*netpoll.Loop) *Server {
	t.Helper()
	d := &closingDispatcher{}
	s := New(cfg, &Route{MaxConnections: 100, ConnectTimeout: time.Second, Dispatcher: d, Tally: NewTally(len(loops))})
	d.s = s
	if err := s.Listen(loops); err != nil {
		t.Fatal(err)
	}
	// Let the loops register their listeners.
	for _, l := range loops {
		done := make(chan struct{})
		if err := l.Post(func() { close(done) }); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	return s
}

// connectCompletes reports whether a TCP handshake with addr completes
// (the kernel queued it on a listening socket) rather than being refused.
func connectCompletes(t *testing.T, addr netip.AddrPort) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// A loop whose queue is full when Shut asks it to close its listener (a
// loop slow or wedged for a moment) is asked again until it takes the
// task: its SO_REUSEPORT listener must not stay open, completing
// handshakes nobody will serve, for the rest of the drain.
func TestShutWithAFullQueueStillClosesTheListener(t *testing.T) {
	loops := startLoops(t, 1)
	s := startServer(t, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0")}, loops)
	l := loops[0]

	// Hold the loop and fill its queue.
	release := make(chan struct{})
	if err := l.Post(func() { <-release }); err != nil {
		t.Fatal(err)
	}
	for l.Post(func() {}) == nil {
	}
	shut := make(chan struct{})
	go func() {
		s.Shut() // returns once the loop has closed the listener
		close(shut)
	}()
	close(release)
	select {
	case <-shut:
	case <-time.After(10 * time.Second):
		t.Fatal("Shut did not return")
	}
	// The loop drained its queue, then took the retried task.
	deadline := time.Now().Add(10 * time.Second)
	for connectCompletes(t, s.Addr()) {
		if time.Now().After(deadline) {
			t.Fatalf("10s after Shut a connection to %v still completes its handshake (queued, never served): want refused", s.Addr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Under socket activation systemd keeps its own copy of the listening
// socket, so closing ours in Shut does not close the socket: new
// connections wait in its backlog for the next instance, as the docs say,
// instead of being refused.
func TestShutOnAnInheritedSocketLeavesItToSystemd(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	systemdCopy, err := unix.Dup(fd) // what the .socket unit holds
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(systemdCopy) })
	sa, _ := unix.Getsockname(fd)
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*unix.SockaddrInet4).Port))

	loops := startLoops(t, 2)
	s := startServer(t, Config{Listen: addr, Inherited: fd}, loops)
	s.Shut()
	for _, l := range loops {
		done := make(chan struct{})
		_ = l.Post(func() { close(done) })
		<-done
	}
	if !connectCompletes(t, addr) {
		t.Errorf("after Shut on an inherited socket a connection to %v was refused: systemd's copy should queue it", addr)
	}
}

// Control: checkFree does not mistake the established connections of a
// draining server (listeners closed) for a listener.
func TestCheckFreeWithADrainingServer(t *testing.T) {
	ln, err := listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nfd, _, err := unix.Accept4(ln.fd, unix.SOCK_CLOEXEC)
	for errors.Is(err, unix.EAGAIN) {
		nfd, _, err = unix.Accept4(ln.fd, unix.SOCK_CLOEXEC)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nfd)
	ln.closeUnregistered()
	if err := checkFree(ln.addr); err != nil {
		t.Errorf("checkFree with only an established connection on the port: %v", err)
	}
}
