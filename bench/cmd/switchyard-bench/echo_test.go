package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testEcho is an echo server on 127.0.0.1:0 that counts its connections.
type testEcho struct {
	addr     string
	accepted atomic.Int64
	active   atomic.Int64
	closed   chan struct{} // gets a value each time a connection ends
}

func startTestEcho(t *testing.T) *testEcho {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &testEcho{addr: ln.Addr().String(), closed: make(chan struct{}, 1<<16)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("accept: %v", err)
				}
				return
			}
			e.accepted.Add(1)
			e.active.Add(1)
			wg.Go(func() { e.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return e
}

// serve echoes with a plain buffer: no splice, so one fd per connection.
func (e *testEcho) serve(c net.Conn) {
	defer func() {
		c.Close()
		e.active.Add(-1)
		e.closed <- struct{}{}
	}()
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 4096))
}

// waitIdle waits until the server has no connection left.
func (e *testEcho) waitIdle(t *testing.T) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for e.active.Load() > 0 {
		select {
		case <-e.closed:
		case <-timeout:
			t.Fatalf("echo server still has %d connections", e.active.Load())
		}
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
