package router

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/server"
)

// exchange sends up to the proxy and reads everything back until EOF,
// concurrently; the backend does the same with down. Both sides check what
// they received by hash.
func exchange(t *testing.T, cfgMod func(*Config), size, streams int) {
	up := randomBytes(t, size)
	down := randomBytes(t, size)
	var gotUp sync.Map // backend conn index → hash of what it received
	b := startBackend(t, func(c *net.TCPConn) {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256.New()
			_, _ = io.Copy(h, c)
			gotUp.Store(c.RemoteAddr().String(), string(h.Sum(nil)))
		}()
		_, _ = c.Write(down)
		_ = c.CloseWrite()
		wg.Wait()
	})
	cfg := testConfig(b.addr)
	if cfgMod != nil {
		cfgMod(cfg)
	}
	p := startProxy(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 2*streams)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			wrote := make(chan error, 1)
			go func() {
				_, err := c.Write(up)
				_ = c.(*net.TCPConn).CloseWrite()
				wrote <- err
			}()
			defer func() {
				if err := <-wrote; err != nil {
					errs <- fmt.Errorf("write: %w", err)
				}
			}()
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil {
				errs <- fmt.Errorf("read: %w", err)
				return
			}
			if sum(got) != sum(down) {
				errs <- fmt.Errorf("upstream → client: got %d bytes, want %d, hashes differ", len(got), len(down))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := waitEnded(t, p.srv, server.ReasonEOF, uint64(streams))
	b.close() // waits for every handler to finish
	want := sum(up)
	n := 0
	gotUp.Range(func(_, v any) bool {
		n++
		if v.(string) != string(want[:]) {
			t.Errorf("client → upstream: hash differs")
		}
		return true
	})
	if n != streams {
		t.Errorf("backend saw %d streams, want %d", n, streams)
	}
	if st.BytesUp != uint64(size*streams) || st.BytesDown != uint64(size*streams) {
		t.Errorf("bytes up/down = %d/%d, want %d each", st.BytesUp, st.BytesDown, size*streams)
	}
}

func TestDataIntegrity(t *testing.T) {
	exchange(t, nil, 8<<20, 1)
}

func TestDataIntegrityLargePipes(t *testing.T) {
	exchange(t, func(c *Config) { c.Runtime.PipeSize = 1 << 20 }, 8<<20, 2)
}

// With one pipe per loop, most directions find the pool empty and copy
// through the loop's buffer instead: the bytes must arrive all the same.
func TestDataIntegrityPipePoolExhausted(t *testing.T) {
	exchange(t, func(c *Config) { c.Runtime.MaxPipes = 1 }, 2<<20, 8)
}

func TestConcurrentStreams(t *testing.T) {
	exchange(t, nil, 64<<10, 1000)
}

func TestHalfClose(t *testing.T) {
	halfClose(t, nil)
}

// halfClose sends a request through a proxy of testConfig (changed by
// cfgMod, if not nil) and half-closes; the backend answers after that EOF.
// It checks the answer, and the bytes counted once the stream ended, and
// returns the proxy.
func halfClose(t *testing.T, cfgMod func(*Config)) *testProxy {
	t.Helper()
	b := startBackend(t, func(c *net.TCPConn) {
		// Read the whole request, then answer after the client's EOF.
		req, err := io.ReadAll(c)
		if err != nil {
			return
		}
		_, _ = c.Write(bytes.ToUpper(req))
		_, _ = c.Write([]byte(" done"))
	})
	cfg := testConfig(b.addr)
	if cfgMod != nil {
		cfgMod(cfg)
	}
	p := startProxy(t, cfg)
	c := dial(t, p.addr)
	req := bytes.Repeat([]byte("hello switchyard "), 10000)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after half-close: %v", err)
	}
	want := append(bytes.ToUpper(req), " done"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	st := waitEnded(t, p.srv, server.ReasonEOF, 1)
	if st.BytesUp != uint64(len(req)) || st.BytesDown != uint64(len(want)) {
		t.Errorf("bytes up/down = %d/%d, want %d/%d", st.BytesUp, st.BytesDown, len(req), len(want))
	}
	return p
}

func TestUpstreamResetPropagates(t *testing.T) { upstreamReset(t, nil) }

func TestClientResetPropagates(t *testing.T) { clientReset(t, nil) }

// upstreamReset runs a proxy of testConfig (changed by cfgMod, if not nil)
// in front of a backend that resets the stream after its first byte: the
// client sees the reset, and the stream ends for that reason.
func upstreamReset(t *testing.T, cfgMod func(*Config)) {
	t.Helper()
	b := startBackend(t, func(c *net.TCPConn) {
		var one [1]byte
		if _, err := io.ReadFull(c, one[:]); err != nil {
			return
		}
		_ = c.SetLinger(0)
	})
	cfg := testConfig(b.addr)
	if cfgMod != nil {
		cfgMod(cfg)
	}
	p := startProxy(t, cfg)
	c := dial(t, p.addr)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := expectClosed(t, c, 10*time.Second); !isReset(err) {
		t.Fatalf("client read: %v, want connection reset", err)
	}
	waitEnded(t, p.srv, server.ReasonReset, 1)
}

