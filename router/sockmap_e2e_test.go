package router

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-proxy/switchyard/duplex"
	"github.com/switchyard-proxy/switchyard/server"
)

// offloaded has the test's server hand its streams to the kernel; the test
// is skipped where that cannot be done (no root, no sockmap), and fails if
// a stream falls back to splice for a reason other than those allowed,
// or if none was offloaded.
func offloaded(t *testing.T, cfg *Config, allowed ...string) *Config {
	t.Helper()
	if err := duplex.OffloadSupported(); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("no sockmap offload without root: %v", err)
		}
		t.Fatalf("root cannot load the sockmap offload: %v", err)
	}
	cfg.Routers[0].Servers[0].Offload = OffloadSockmap
	before, started := duplex.OffloadFallbacks(), duplex.OffloadsStarted()
	t.Cleanup(func() {
		for reason, n := range duplex.OffloadFallbacks() {
			if n != before[reason] && !slices.Contains(allowed, reason) {
				t.Errorf("%d streams were spliced instead (%s)", n-before[reason], reason)
			}
		}
		if duplex.OffloadsStarted() == started {
			t.Errorf("no stream was offloaded")
		}
	})
	return cfg
}

func TestOffloadConfig(t *testing.T) {
	cfg, err := Parse([]byte(configEdit(t, `idle_timeout = "1m"`, `idle_timeout = "1m"`+"\n  offload = \"sockmap\"")))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Routers[0].Servers[1].Offload; got != OffloadSockmap {
		t.Errorf("offload = %q, want sockmap", got)
	}
	if got := cfg.Routers[0].Servers[0].Offload; got != "" {
		t.Errorf("offload left out = %q, want \"\" (splice)", got)
	}
	if got := cfg.Routers[0].Servers[1].OffloadAfter; got != defaultOffloadAfter {
		t.Errorf("offload_after left out = %d, want %d", got, defaultOffloadAfter)
	}
	cfg, err = Parse([]byte(configEdit(t, `idle_timeout = "1m"`, `idle_timeout = "1m"`+"\n  offload = \"sockmap\"\n  offload_after = 0")))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Routers[0].Servers[1].OffloadAfter; got != 0 {
		t.Errorf("offload_after = %d, want 0", got)
	}
	for value, want := range map[string]string{
		`offload = "ebpf"`:      `routers[0].servers[1].offload: "ebpf" is not one of "", "sockmap"`,
		`offload_after = -1`:    `routers[0].servers[1].offload_after: must be between 0 and 10000, got -1`,
		`offload_after = 1e9`:   `routers[0].servers[1].offload_after`,
		`offload_after = "8"`:   `routers[0].servers[1].offload_after`,
		`offload_after = 10001`: `routers[0].servers[1].offload_after: must be between 0 and 10000, got 10001`,
	} {
		_, err = Parse([]byte(configEdit(t, `idle_timeout = "1m"`, `idle_timeout = "1m"`+"\n  "+value)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Parse: %v, want %s", value, err, want)
		}
	}
}

// roundTrip writes msg and reads its echo back.
func roundTrip(t *testing.T, c *net.TCPConn, msg []byte) {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs")
	}
}

// A stream is spliced for its first offload_after batches, then handed to
// the kernel between two batches, and keeps its bytes counted across.
func TestOffloadPromotesLongStreams(t *testing.T) {
	b := startBackend(t, echo)
	cfg := offloaded(t, testConfig(b.addr))
	cfg.Routers[0].Servers[0].OffloadAfter = 4 // a round trip is two batches
	p := startProxy(t, cfg)
	started := duplex.OffloadsStarted()
	c := dial(t, p.addr)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	msg := []byte("0123456789abcdef")
	roundTrip(t, c, msg)
	if duplex.OffloadsStarted() != started {
		t.Fatal("offloaded after 2 batches, want after 4")
	}
	roundTrip(t, c, msg)
	// The fourth batch's pump handed the stream over after writing the
	// reply; the third round trip goes through the kernel.
	for range 20 {
		roundTrip(t, c, msg)
	}
	// The count is taken after the kernel's maps are in place, so the
	// stream may have moved bytes through them before it.
	waitFor(t, "the stream offloaded", 10*time.Second, func() bool { return duplex.OffloadsStarted() > started })
	if got := duplex.OffloadsStarted(); got != started+1 {
		t.Fatalf("offloaded %d streams, want 1", got-started)
	}
	big := randomBytes(t, 1<<20)
	roundTrip(t, c, big)
	_ = c.Close()
	st := waitEnded(t, p.srv, server.ReasonEOF, 1)
	want := uint64(22*len(msg) + len(big))
	if st.BytesUp != want || st.BytesDown != want {
		t.Errorf("bytes up/down = %d/%d, want %d each", st.BytesUp, st.BytesDown, want)
	}
}

