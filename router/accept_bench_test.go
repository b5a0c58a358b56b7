package router

import (
	"fmt"
	"io"
	"net"
	"testing"
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
