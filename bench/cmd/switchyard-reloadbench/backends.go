package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// backends are the two loopback servers, A (index 0) and B (index 1).
type backends struct {
	addr  [2]string
	lns   [2]net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

var tags = [2]byte{'A', 'B'}

func startBackends() (*backends, error) {
	b := &backends{conns: make(map[net.Conn]struct{})}
	for i := range b.lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.close()
			return nil, err
		}
		b.lns[i], b.addr[i] = ln, ln.Addr().String()
	}
	for i, ln := range b.lns {
		b.wg.Add(1)
		go b.serve(ln, tags[i])
	}
	return b, nil
}

func (b *backends) serve(ln net.Listener, tag byte) {
	defer b.wg.Done()
	line := []byte{tag, '\n'}
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off a little and go on.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		b.mu.Lock()
		if b.done {
			b.mu.Unlock()
			c.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				c.Close()
			}()
			if _, err := c.Write(line); err != nil {
				return
			}
			_, _ = io.Copy(c, c)
		}()
	}
}

func (b *backends) close() {
	b.mu.Lock()
	b.done = true
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	for _, ln := range b.lns {
		if ln != nil {
			ln.Close()
		}
	}
	b.wg.Wait()
}

// ---------------------------------------------------------------- peers
