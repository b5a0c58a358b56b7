package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Failure kinds; kindOK is a connection that read its tag.
const (
	kindOK uint8 = iota
	kindRefused
	kindReset
	kindEOF
	kindTimeout
	kindBadTag
	kindOther
	nKinds
)

var kindNames = [nKinds]string{"ok", "refused", "reset", "eof", "timeout", "bad tag", "other"}

// record is one client connection; times are since the run's t0.
type record struct {
	start, end time.Duration
	kind       uint8
	tag        byte
}

// dialTag connects to addr, reads the tag line, and closes with
// SO_LINGER 0 (an RST, so no TIME_WAIT piles up on the client side).
func dialTag(addr string, timeout time.Duration) (byte, uint8, error) {
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, classify(err), err
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetLinger(0)
	defer tc.Close()
	if err := tc.SetDeadline(deadline); err != nil {
		return 0, kindOther, err
	}
	var buf [8]byte
	n := 0
	for {
		m, err := tc.Read(buf[n:])
		n += m
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			if i != 1 || (buf[0] != 'A' && buf[0] != 'B') {
				return 0, kindBadTag, fmt.Errorf("tag line %q", buf[:i])
			}
			return buf[0], kindOK, nil
		}
		if n == len(buf) {
			return 0, kindBadTag, fmt.Errorf("no tag line in %q", buf[:n])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, kindEOF, err
			}
			return 0, classify(err), err
		}
	}
}

func classify(err error) uint8 {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return kindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return kindReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return kindEOF
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	}
	return kindOther
}

// clientPool runs the client loops until stop.
type clientPool struct {
	stopping atomic.Bool
	wg       sync.WaitGroup
	recs     [][]record
	errs     []map[uint8]string // a sample error message per kind, per client
}

func startClients(n int, addr string, t0 time.Time, timeout time.Duration) *clientPool {
	p := &clientPool{recs: make([][]record, n), errs: make([]map[uint8]string, n)}
	for i := range n {
		p.errs[i] = make(map[uint8]string)
		p.recs[i] = make([]record, 0, 1<<14)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for !p.stopping.Load() {
				start := time.Since(t0)
				tag, kind, err := dialTag(addr, timeout)
				p.recs[i] = append(p.recs[i], record{start: start, end: time.Since(t0), kind: kind, tag: tag})
				if err != nil {
					if _, ok := p.errs[i][kind]; !ok {
						p.errs[i][kind] = err.Error()
					}
					// A refused connect returns at once; do not spin.
					if kind == kindRefused {
						time.Sleep(time.Millisecond)
					}
				}
			}
		}()
	}
	return p
}

// stop ends the loops and returns every record, by start time, and a
// sample error per failure kind.
func (p *clientPool) stop() ([]record, map[uint8]string) {
	p.stopping.Store(true)
	p.wg.Wait()
	var all []record
	samples := make(map[uint8]string)
	for i, r := range p.recs {
		all = append(all, r...)
		for k, e := range p.errs[i] {
			if _, ok := samples[k]; !ok {
				samples[k] = e
			}
		}
	}
	slices.SortFunc(all, func(a, b record) int { return int(a.start - b.start) })
	return all, samples
}

// ---------------------------------------------------------------- statistics