// A stream that ends within offload_after batches never pays for the
// offload.
func TestOffloadSkipsShortStreams(t *testing.T) {
	b := startBackend(t, echo)
	cfg := offloaded(t, testConfig(b.addr))
	cfg.Routers[0].Servers[0].OffloadAfter = 8
	p := startProxy(t, cfg)
	started := duplex.OffloadsStarted()
	for range 5 {
		c := dial(t, p.addr)
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		for range 3 {
			roundTrip(t, c, []byte("ping"))
		}
		_ = c.Close()
	}
	st := waitEnded(t, p.srv, server.ReasonEOF, 5)
	if got := duplex.OffloadsStarted(); got != started {
		t.Errorf("offloaded %d short streams, want none", got-started)
	}
	if st.BytesUp != 60 || st.BytesDown != 60 {
		t.Errorf("bytes up/down = %d/%d, want 60 each", st.BytesUp, st.BytesDown)
	}
	// One that goes on is offloaded (and satisfies offloaded's check).
	c := dial(t, p.addr)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	for range 6 {
		roundTrip(t, c, []byte("ping"))
	}
	waitFor(t, "the long stream offloaded", 10*time.Second, func() bool { return duplex.OffloadsStarted() > started })
	if got := duplex.OffloadsStarted(); got != started+1 {
		t.Errorf("offloaded %d long streams, want 1", got-started)
	}
}

// Streams handed over while requests are in flight both ways: whatever
// arrived between the loop's last read and the hand-over is forwarded,
// in order. Pipelined requests of random sizes, checked by hash.
func TestOffloadPromotedInFlight(t *testing.T) {
	b := startBackend(t, echo)
	cfg := offloaded(t, testConfig(b.addr))
	cfg.Routers[0].Servers[0].OffloadAfter = 2
	p := startProxy(t, cfg)
	const streams, size = 4, 2 << 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*streams)
	for range streams {
		sent := randomBytes(t, size)
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
				var err error
				for rest, k := sent, 0; len(rest) > 0 && err == nil; k++ {
					n := min(len(rest), 1+(k*7919)%4096) // requests of 1 B to 4 KiB
					_, err = c.Write(rest[:n])
					rest = rest[n:]
				}
				wrote <- err
			}()
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			got := make([]byte, len(sent))
			if _, err := io.ReadFull(c, got); err != nil {
				errs <- fmt.Errorf("read: %w", err)
			} else if sum(got) != sum(sent) {
				errs <- errors.New("echo differs")
			}
			if err := <-wrote; err != nil {
				errs <- fmt.Errorf("write: %w", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := waitEnded(t, p.srv, server.ReasonEOF, streams)
	if st.BytesUp != streams*size || st.BytesDown != streams*size {
		t.Errorf("bytes up/down = %d/%d, want %d each", st.BytesUp, st.BytesDown, streams*size)
	}
}

// Bytes both ways, each stream half-closed by both ends, counted into the
// server's bytes. Both ends send at once, all they have: a stream whose
// client's FIN came before the upstream connected is spliced.
func TestOffloadExchange(t *testing.T) {
	exchange(t, func(c *Config) { offloaded(t, c, duplex.FallbackState, duplex.FallbackBusy) }, 4<<20, 8)
}

func TestOffloadHalfClose(t *testing.T) {
	offloadedBefore := duplex.OffloadsStarted()
	p := halfClose(t, func(c *Config) { offloaded(t, c) })
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector("test"))
	// The metrics count it, and have every fallback reason.
	if got := sample(t, reg, "switchyard_offloaded_streams_total"); got != float64(offloadedBefore+1) {
		t.Errorf("offloaded streams %v, want %v", got, offloadedBefore+1)
	}
	for reason := range duplex.OffloadFallbacks() {
		_ = sample(t, reg, `switchyard_offload_fallbacks_total{reason="`+reason+`"}`)
	}
}

func TestOffloadResetPropagates(t *testing.T) {
	t.Run("upstream resets", func(t *testing.T) { upstreamReset(t, func(c *Config) { offloaded(t, c) }) })
	t.Run("client resets", func(t *testing.T) { clientReset(t, func(c *Config) { offloaded(t, c) }) })
}

// A stream busier than its idle timeout stays open, with no byte batch
// waking the loop; a silent one is closed once the timeout has passed.
func TestOffloadIdleTimeout(t *testing.T) {
	t.Run("at connect", func(t *testing.T) { idleTimeout(t, func(c *Config) { offloaded(t, c) }) })
	// Promoted after two batches: the idle clock goes on from the
	// spliced batches to the kernel's.
	t.Run("promoted", func(t *testing.T) {
		idleTimeout(t, func(c *Config) { offloaded(t, c).Routers[0].Servers[0].OffloadAfter = 2 })
	})
}

func TestOffloadLifetime(t *testing.T) {
	b := startBackend(t, echo)
	cfg := offloaded(t, testConfig(b.addr))
	cfg.Routers[0].Servers[0].Lifetime = 300 * time.Millisecond
	p := startProxy(t, cfg)
	c := dial(t, p.addr)
	start := time.Now()
	if err := expectClosed(t, c, 5*time.Second); err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("read: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("closed after %v, before its 300ms lifetime", d)
	}
	waitEnded(t, p.srv, server.ReasonLifetime, 1)
}

