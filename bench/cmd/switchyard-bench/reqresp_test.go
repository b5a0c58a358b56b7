package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

func TestReqresp(t *testing.T) {
	e := startTestEcho(t)
	cfg := reqrespConfig{Conns: 4, Window: 8, Size: 64, Duration: 300 * time.Millisecond}
	r, err := reqresp(context.Background(), e.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Conns != 4 || r.Errors != 0 {
		t.Fatalf("requests %d, conns %d, errors %d (first: %v); want some requests on 4 connections, no errors", r.Requests, r.Conns, r.Errors, r.FirstErr)
	}
	if got := e.accepted.Load(); got != 4 {
		t.Errorf("server accepted %d connections, want 4: opened once each", got)
	}
	if r.MaxInFlight != 8 {
		t.Errorf("at most %d requests in flight, want the window, 8", r.MaxInFlight)
	}
	if r.Elapsed < 300*time.Millisecond || r.perSecond() <= 0 {
		t.Errorf("elapsed %v, %f req/s", r.Elapsed, r.perSecond())
	}
	e.waitIdle(t)
}

// reqrespServer is an echo server for reqresp's tests that counts the
// bytes it echoes. Before echoing anything on a connection it waits until
// it has read hold bytes and then for stall, and records what it read by
// then: the client must have stopped at its window.
type reqrespServer struct {
	addr     string
	hold     int
	stall    time.Duration
	reply    func([]byte) []byte // what to send for what was read; nil: the same
	echoed   atomic.Int64
	mu       sync.Mutex
	firstRun []int          // per connection, the bytes read before the first echo
	wg       sync.WaitGroup // the connections' goroutines
}

func startReqrespServer(t *testing.T, hold int, stall time.Duration) *reqrespServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &reqrespServer{addr: ln.Addr().String(), hold: hold, stall: stall}
	var accept sync.WaitGroup
	accept.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(t, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		accept.Wait()
		s.wg.Wait()
	})
	return s
}

func (s *reqrespServer) serve(t *testing.T, c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	var held []byte
	for len(held) < s.hold {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		held = append(held, buf[:n]...)
	}
	// Whatever arrives during the stall overran the window.
	c.SetReadDeadline(time.Now().Add(s.stall))
	for {
		n, err := c.Read(buf)
		held = append(held, buf[:n]...)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			t.Errorf("server: read during the stall: %v", err)
			return
		}
	}
	c.SetReadDeadline(time.Time{})
	s.mu.Lock()
	s.firstRun = append(s.firstRun, len(held))
	s.mu.Unlock()
	for {
		out := held
		if s.reply != nil {
			out = s.reply(held)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		s.echoed.Add(int64(len(held)))
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		held = buf[:n]
	}
}