// clientReset is upstreamReset the other way: the client resets once the
// backend has its first byte, and the backend sees the reset.
func clientReset(t *testing.T, cfgMod func(*Config)) {
	t.Helper()
	gotByte := make(chan struct{})
	gotErr := make(chan error, 1)
	b := startBackend(t, func(c *net.TCPConn) {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var one [1]byte
		if _, err := io.ReadFull(c, one[:]); err != nil {
			gotErr <- err
			return
		}
		close(gotByte)
		_, err := io.Copy(io.Discard, c)
		gotErr <- err
	})
	cfg := testConfig(b.addr)
	if cfgMod != nil {
		cfgMod(cfg)
	}
	p := startProxy(t, cfg)
	c := dial(t, p.addr)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	<-gotByte // the stream is established end to end
	_ = c.SetLinger(0)
	c.Close()
	if err := <-gotErr; !isReset(err) {
		t.Fatalf("backend read: %v, want connection reset", err)
	}
	waitEnded(t, p.srv, server.ReasonReset, 1)
}

func TestRefusedEndpointRetriedOnAnother(t *testing.T) {
	b := startBackend(t, echo)
	cfg := testConfig(refusedAddr(t), b.addr)
	cfg.Routers[0].Client.FailureAccrual.ConsecutiveFailures = 0 // keep the refused one in play
	p := startProxy(t, cfg)
	const n = 40
	for i := 0; i < n; i++ {
		c := dial(t, p.addr)
		msg := []byte(fmt.Sprintf("message %d", i))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = c.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("connection %d: got %q, %v; want %q", i, got, err, msg)
		}
		c.Close()
	}
	st := waitEnded(t, p.srv, server.ReasonEOF, n)
	if st.Ended[server.ReasonConnectFailed] != 0 {
		t.Fatalf("%d connections failed to connect", st.Ended[server.ReasonConnectFailed])
	}
}

func TestAllEndpointsRefused(t *testing.T) {
	cfg := testConfig(refusedAddr(t), refusedAddr(t))
	p := startProxy(t, cfg)
	c := dial(t, p.addr)
	start := time.Now()
	_ = expectClosed(t, c, 5*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("client closed after %v; want promptly", d)
	}
	st := waitEnded(t, p.srv, server.ReasonConnectFailed, 1)
	if got := st.ConnectFailures[server.ConnectRefused]; got != 2 {
		t.Errorf("refused attempts = %d, want 2 (one per endpoint)", got)
	}
	if st.ConnectAttempts != 2 {
		t.Errorf("connect attempts = %d, want 2", st.ConnectAttempts)
	}
}

func TestNoEndpoints(t *testing.T) {
	p := startProxy(t, testConfig())
	c := dial(t, p.addr)
	_ = expectClosed(t, c, 5*time.Second)
	waitEnded(t, p.srv, server.ReasonNoEndpoints, 1)
}

// stalledListener returns the address of a listener whose accept queue is
// full, so the kernel drops further SYNs and connects to it never complete.
func stalledListener(t *testing.T) string {
	t.Helper()
	fd, addr := listenBacklog0(t)
	_ = fd
	// Fill the queue: with backlog 0 the kernel still admits one connection.
	var held []net.Conn
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		held = append(held, c)
	}
	if len(held) == 0 {
		t.Fatal("could not fill the accept queue")
	}
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	return addr
}

func TestConnectTimeout(t *testing.T) {
	addr := stalledListener(t)
	cfg := testConfig(addr)
	cfg.Routers[0].Servers[0].ConnectTimeout = 300 * time.Millisecond
	cfg.Routers[0].Client.ConnectTimeout = time.Second
	p := startProxy(t, cfg)
	c := dial(t, p.addr)
	start := time.Now()
	_ = expectClosed(t, c, 5*time.Second)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("closed after %v, before the 300ms connect timeout", d)
	}
	st := waitEnded(t, p.srv, server.ReasonConnectTimeout, 1)
	if got := st.ConnectFailures[server.ConnectTimeout]; got != 1 {
		t.Errorf("timed-out attempts = %d, want 1", got)
	}
}

func TestConnectAttemptTimeoutMovesOn(t *testing.T) {
	b := startBackend(t, echo)
	cfg := testConfig(stalledListener(t), b.addr)
	cfg.Routers[0].Client.ConnectTimeout = 100 * time.Millisecond
	cfg.Routers[0].Client.FailureAccrual.ConsecutiveFailures = 0
	p := startProxy(t, cfg)
	for i := 0; i < 10; i++ {
		c := dial(t, p.addr)
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		_ = c.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "ping" {
			t.Fatalf("connection %d: got %q, %v", i, got, err)
		}
	}
	waitEnded(t, p.srv, server.ReasonEOF, 10)
}

