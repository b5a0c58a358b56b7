package main

import (
	"context"
	"net"
	"strings"
	"testing"
)

func TestRTT(t *testing.T) {
	e := startTestEcho(t)
	r, err := rtt(context.Background(), e.addr, rttConfig{N: 2000, Size: 64, Warmup: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.P999 && r.P999 <= r.Max) {
		t.Fatalf("percentiles not ordered: %+v", r)
	}
	if got := e.accepted.Load(); got != 1 {
		t.Errorf("rtt opened %d connections, want 1 persistent one", got)
	}
}

// TestRTTShortEcho checks that a server that stops echoing is an error,
// not a hang.
func TestRTTShortEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Write(buf[:n/2])
		c.Close()
	}()
	_, err = rtt(context.Background(), ln.Addr().String(), rttConfig{N: 10, Size: 64})
	if err == nil || !strings.Contains(err.Error(), "round trip") {
		t.Fatalf("rtt against a short echo: %v, want a round-trip error", err)
	}
}