// TestReqrespWindow checks that each connection writes its window and
// then waits for replies, and that every reply is counted, no more.
func TestReqrespWindow(t *testing.T) {
	const conns, window, size = 3, 5, 32
	s := startReqrespServer(t, window*size, 100*time.Millisecond)
	r, err := reqresp(context.Background(), s.addr, reqrespConfig{Conns: conns, Window: window, Size: size, Duration: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.wg.Wait() // reqresp has closed its connections, so their goroutines end
	if !slices.Equal(s.firstRun, []int{window * size, window * size, window * size}) {
		t.Errorf("bytes read per connection before the first reply = %v, want %d each: the window", s.firstRun, window*size)
	}
	if r.MaxInFlight != window || r.Errors != 0 || r.Conns != conns {
		t.Errorf("result %+v, want %d in flight at most, %d connections, no errors", r, window, conns)
	}
	if got := s.echoed.Load(); got != r.Requests*size {
		t.Errorf("server echoed %d B, reqresp counted %d requests of %d B", got, r.Requests, size)
	}
}

// TestReqrespCleanStop checks that the load stops writing at the end,
// reads back what is outstanding, counts it, and closes every connection.
func TestReqrespCleanStop(t *testing.T) {
	e := startTestEcho(t)
	start := time.Now()
	r, err := reqresp(context.Background(), e.addr, reqrespConfig{Conns: 8, Window: 16, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("reqresp took %v for a 200ms run", took)
	}
	if r.Requests < 8*16 {
		t.Errorf("%d requests, want at least the first windows, %d", r.Requests, 8*16)
	}
	e.waitIdle(t)
}

func TestReqrespBadReply(t *testing.T) {
	s := startReqrespServer(t, 16, 0)
	s.reply = bytes.ToUpper
	r, err := reqresp(context.Background(), s.addr, reqrespConfig{Conns: 2, Window: 1, Size: 16, Duration: time.Second})
	if err == nil || r.Errors != 2 || !strings.Contains(r.FirstErr.Error(), "RRRR") {
		t.Fatalf("reqresp against a server that mangles replies = %+v, %v; want every connection failed on the reply", r, err)
	}
}

func TestReqrespRefused(t *testing.T) {
	if _, err := reqresp(context.Background(), closedAddr(t), reqrespConfig{Conns: 2, Duration: 50 * time.Millisecond}); err == nil {
		t.Fatal("reqresp to a closed port succeeded")
	}
}

func TestReqrespInterrupted(t *testing.T) {
	e := startTestEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := reqresp(ctx, e.addr, reqrespConfig{Conns: 4, Duration: time.Hour}); err == nil {
		t.Fatal("reqresp with an ended context succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("reqresp took %v to stop", took)
	}
	e.waitIdle(t)
}

// TestReqrespHangingServer checks that a server that stops answering
// fails the connections after the timeout instead of hanging the run.
func TestReqrespHangingServer(t *testing.T) {
	s := startReqrespServer(t, 1<<20, 0) // never echoes: waits for more than is sent
	r, err := reqresp(context.Background(), s.addr, reqrespConfig{Conns: 2, Window: 4, Duration: 50 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if err == nil || r.Errors != 2 || !errors.Is(r.FirstErr, os.ErrDeadlineExceeded) {
		t.Fatalf("reqresp against a silent server = %+v, %v; want every connection timed out", r, err)
	}
}

func TestReqrespFiguresContract(t *testing.T) {
	for _, f := range reqrespFigures {
		if len(f.name) > 64 || strings.Trim(f.name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("figure name %q would not pass switchyard-benchplot", f.name)
		}
		if _, ok := figureNamed(f.name); !ok {
			t.Errorf("figureNamed(%q) finds nothing", f.name)
		}
		if slices.ContainsFunc(figures, func(g figure) bool { return g.name == f.name }) {
			t.Errorf("%s is in the main catalogue too", f.name)
		}
	}
}

func TestWriteTableReqresp(t *testing.T) {
	targets := []string{targetDirect, targetSwitchyard, targetHAProxy}
	s := benchsummary.Summary{Targets: targets, Figures: summarize(targets, []sample{
		{1, targetDirect, figReqrespPerSec, 400000}, {1, targetSwitchyard, figReqrespPerSec, 300000}, {1, targetHAProxy, figReqrespPerSec, 200000},
		{1, targetSwitchyard, figReqrespCPU, 2.5}, {1, targetHAProxy, figReqrespCPU, 4},
		{2, targetDirect, figReqrespPerSec, 420000}, {2, targetSwitchyard, figReqrespPerSec, 320000}, {2, targetHAProxy, figReqrespPerSec, 220000},
		{2, targetSwitchyard, figReqrespCPU, 2.7}, {2, targetHAProxy, figReqrespCPU, 4.2},
		{1, targetDirect, figReqresp1KPerSec, 100000}, {1, targetSwitchyard, figReqresp1KPerSec, 90000}, {1, targetSwitchyard, figReqresp1KCPU, 3},
	})}
	var b bytes.Buffer
	writeTable(&b, s)
	out := b.String()
	for _, want := range []string{
		"### Request/response rate\n\n| figure | direct | switchyard | haproxy |\n",
		"| requests/s, 64 B replies ↑ | 410000 (400000–420000) | 310000 (300000–320000) · 76% | 210000 (200000–220000) · 51% |\n",
		"| CPU µs/request, 64 B replies ↓ | – | 2.600 (2.500–2.700) | 4.100 (4.000–4.200) |\n",
		"| requests/s, 1 KiB replies ↑ | 100000 | 90000 · 90% | – |\n",
		"| CPU µs/request, 1 KiB replies ↓ | – | 3.000 | – |\n",
		"50 connections opened once, each with 16 requests of 64 B in flight",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Cells:") {
		t.Errorf("main table printed without a figure of its own:\n%s", out)
	}
}

// The 1 KiB shape against the real switchyard-echo (built from the router
// module): 64 B requests of reqrespAmplified get replies sixteen times
// their size, which the workers check byte for byte.
func TestReqrespAmplifiedAgainstSwitchyardEcho(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchyard-echo")
	build := exec.Command("go", "build", "-o", bin, "github.com/switchyard-proxy/switchyard/cmd/switchyard-echo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building switchyard-echo: %v\n%s", err, out)
	}
	addr := closedAddr(t)
	echo, err := startChild("switchyard-echo", filepath.Join(dir, "echo.log"), bin, "-listen", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.stop() })
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if err := waitListening(context.Background(), echo, []int{p}, startTimeout); err != nil {
		t.Fatal(err)
	}
	for _, amplified := range []bool{false, true} {
		cfg := reqrespConfig{Conns: 4, Window: 8, Amplified: amplified, Duration: 300 * time.Millisecond}
		r, err := reqresp(context.Background(), addr, cfg)
		if err != nil {
			t.Fatalf("amplified %v: %v", amplified, err)
		}
		if r.Requests == 0 || r.Errors != 0 {
			t.Fatalf("amplified %v: %d requests, %d errors (first: %v)", amplified, r.Requests, r.Errors, r.FirstErr)
		}
	}
}
