package router

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/server"
)

// Slowloris: clients that connect to an SNI server and send nothing. Each
// waits for its ClientHello on its loop, with a timer and no goroutine,
// until handshake_timeout; meanwhile a real client is served as usual.
func TestSlowlorisHandshakesCostNoGoroutines(t *testing.T) {
	const (
		n       = 5000
		timeout = 2 * time.Second
		dialers = 10 // n / dialers each
	)
	a := startTLSBackend(t, "a.test")
	cfg := sniConfig(map[string]*tlsBackend{"a.test": a})
	cfg.Routers[0].Servers[0].HandshakeTimeout = timeout
	cfg.Routers[0].Servers[0].MaxConnections = 3 * n
	p := startProxy(t, cfg)
	// A first client, so that whatever the proxy starts once (the name's
	// balancer, the loops' buffers) is there before the count.
	if got := tlsAsk(t, p.addr, "a.test", a.pool, same); got != "a.test" {
		t.Fatalf("a.test reached %q", got)
	}
	settle(t, p)
	fds, g := openFDs(t, ""), goroutines()

	// The silent clients are bare sockets, connected with blocking
	// syscalls: quick to make by the thousand, well within
	// handshake_timeout.
	dst := netip.MustParseAddrPort(p.addr)
	conns := make([]int, 0, n)
	var mu sync.Mutex
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, fd := range conns {
			unix.Close(fd)
		}
		conns = nil
	}
	t.Cleanup(closeAll)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, dialers)
	for range dialers {
		wg.Go(func() {
			sa := &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())} // one each: Connect writes in it
			for range n / dialers {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				conns = append(conns, fd)
				mu.Unlock()
				if err := unix.Connect(fd, sa); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("connecting %d silent clients: %v", n, err)
	}
	dialed := time.Since(start)
	// Active counts a reservation of a listener about to accept too:
	// wait for it to settle at n.
	waitFor(t, "every silent client accepted and open", e2eWait, func() bool {
		st := p.srv.Stats()
		return st.Accepted >= n+1 && st.Active == n
	})
	accepted := time.Since(start)
	if st := p.srv.Stats(); st.Accepted != n+1 || st.Ended[server.ReasonHandshakeTimeout] != 0 {
		t.Fatalf("%d accepted (want %d), ended %v, once %d silent clients were open", st.Accepted, n+1, st.Ended, n)
	}
	fdsOpen, gOpen := openFDs(t, ""), goroutines()
	t.Logf("%d silent clients dialed in %v, accepted by %v; fds %d -> %d, goroutines %d -> %d",
		n, dialed, accepted, fds, fdsOpen, g, gOpen)
	if gOpen > g+50 {
		t.Errorf("goroutines grew from %d to %d with %d handshakes waiting: one per connection?", g, gOpen, n)
	}
	// (Less a few: the count before may hold sockets of earlier tests
	// still closing.)
	if fdsOpen < fds+2*n-50 {
		t.Errorf("fds grew from %d to %d only, with %d connections (both ends in this process) open", fds, fdsOpen, n)
	}

	// A real client, while they all wait.
	t0 := time.Now()
	if got := tlsAsk(t, p.addr, "a.test", a.pool, same); got != "a.test" {
		t.Fatalf("a.test reached %q with %d silent clients open", got, n)
	}
	took := time.Since(t0)
	st := p.srv.Stats()
	elapsed := time.Since(start)
	t.Logf("a TLS client through the proxy took %v, %v after the first silent client", took, elapsed)
	if took > time.Second {
		t.Errorf("a TLS client took %v with %d silent clients open", took, n)
	}
	// Every silent client was accepted after start: none may have ended
	// before start + handshake_timeout.
	if elapsed < timeout && st.Ended[server.ReasonHandshakeTimeout] != 0 {
		t.Errorf("%d silent clients ended within %v of the first dial, before handshake_timeout (%v)",
			st.Ended[server.ReasonHandshakeTimeout], elapsed, timeout)
	}
	if elapsed >= timeout {
		t.Logf("the TLS client ended after handshake_timeout of the first silent clients: the test ran slow")
	}

	waitFor(t, "every silent client ended with handshake_timeout", 15*time.Second, func() bool {
		return p.srv.Stats().Ended[server.ReasonHandshakeTimeout] >= n
	})
	ended := time.Since(start)
	st = p.srv.Stats()
	t.Logf("%d silent clients ended by %v after the first dial; ended %v", n, ended, st.Ended)
	if st.Ended[server.ReasonHandshakeTimeout] != n {
		t.Errorf("%d ended with handshake_timeout, want %d", st.Ended[server.ReasonHandshakeTimeout], n)
	}
	if ended < timeout {
		t.Errorf("every silent client ended %v after the first dial, before handshake_timeout (%v)", ended, timeout)
	}
	if st.Active != 0 || st.ConnectAttempts != 2 || st.AcceptErrors != 0 || st.ResourceWaits != 0 {
		t.Errorf("after: active %d, connect attempts %d (want the 2 TLS clients'), accept errors %d, resource waits %d",
			st.Active, st.ConnectAttempts, st.AcceptErrors, st.ResourceWaits)
	}
	// Each client sees its connection closed, with nothing sent.
	var buf [1]byte
	for i, fd := range conns {
		tv := unix.NsecToTimeval(int64(e2eWait))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
		k, err := unix.Read(fd, buf[:])
		switch {
		case errors.Is(err, unix.EAGAIN):
			t.Fatalf("silent client %d still open after its handshake_timeout", i)
		case k != 0 || err != nil && !errors.Is(err, unix.ECONNRESET):
			t.Fatalf("silent client %d: %d bytes, %v; want EOF", i, k, err)
		}
	}
	closeAll()
	waitFor(t, "the descriptors back", e2eWait, func() bool { return openFDs(t, "") <= fds+5 })
	waitFor(t, "the goroutines back", e2eWait, func() bool { return goroutines() <= g+5 })
	t.Logf("fds back to %d, goroutines %d", openFDs(t, ""), goroutines())
}
