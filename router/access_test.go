package router

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/server"
)

// Every closed stream is one access line, with what happened to it; the
// lines reach the file by the time Stop returns.
func TestAccessLog(t *testing.T) {
	b := startBackend(t, echo)
	path := filepath.Join(t.TempDir(), "access.log")
	cfg := testConfig(b.addr)
	cfg.Log = LogConfig{Access: true, AccessPath: path}
	p, err := StartWith(cfg, discardLogger(), Options{AccessHandler: func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := p.Routers()[0].Servers()[0]
	c := dial(t, srv.Addr().String())
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "hello" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	waitEnded(t, srv, server.ReasonEOF, 1)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 1 {
		t.Fatalf("%d access lines, want 1: %v", len(lines), lines)
	}
	l := lines[0]
	want := map[string]any{
		"msg": "access", "router": "test", "server": srv.Addr().String(), "source": c.LocalAddr().String(),
		"dst": testDst, "endpoint": b.addr, "bytes_up": float64(5), "bytes_down": float64(5), "reason": "eof",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, l[k], v, l)
		}
	}
	if d, ok := l["duration"].(float64); !ok || d <= 0 || time.Duration(d) > time.Minute {
		t.Errorf("duration %v", l["duration"])
	}
}

// A writer that falls behind never holds up a stream: lines past the
// queue are dropped and counted, and the count is logged.
func TestAccessLogDropsWhenTheWriterIsStuck(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, err := newAccessLog("", func(io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) })
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads the pipe: once its buffer is full the writer blocks.
	for range accessQueue + 100_000 {
		a.record(accessRecord{router: "r", dst: strings.Repeat("x", 100)})
	}
	if a.dropped.Load() == 0 {
		t.Fatal("nothing dropped with the writer stuck")
	}
	out := make(chan string, 1)
	go func() { // unsticks the writer; ends when w is closed
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if text := <-out; !strings.Contains(text, "access log lines dropped: the writer fell behind") {
		t.Errorf("the drops were not logged; the log ends:\n%s", text[max(0, len(text)-500):])
	}
}

// When the proxy stops, every open stream ends at once: their lines wait
// for room instead of being dropped.
func TestAccessLogKeepsTheLinesOfAStop(t *testing.T) {
	defer func(size int) { accessQueue = size }(accessQueue)
	accessQueue = 64
	b := startBackend(t, echo)
	path := filepath.Join(t.TempDir(), "access.log")
	cfg := testConfig(b.addr)
	cfg.Runtime.Workers = 1
	cfg.Log = LogConfig{Access: true, AccessPath: path}
	p, err := Start(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv := p.Routers()[0].Servers()[0]
	// More open streams than the queue holds, cut by the stop.
	n := accessQueue + 500
	for range n {
		dial(t, srv.Addr().String())
	}
	waitFor(t, "streams open", 30*time.Second, func() bool { return srv.Open() >= int64(n) })
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "msg=access"); lines != n {
		t.Errorf("%d access lines for %d streams cut by the stop", lines, n)
	}
	if strings.Contains(string(data), "dropped") {
		t.Error("lines were dropped at the stop")
	}
}
