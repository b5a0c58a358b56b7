package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSwitchyardReloads runs the whole measurement against a freshly built
// Switchyard: three reloads (A -> B -> A -> B) under four client loops must
// fail no connection and leave it forwarding to B.
func TestSwitchyardReloads(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "switchyard")
	// Built in the router's module, at the root of this repository.
	build := exec.Command("go", "build", "-o", bin, "./cmd/switchyard")
	build.Dir = "../../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	be, err := startBackends()
	if err != nil {
		t.Fatal(err)
	}
	defer be.close()

	o := defaultOptions()
	o.reloads, o.clients, o.settle = 3, 4, 50*time.Millisecond
	o.warmup, o.quiet = 100*time.Millisecond, 200*time.Millisecond
	o.tmpRoot = t.TempDir()
	o.logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := benchPeer(ctx, switchyardPeer(bin), be, o)

	if r.skipped != "" || r.failed != "" {
		t.Fatalf("skipped %q, failed %q; notes %v", r.skipped, r.failed, r.notes)
	}
	if r.reloads != 3 || r.logReloads != 3 {
		t.Errorf("reloads signalled %d, logged %d; want 3 and 3", r.reloads, r.logReloads)
	}
	for _, ph := range []struct {
		name string
		s    phaseStats
	}{{"base", r.base}, {"reload", r.reload}} {
		if n := ph.s.failedTotal(); n != 0 {
			t.Errorf("%s: %d failed (%s); samples %v", ph.name, n, failedByKind(ph.s), r.samples)
		}
		if ph.s.served == 0 {
			t.Errorf("%s: no connection served", ph.name)
		}
	}
	if !r.effectOK || r.effect != "yes" {
		t.Errorf("last change took effect: %q", r.effect)
	}
	for _, n := range r.notes {
		// A warning in its log is reported, not fatal; a bad stop or exit is.
		if strings.HasPrefix(n, "stop:") || strings.HasPrefix(n, "exited") {
			t.Errorf("note: %s", n)
		} else {
			t.Logf("note: %s", n)
		}
	}
	rep := formatReport([]peerResult{r}, o, time.Now())
	if !strings.Contains(rep, "| switchyard | 3 / 3 | ") || !strings.Contains(rep, " | 0 | 0 | ") {
		t.Errorf("report:\n%s", rep)
	}
	if left, _ := os.ReadDir(o.tmpRoot); len(left) != 0 {
		t.Errorf("temp dirs left behind: %v", left)
	}
}

func TestDialTagKinds(t *testing.T) {
	serve := func(t *testing.T, handle func(*net.TCPConn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		t.Cleanup(func() { ln.Close(); <-done })
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				handle(c.(*net.TCPConn))
			}
		}()
		return ln.Addr().String()
	}
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	closed, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		addr string
		kind uint8
		tag  byte
	}{
		{"ok", serve(t, func(c *net.TCPConn) { c.Write([]byte("B\n")); c.Close() }), kindOK, 'B'},
		{"refused", fmt.Sprintf("127.0.0.1:%d", closed), kindRefused, 0},
		{"eof", serve(t, func(c *net.TCPConn) { c.Close() }), kindEOF, 0},
		{"reset", serve(t, func(c *net.TCPConn) { c.SetLinger(0); c.Close() }), kindReset, 0},
		{"timeout", serve(t, func(c *net.TCPConn) { held = append(held, c) }), kindTimeout, 0},
		{"bad tag", serve(t, func(c *net.TCPConn) { c.Write([]byte("hello\n")); c.Close() }), kindBadTag, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag, kind, err := dialTag(tc.addr, 300*time.Millisecond)
			if kind != tc.kind || tag != tc.tag {
				t.Errorf("got %s %q (%v), want %s %q", kindNames[kind], tag, err, kindNames[tc.kind], tc.tag)
			}
		})
	}
}

func TestPhaseStats(t *testing.T) {
	ms := time.Millisecond
	recs := []record{
		{start: 0, end: 1 * ms, kind: kindOK, tag: 'A'},
		{start: 1 * ms, end: 2 * ms, kind: kindOK, tag: 'A'},
		{start: 2 * ms, end: 3 * ms, kind: kindReset},
		{start: 3 * ms, end: 10 * ms, kind: kindOK, tag: 'B'},
		{start: 10 * ms, end: 11 * ms, kind: kindRefused},
		{start: 20 * ms, end: 21 * ms, kind: kindOK, tag: 'B'}, // outside
	}
	s := phase(recs, 0, 15*ms)
	if s.served != 3 || s.failed[kindReset] != 1 || s.failed[kindRefused] != 1 || s.failedTotal() != 2 {
		t.Errorf("served %d failed %v", s.served, s.failed)
	}
	// successes end at 1, 2 and 10 ms; the window ends at 15 ms
	if s.maxGap != 8*ms || s.gapAt != 2*ms {
		t.Errorf("max gap %v at %v, want 8ms at 2ms", s.maxGap, s.gapAt)
	}
	if got := gapWhere(s, []time.Duration{1 * ms, 5 * ms}); got != "began 1.0 ms after reload signal 1" {
		t.Errorf("gapWhere = %q", got)
	}
	if s.p50 != 1*ms || s.p99 != 7*ms {
		t.Errorf("p50 %v p99 %v, want 1ms 7ms", s.p50, s.p99)
	}
	if got := failedByKind(s); got != "1 refused, 1 reset" {
		t.Errorf("failedByKind = %q", got)
	}
	if g, at := maxGap(nil, 5*ms, 9*ms); g != 4*ms || at != 5*ms {
		t.Errorf("empty phase gap %v at %v, want 4ms at 5ms", g, at)
	}
	if g, at := maxGap([]time.Duration{6 * ms, 12 * ms}, 5*ms, 9*ms); g != 3*ms || at != 6*ms {
		t.Errorf("gap %v at %v, want 3ms at 6ms (ends past the window count up to its end)", g, at)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("percentile of nothing = %v", p)
	}
}

func TestParseOnly(t *testing.T) {
	if got, err := parseOnly(" nginx,switchyard "); err != nil || strings.Join(got, ",") != "nginx,switchyard" {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "envoy", "nginx,nginx"} {
		if _, err := parseOnly(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestPeerConfigs has the installed haproxy and nginx check the
// configurations the benchmark writes for them.
func TestPeerConfigs(t *testing.T) {
	for _, p := range []*peer{haproxyPeer("haproxy"), nginxPeer("nginx")} {
		t.Run(p.name, func(t *testing.T) {
			if p.skip != "" {
				t.Skip(p.skip)
			}
			dir := t.TempDir()
			conf := filepath.Join(dir, p.confName)
			if err := os.WriteFile(conf, []byte(p.config(dir, "127.0.0.1:1", "127.0.0.1:2")), 0o644); err != nil {
				t.Fatal(err)
			}
			argv := p.check(dir, conf)
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Errorf("%v: %v\n%s", argv, err, out)
			}
		})
	}
}