func TestIdleTimeout(t *testing.T) {
	idleTimeout(t, nil)
}

// idleTimeout runs a proxy of testConfig (changed by cfgMod, if not nil)
// with a 300 ms idle timeout: a stream that talks every 100 ms for a
// second stays open, then falls silent and is closed once the timeout
// passed, with its 40 bytes each way counted.
func idleTimeout(t *testing.T, cfgMod func(*Config)) {
	t.Helper()
	b := startBackend(t, echo)
	cfg := testConfig(b.addr)
	if cfgMod != nil {
		cfgMod(cfg)
	}
	cfg.Routers[0].Servers[0].IdleTimeout = 300 * time.Millisecond
	p := startProxy(t, cfg)

	// A stream that talks more often than the idle timeout stays open.
	busy := dial(t, p.addr)
	var buf [4]byte
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // the traffic pattern under test, not synchronisation
		if _, err := busy.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		_ = busy.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(busy, buf[:]); err != nil {
			t.Fatalf("busy stream closed: %v", err)
		}
	}
	start := time.Now()
	if got := p.srv.Stats().Ended[server.ReasonIdleTimeout]; got != 0 {
		t.Fatalf("busy stream idled out")
	}

	// A silent one is closed once the timeout passes.
	_ = expectClosed(t, busy, 5*time.Second)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("idle stream closed after %v, before its 300ms timeout", d)
	}
	st := waitEnded(t, p.srv, server.ReasonIdleTimeout, 1)
	if st.BytesUp != 40 || st.BytesDown != 40 {
		t.Errorf("bytes up/down = %d/%d, want 40/40", st.BytesUp, st.BytesDown)
	}
}

func TestLifetime(t *testing.T) {
	b := startBackend(t, echo)
	cfg := testConfig(b.addr)
	cfg.Routers[0].Servers[0].Lifetime = 400 * time.Millisecond
	p := startProxy(t, cfg)
	c := dial(t, p.addr)
	start := time.Now()
	// Keep the stream busy until the proxy ends it.
	go func() {
		chunk := make([]byte, 16<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := io.Copy(io.Discard, c)
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Errorf("stream ended after %v, before its 400ms lifetime", d)
	}
	if n == 0 {
		t.Errorf("no bytes flowed before the lifetime ended the stream")
	}
	waitEnded(t, p.srv, server.ReasonLifetime, 1)
}

func TestMaxConnections(t *testing.T) {
	b := startBackend(t, echo)
	cfg := testConfig(b.addr)
	cfg.Routers[0].Servers[0].MaxConnections = 5
	p := startProxy(t, cfg)
	roundTrip := func(c net.Conn, d time.Duration) error {
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(d))
		var one [1]byte
		_, err := io.ReadFull(c, one[:])
		return err
	}
	var open []net.Conn
	for i := 0; i < 5; i++ {
		c := dial(t, p.addr)
		if err := roundTrip(c, 5*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
	}
	// The kernel completes the handshake, but the proxy must not take the
	// sixth connection while five are open.
	extra := dial(t, p.addr)
	if err := roundTrip(extra, 300*time.Millisecond); err == nil {
		t.Fatal("sixth connection was served while max_connections=5 were open")
	}
	if a := p.srv.Stats().Active; a > 5 {
		t.Fatalf("active = %d, above max_connections", a)
	}
	open[0].Close()
	// Below the bound again: the waiting connection is taken and served.
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	var one [1]byte
	if _, err := io.ReadFull(extra, one[:]); err != nil {
		t.Fatalf("waiting connection not served after a slot freed: %v", err)
	}
	if st := p.srv.Stats(); st.PausedAtLimit == 0 {
		t.Errorf("PausedAtLimit = 0, want > 0")
	}
}

func TestNoLeaksAfter10000Connections(t *testing.T) {
	b := startBackend(t, echo)
	fds0, gr0 := openFDs(t, ""), goroutines()
	p, err := Start(testConfig(b.addr), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv := p.Routers()[0].Servers()[0]
	addr := srv.Addr().String()
	const total, workers = 10000, 32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := []byte("ping")
			var buf [4]byte
			for i := 0; i < total/workers; i++ {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				_, err = c.Write(msg)
				if err == nil {
					_, err = io.ReadFull(c, buf[:])
				}
				c.Close()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := uint64(total / workers * workers)
	waitFor(t, "every connection to end", 20*time.Second, func() bool {
		st := srv.Stats()
		var ended uint64
		for _, e := range st.Ended {
			ended += e
		}
		return st.Active == 0 && ended == n
	})
	st := srv.Stats()
	if st.Accepted != n {
		t.Errorf("accepted %d, want %d", st.Accepted, n)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	// Backend connections close asynchronously after the proxy's FINs.
	waitFor(t, "fds back to the baseline", 10*time.Second, func() bool { return openFDs(t, "") <= fds0 })
	waitFor(t, "goroutines back to the baseline", 10*time.Second, func() bool { return goroutines() <= gr0 })
}
