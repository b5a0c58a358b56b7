package router

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// BenchmarkAcceptToEstablished measures a whole short connection through a
// proxy (testConfig: two loops) in front of a loopback echo backend. Each op
// dials the proxy, writes a byte and reads it back, so the proxy has
// accepted, connected upstream and moved data both ways, then closes; the
// proxy's teardown of one connection overlaps the next op.
//
//   - serial: one client at a time: the latency of the whole exchange.
//   - parallel: b.RunParallel clients: connections per second under load.
//   - direct: serial, straight to the backend, with no proxy: the baseline
//     to subtract.
//
// allocs/op counts the whole process: most of it is the client's (net.Dial
// and its conn) and the Go backend's (accept, a goroutine per connection);
// compare with direct. The proxy reuses its streams and should add little.
//
// Every op leaves the client's socket in TIME_WAIT: runs past ~28,000
// connections a second to one address may exhaust the ephemeral ports.
func BenchmarkAcceptToEstablished(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		addr := startEchoProxy(b)
		b.ReportAllocs()
		var buf [1]byte
		for b.Loop() {
			if err := echoOne(addr, buf[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		addr := startEchoProxy(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var buf [1]byte
			for pb.Next() {
				if err := echoOne(addr, buf[:]); err != nil {
					b.Error(err) // not Fatal: this is not the benchmark's goroutine
					return
				}
			}
		})
	})
	// cached and new-name compare a connection to a cached name with one
	// to a name that is not: sixteen servers with a name each, taken in
	// turn, and room for all of them (cached) or for eight (new-name), so
	// that each bind of new-name evicts the least recently used name,
	// whose last connection the proxy closed eight connections ago, and
	// starts a new watch.
	b.Run("cached", func(b *testing.B) { benchmarkNames(b, 10000) })
	b.Run("new-name", func(b *testing.B) { benchmarkNames(b, 8) })
	b.Run("direct", func(b *testing.B) {
		addr := startBackend(b, echo).addr
		b.ReportAllocs()
		var buf [1]byte
		for b.Loop() {
			if err := echoOne(addr, buf[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// startEchoProxy starts an echo backend and a proxy in front of it, both
// stopped when b's run ends, and returns the proxy's address.
func startEchoProxy(b *testing.B) string {
	be := startBackend(b, echo)
	return startProxy(b, testConfig(be.addr)).addr
}

// echoOne dials addr, sends buf's byte, reads it back and closes.
func echoOne(addr string, buf []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(buf[:1]); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		return fmt.Errorf("read the echo: %w", err)
	}
	return nil
}

func benchmarkNames(b *testing.B, maxNames int) {
	be := startBackend(b, echo)
	cfg := testConfig(be.addr)
	r := &cfg.Routers[0]
	names := r.Interpreter.Settings.(*interpreter.StaticSettings).Names
	r.MaxNames = maxNames
	for i := 1; i < 16; i++ {
		dst := fmt.Sprintf("/svc/%d", i)
		names[dst] = names[testDst]
		srv := r.Servers[0]
		srv.Dst = dst
		r.Servers = append(r.Servers, srv)
	}
	p := startProxy(b, cfg)
	var addrs []string
	for _, s := range p.Routers()[0].Servers() {
		addrs = append(addrs, s.Addr().String())
	}
	b.ReportAllocs()
	var buf [1]byte
	i := 0
	for b.Loop() {
		if err := echoOne(addrs[i%len(addrs)], buf[:]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if n := p.Routers()[0].Binder().Len(); n > maxNames {
		b.Fatalf("%d names cached, want at most %d", n, maxNames)
	}
}