// Every descriptor an offloaded stream opened (its sockets and their
// duplicates) is closed once the stream ends. Sockets are counted: Go's
// splice pipes (the echo backend's) come and go on their own.
func TestOffloadClosesDescriptors(t *testing.T) {
	b := startBackend(t, echo)
	p := startProxy(t, offloaded(t, testConfig(b.addr)))
	before := socketFDs(t)
	const n = 50
	for i := range n {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		// A reply before the half-close: a client that sends its FIN
		// before the upstream is connected is spliced.
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		var buf [4]byte
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(got) != 0 {
			t.Fatalf("connection %d: got %q after the echo, %v", i, got, err)
		}
	}
	st := waitEnded(t, p.srv, server.ReasonEOF, n)
	if st.BytesUp != 4*n || st.BytesDown != 4*n {
		t.Errorf("bytes up/down = %d/%d, want %d each", st.BytesUp, st.BytesDown, 4*n)
	}
	waitFor(t, "sockets back to where they were", 5*time.Second, func() bool { return socketFDs(t) <= before })
}

// A PROXY header read off the client's first segment does not reach the
// endpoint: the kernel forwards whole segments, so what follows the header
// in that segment is moved before the offload.
func TestOffloadAfterProxyHeader(t *testing.T) {
	b := startBackend(t, echo)
	p := startProxy(t, offloaded(t, proxyConfig(b.addr, "127.0.0.1:0", "v2", "", "127.0.0.0/8")))
	c := dial(t, p.addr)
	_ = c.SetDeadline(time.Now().Add(e2eWait))
	payload := []byte("after the header, in the same segment")
	if _, err := c.Write(append(server.AppendProxy(nil, server.ProxyV2, hdrSrc4, hdrDst4), payload...)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo: %q, %v; want %q", got, err, payload)
	}
	more := randomBytes(t, 1<<20)
	go func() { _, _ = c.Write(more); _ = c.CloseWrite() }()
	back, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(back, more) {
		t.Fatalf("echo after the offload: %d bytes, %v; want %d", len(back), err, len(more))
	}
	st := waitEnded(t, p.srv, server.ReasonEOF, 1)
	if want := uint64(len(payload) + len(more)); st.BytesUp != want || st.BytesDown != want {
		t.Errorf("bytes up/down = %d/%d, want %d each", st.BytesUp, st.BytesDown, want)
	}
}

// Bytes that StartOffload moved itself (those after a PROXY header) before
// the kernel declined the stream are in its access line and in the
// server's counts. A client that half-closes right after its first bytes
// is declined (its socket is no longer ESTABLISHED), once its FIN is in by
// the time the upstream connects; one that waits for its echo first is
// offloaded.
func TestOffloadDeclinedBytesCounted(t *testing.T) {
	b := startBackend(t, echo)
	p, path := startAccessProxy(t, offloaded(t, proxyConfig(b.addr, "127.0.0.1:0", "v2", "", "127.0.0.0/8"), duplex.FallbackState))
	payload := []byte("after the header, in the same segment")
	conn := func(closeFirst bool) {
		c := dial(t, p.addr)
		_ = c.SetDeadline(time.Now().Add(e2eWait))
		if _, err := c.Write(append(server.AppendProxy(nil, server.ProxyV2, hdrSrc4, hdrDst4), payload...)); err != nil {
			t.Fatal(err)
		}
		if closeFirst {
			_ = c.CloseWrite()
		} else if _, err := io.ReadFull(c, make([]byte, len(payload))); err != nil {
			t.Fatal(err)
		} else {
			_ = c.CloseWrite()
		}
		if _, err := io.ReadAll(c); err != nil {
			t.Fatal(err)
		}
	}
	conn(false)
	declined := duplex.OffloadFallbacks()[duplex.FallbackState]
	n := 1
	for ; n <= 20 && duplex.OffloadFallbacks()[duplex.FallbackState] == declined; n++ {
		conn(true)
	}
	if duplex.OffloadFallbacks()[duplex.FallbackState] == declined {
		t.Fatalf("no stream of %d declined", n-1)
	}
	st := waitEnded(t, p.srv, server.ReasonEOF, uint64(n))
	if want := uint64(n * len(payload)); st.BytesUp != want || st.BytesDown != want {
		t.Errorf("bytes up/down = %d/%d, want %d each", st.BytesUp, st.BytesDown, want)
	}
	for _, l := range accessLines(t, path, n) {
		if l["bytes_up"] != float64(len(payload)) || l["bytes_down"] != float64(len(payload)) {
			t.Errorf("access line bytes up/down = %v/%v, want %d each", l["bytes_up"], l["bytes_down"], len(payload))
		}
	}
}
