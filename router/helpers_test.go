package router

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/server"
)

const testDst = "/svc/test"

// testConfig is a one-router, one-server configuration forwarding
// 127.0.0.1:0 to the given backends.
func testConfig(backends ...string) *Config {
	var eps []interpreter.Endpoint
	for _, b := range backends {
		eps = append(eps, interpreter.Endpoint{Addr: netip.MustParseAddrPort(b), Weight: 1})
	}
	return &Config{
		Runtime: RuntimeConfig{Workers: 2, PipeSize: 64 << 10, MaxPipes: 64},
		Routers: []RouterConfig{{
			Label:       "test",
			Interpreter: InterpreterConfig{Kind: "static", Settings: &interpreter.StaticSettings{Names: map[string][]interpreter.Endpoint{testDst: eps}}},
			Servers: []ServerConfig{{
				Listen:         netip.MustParseAddrPort("127.0.0.1:0"),
				Dst:            testDst,
				ConnectTimeout: 5 * time.Second,
				IdleTimeout:    time.Minute,
				MaxConnections: 10000,
			}},
			Client: ClientConfig{
				ConnectTimeout:  2 * time.Second,
				ConnectAttempts: 3,
				MaxWaiters:      1000,
				FailureAccrual:  endpoint.Accrual{ConsecutiveFailures: 5, Penalty: time.Minute},
			},
			BindIdle: 10 * time.Minute,
			MaxNames: 10000,
		}},
	}
}

type testProxy struct {
	*Proxy
	addr string
	srv  *server.Server
}

func startProxy(t testing.TB, cfg *Config) *testProxy {
	t.Helper()
	p, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	srv := p.Routers()[0].Servers()[0]
	return &testProxy{Proxy: p, addr: srv.Addr().String(), srv: srv}
}

// waitFor polls cond until it holds or the deadline passes: for conditions
// that have no event to wait on (counters in another goroutine).
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitEnded waits until the server has counted n connections ended for
// reason, and returns its stats.
func waitEnded(t testing.TB, srv *server.Server, reason server.Reason, n uint64) server.Stats {
	t.Helper()
	waitFor(t, "connections ended with "+reason.String(), 10*time.Second, func() bool {
		return srv.Stats().Ended[reason] >= n
	})
	return srv.Stats()
}

// backend is a TCP server on loopback running handle for each connection.
type backend struct {
	ln   net.Listener
	wg   sync.WaitGroup
	addr string
}

func startBackend(t testing.TB, handle func(c *net.TCPConn)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveBackend(t, ln, handle)
}

// serveBackend is startBackend on a listener of the caller's.
func serveBackend(t testing.TB, ln net.Listener, handle func(c *net.TCPConn)) *backend {
	b := &backend{ln: ln, addr: ln.Addr().String()}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(b.close)
	return b
}

// close stops accepting and waits for every handler to return.
func (b *backend) close() {
	b.ln.Close()
	b.wg.Wait()
}

// echo copies everything back until EOF, then closes its write side.
func echo(c *net.TCPConn) {
	_, _ = io.Copy(c, c)
	_ = c.CloseWrite()
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// expectClosed reads until EOF or an error and fails if data arrives or the
// connection stays open past d. It returns the read error (io.EOF on a clean
// close).
func expectClosed(t testing.TB, c net.Conn, d time.Duration) error {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	var buf [256]byte
	n, err := c.Read(buf[:])
	if n > 0 {
		t.Fatalf("unexpected %d bytes: %q", n, buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", d)
	}
	return err
}

func isReset(err error) bool {
	return err != nil && (errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "connection reset"))
}

func goroutines() int { return runtime.NumGoroutine() }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// listenBacklog0 opens a listening socket with backlog 0 that never accepts.
func listenBacklog0(t *testing.T) (int, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
}

// openFDs counts this process's open descriptors whose /proc link starts
// with prefix ("socket:", "anon_inode:[eventfd]"; "": all of them).
func openFDs(t testing.TB, prefix string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
