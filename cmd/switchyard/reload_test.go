package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// End-to-end tests of configuration reload (SIGHUP, POST /reload) on the
// real binary: traffic follows the new file, listeners whose address is
// unchanged are kept (no client refused or reset during a reload), added
// servers listen, removed ones stop accepting while their streams run on,
// a failed reload changes nothing and logs every problem, systemd hears
// RELOADING=1 then READY=1.

// reloadAwait bounds the wait for one reload's outcome in the log.
const reloadAwait = 10 * time.Second

// tagBackend listens on an ephemeral port of 127.0.0.1; on each connection
// it writes tag and a newline, then echoes. Its connections are closed when
// the test ends.
func tagBackend(t *testing.T, tag string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				if _, err := io.WriteString(c, tag+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// freeAddrs returns n distinct free addresses on 127.0.0.1 (each listened
// on, all at once, then closed) for servers that must keep their address
// across reloads.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// srv is one [[routers.servers]] table; extra is more of its keys.
type srv struct{ listen, dst, extra string }

// yardConfig is a one-router static configuration, the admin endpoint on
// an ephemeral port of 127.0.0.2 (as in forwardConfig); names maps each
// name to its one endpoint; runtime is the [runtime] table's body.
func yardConfig(runtime string, names map[string]string, servers ...srv) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[runtime]\n%s\n[admin]\nlisten = \"127.0.0.2:0\"\n", runtime)
	b.WriteString("[[routers]]\nlabel = \"r\"\n  [routers.interpreter]\n  kind = \"static\"\n  [routers.interpreter.names]\n")
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %q = [%q]\n", k, names[k])
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "  [[routers.servers]]\n  listen = %q\n  dst = %q\n%s", s.listen, s.dst, s.extra)
	}
	return b.String()
}

// oneServer is yardConfig for one server on listen routing /svc/echo to
// backend.
func oneServer(listen, backend string) string {
	return yardConfig("workers = 1", map[string]string{"/svc/echo": backend}, srv{listen: listen, dst: "/svc/echo"})
}

// configFile is the path of the child's -config file.
func (c *child) configFile(t *testing.T) string {
	t.Helper()
	for i, a := range c.cmd.Args {
		if a == "-config" && i+1 < len(c.cmd.Args) {
			return c.cmd.Args[i+1]
		}
	}
	t.Fatal("the child has no -config argument")
	return ""
}

// rewrite replaces the child's configuration file atomically (a temporary
// file renamed over it), as an operator's tooling should.
func (c *child) rewrite(t *testing.T, body string) {
	t.Helper()
	path := c.configFile(t)
	f, err := os.CreateTemp(filepath.Dir(path), ".reload-*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(body); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		t.Fatal(err)
	}
}

func (c *child) hup(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// reloadOutcome reads log lines up to the end of one reload: "reloaded"
// or "reload failed: keeping the running configuration". It returns that
// line and every line before it (errors included: they are expected here).
func (c *child) reloadOutcome(t *testing.T) (last map[string]any, before []map[string]any) {
	t.Helper()
	timeout := time.After(reloadAwait)
	for {
		select {
		case m, ok := <-c.lines:
			if !ok {
				t.Fatalf("switchyard exited during a reload; lines: %v", before)
			}
			switch m["msg"] {
			case "reloaded", "reload failed: keeping the running configuration":
				return m, before
			}
			before = append(before, m)
		case <-timeout:
			t.Fatalf("no reload outcome logged within %v; lines: %v", reloadAwait, before)
		}
	}
}

// expectReloaded waits for the "reloaded" line and checks its generation
// and that no ERROR was logged on the way.
func (c *child) expectReloaded(t *testing.T, generation int) []map[string]any {
	t.Helper()
	last, before := c.reloadOutcome(t)
	if last["msg"] != "reloaded" {
		t.Fatalf("reload failed: %v; lines before: %v", last, before)
	}
	if last["level"] != "INFO" || last["generation"] != float64(generation) {
		t.Errorf("reloaded line %v: want level INFO, generation=%d", last, generation)
	}
	for _, m := range before {
		if m["level"] == "ERROR" {
			t.Errorf("a successful reload logged an error: %v", m)
		}
	}
	return before
}

// expectReloadFailed waits for "reload failed" and returns the err of every
// "configuration error" line before it, checking that all are ERRORs.
func (c *child) expectReloadFailed(t *testing.T) []string {
	t.Helper()
	last, before := c.reloadOutcome(t)
	if last["msg"] == "reloaded" {
		t.Fatalf("a bad configuration was reloaded: %v", last)
	}
	if last["level"] != "ERROR" {
		t.Errorf("%v: want level ERROR", last)
	}
	t.Logf("reload failed: generation %v", last["generation"])
	var problems []string
	for _, m := range before {
		if m["msg"] != "configuration error" {
			continue
		}
		if m["level"] != "ERROR" {
			t.Errorf("%v: want level ERROR", m)
		}
		e, _ := m["err"].(string)
		if e == "" {
			t.Errorf("configuration error line without err: %v", m)
		}
		problems = append(problems, e)
	}
	if len(problems) == 0 {
		t.Errorf("reload failed without a configuration error line; lines: %v", before)
	}
	return problems
}

// dialTag connects to addr and reads the backend's tag line.
func dialTag(addr string, d time.Duration) (net.Conn, string, error) {
	conn, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return nil, "", err
	}
	_ = conn.SetReadDeadline(time.Now().Add(d))
	var buf [2]byte
	if _, err := io.ReadFull(conn, buf[:]); err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("before the tag: %w", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, strings.TrimSuffix(string(buf[:]), "\n"), nil
}

// expectBackend checks that a fresh connection to addr reaches the backend
// tagged want and echoes; the connection is ended with an orderly close.
func expectBackend(t *testing.T, addr, want string) {
	t.Helper()
	conn, tag, err := dialTag(addr, 10*time.Second)
	if err != nil {
		t.Fatalf("connection to %s: %v", addr, err)
	}
	defer conn.Close()
	if tag != want {
		t.Fatalf("connection to %s reached backend %q, want %q", addr, tag, want)
	}
	if err := roundTrip(conn, 10*time.Second); err != nil {
		t.Fatalf("connection to %s: %v", addr, err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.ReadAll(conn)
}

func expectRefused(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connection to %s: %v, want connection refused", addr, err)
	}
}

// adminClient opens a new connection per request, so that no idle
// keep-alive connection of the test is counted in the child's goroutines
// and descriptors.
var adminClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func (c *child) do(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+c.admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, string(body)
}

// metric sums the samples of the family name (with any labels) in a
// Prometheus text exposition; found is false when there are none.
func metric(body, name string) (sum float64, found bool) {
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest == "" || (rest[0] != ' ' && rest[0] != '{')) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

func (c *child) gauge(t *testing.T, name string) float64 {
	t.Helper()
	code, body := c.do(t, "GET", "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	v, ok := metric(body, name)
	if !ok {
		t.Fatalf("/metrics lacks %s", name)
	}
	return v
}

func (c *child) openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// pollInterval paces polls of a value that has no event to wait for.
const pollInterval = 50 * time.Millisecond

// waitOpen polls /metrics until the proxy has exactly n connections open.
func (c *child) waitOpen(t *testing.T, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := c.gauge(t, "switchyard_connections_open")
		if v == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchyard_connections_open = %v, want %v", v, n)
		}
		time.Sleep(pollInterval)
	}
}

// stable polls sample until it returns the same value 3 times in a row.
func stable(t *testing.T, what string, sample func() int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last, same := sample(), 1
	for same < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not settle: last %d", what, last)
		}
		time.Sleep(pollInterval)
		if v := sample(); v == last {
			same++
		} else {
			last, same = v, 1
		}
	}
	return last
}

// settlesBelow polls sample until it is at most limit; it returns the last
// value and whether it got there within 10 s.
func settlesBelow(sample func() int, limit int) (int, bool) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := sample()
		if v <= limit {
			return v, true
		}
		if time.Now().After(deadline) {
			return v, false
		}
		time.Sleep(pollInterval)
	}
}

// churn is clients, each opening a connection, reading the backend's tag
// and closing, over and over; it counts what fails and measures the
// longest gap between two connections served (by any of them).
type churn struct {
	addr    string
	clients int
	stop    chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	served *sync.Cond // broadcast on each connection served or failed
	ok     int
	failed int
	errs   []string // the first few failures
	tags   map[string]int
	last   time.Time // the last connection served; zero after a pause
	maxGap time.Duration
}

func newChurn(addr string, clients int) *churn {
	l := &churn{addr: addr, clients: clients, tags: map[string]int{}}
	l.served = sync.NewCond(&l.mu)
	return l
}

func (l *churn) start() {
	l.mu.Lock()
	l.last = time.Time{} // gaps are measured while running, not across a pause
	l.mu.Unlock()
	l.stop = make(chan struct{})
	for range l.clients {
		l.wg.Add(1)
		go l.run(l.stop)
	}
}

// pause stops the clients and waits until their last connections are
// closed.
func (l *churn) pause() {
	close(l.stop)
	l.wg.Wait()
}

// awaitServed waits until n more connections than before have been served,
// or one failed.
func (l *churn) awaitServed(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	target, failed := l.ok+n, l.failed
	for l.ok < target && l.failed == failed {
		l.served.Wait()
	}
}

func (l *churn) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed++
	if len(l.errs) < 10 {
		l.errs = append(l.errs, err.Error())
	}
	l.served.Broadcast()
}

func (l *churn) run(stop <-chan struct{}) {
	defer l.wg.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		conn, tag, err := dialTag(l.addr, 5*time.Second)
		if err != nil {
			l.fail(err)
			continue
		}
		now := time.Now()
		conn.Close()
		if tag != "A" && tag != "B" {
			l.fail(fmt.Errorf("unknown tag %q", tag))
			continue
		}
		l.mu.Lock()
		l.ok++
		l.tags[tag]++
		if !l.last.IsZero() && now.Sub(l.last) > l.maxGap {
			l.maxGap = now.Sub(l.last)
		}
		if now.After(l.last) {
			l.last = now
		}
		l.served.Broadcast()
		l.mu.Unlock()
	}
}

// streamer keeps one long stream busy: numbered messages written and read
// back, until stopped.
type streamer struct {
	conn net.Conn
	stop chan struct{}
	done chan struct{}
	n    int
	err  error
}

func (s *streamer) run() {
	defer close(s.done)
	buf := make([]byte, 64)
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		msg := fmt.Sprintf("%063d\n", s.n)
		_ = s.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(s.conn, msg); err != nil {
			s.err = fmt.Errorf("message %d: %w", s.n, err)
			return
		}
		if _, err := io.ReadFull(s.conn, buf); err != nil {
			s.err = fmt.Errorf("message %d: %w", s.n, err)
			return
		}
		if string(buf) != msg {
			s.err = fmt.Errorf("message %d echoed as %q", s.n, buf)
			return
		}
		s.n++
	}
}

// Twenty reloads moving a name between two backends while a client
// connects over and over and a long stream keeps exchanging bytes: no
// client is refused or reset, each change applies to the next connection,
// the long stream is untouched, and descriptors and goroutines do not grow
// with reloads.
func TestReloadUnderLoad(t *testing.T) {
	const (
		churnClients = 4  // clients connecting over and over, side by side
		churnBetween = 20 // connections served between two reloads
	)
	a, b := tagBackend(t, "A"), tagBackend(t, "B")
	addr := freeAddrs(t, 1)[0]
	c, servers := startChild(t, nil, oneServer(addr, a))
	if len(servers) != 1 || servers[0] != addr {
		t.Fatalf("servers %v, want [%s]", servers, addr)
	}

	long, tag, err := dialTag(addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	if tag != "A" {
		t.Fatalf("long stream reached %q, want A", tag)
	}
	st := &streamer{conn: long, stop: make(chan struct{}), done: make(chan struct{})}
	go st.run()
	stopStream := sync.OnceFunc(func() { close(st.stop); <-st.done })
	defer stopStream()

	load := newChurn(addr, churnClients)
	load.start()
	running := true
	defer func() {
		if running {
			load.pause()
		}
	}()

	// settle pauses the clients and waits until only the long stream is
	// open; descriptors and goroutines are then counted.
	settle := func() {
		load.pause()
		running = false
		c.waitOpen(t, 1)
	}
	fds := func() int { return c.openFDs(t) }
	goroutines := func() int { return int(c.gauge(t, "go_goroutines")) }
	var baseFDs, baseGoroutines int

	const reloads = 20
	start := time.Now()
	for i := 1; i <= reloads; i++ {
		backend, want := b, "B"
		if i%2 == 0 {
			backend, want = a, "A"
		}
		// Let the clients run between reloads, so that every reload
		// happens under their connections.
		load.awaitServed(churnBetween)
		c.rewrite(t, oneServer(addr, backend))
		c.hup(t)
		c.expectReloaded(t, i+1)
		expectBackend(t, addr, want)
		switch i {
		case 2:
			settle()
			baseFDs = stable(t, "open descriptors", fds)
			baseGoroutines = stable(t, "goroutines", goroutines)
			t.Logf("after reload 2: %d descriptors, %d goroutines", baseFDs, baseGoroutines)
			load.start()
			running = true
		case reloads:
			settle()
			if n, ok := settlesBelow(fds, baseFDs+5); !ok {
				t.Errorf("open descriptors: %d after reload 2, %d after reload %d", baseFDs, n, reloads)
			} else {
				t.Logf("after reload %d: %d descriptors", reloads, n)
			}
			if n, ok := settlesBelow(goroutines, baseGoroutines+10); !ok {
				t.Errorf("goroutines: %d after reload 2, %d after reload %d", baseGoroutines, n, reloads)
			} else {
				t.Logf("after reload %d: %d goroutines", reloads, n)
			}
		}
	}
	elapsed := time.Since(start)

	stopStream()
	if st.err != nil {
		t.Errorf("long stream during the reloads: %v", st.err)
	}
	if err := roundTrip(long, 10*time.Second); err != nil {
		t.Errorf("long stream after %d reloads: %v", reloads, err)
	}
	_ = long.(*net.TCPConn).CloseWrite()
	_ = long.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(long); err != nil || len(rest) != 0 {
		t.Errorf("long stream end: %q, %v; want an orderly EOF", rest, err)
	}

	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("%d reloads in %v; long stream: %d messages echoed", reloads, elapsed.Round(time.Millisecond), st.n)
	t.Logf("client connections: %d served (A %d, B %d), %d failed; longest gap between served connections: %.1f ms",
		load.ok, load.tags["A"], load.tags["B"], load.failed, float64(load.maxGap.Microseconds())/1000)
	if load.failed > 0 {
		t.Errorf("%d client connections failed during reloads, first: %v", load.failed, load.errs)
	}
	if load.tags["A"] == 0 || load.tags["B"] == 0 {
		t.Errorf("the client loop reached A %d times and B %d times: want both", load.tags["A"], load.tags["B"])
	}
}

// A reload that fails — bad TOML, invalid keys, a new server on an address
// in use — logs every problem and changes nothing; a good file after them
// is generation 2.
func TestReloadBrokenConfigChangesNothing(t *testing.T) {
	a, b := tagBackend(t, "A"), tagBackend(t, "B")
	addrs := freeAddrs(t, 2)
	addr, spare := addrs[0], addrs[1]
	c, _ := startChild(t, nil, oneServer(addr, a))
	expectBackend(t, addr, "A")

	// Each bad file also moves the name to B: any part of it applied shows.
	t.Log("not TOML")
	c.rewrite(t, oneServer(addr, b)+"[[routers]\n")
	c.hup(t)
	problems := c.expectReloadFailed(t)
	if !strings.Contains(strings.Join(problems, "\n"), "expected end of table array name") {
		t.Errorf("problems %q do not say what is wrong with the TOML", problems)
	}
	expectBackend(t, addr, "A")

	t.Log("two invalid keys")
	c.rewrite(t, oneServer(addr, b)+"  bogus = 1\n  idle_timeout = \"5 minutes\"\n")
	c.hup(t)
	problems = c.expectReloadFailed(t)
	if len(problems) != 2 {
		t.Errorf("%d configuration error lines, want one per problem (2): %q", len(problems), problems)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{"routers[0].servers[0].bogus: unknown key", `routers[0].servers[0].idle_timeout: bad duration "5 minutes"`} {
		if !strings.Contains(all, want) {
			t.Errorf("problems %q lack %q", problems, want)
		}
	}
	expectBackend(t, addr, "A")

	t.Log("a new server on an address in use")
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	c.rewrite(t, yardConfig("workers = 1", map[string]string{"/svc/echo": b},
		srv{listen: addr, dst: "/svc/echo"},
		srv{listen: spare, dst: "/svc/echo"}, // free: must not be left listening
		srv{listen: held.Addr().String(), dst: "/svc/echo"}))
	c.hup(t)
	problems = c.expectReloadFailed(t)
	if !strings.Contains(strings.Join(problems, "\n"), held.Addr().String()) {
		t.Errorf("problems %q do not name the address in use, %s", problems, held.Addr())
	}
	expectBackend(t, addr, "A")
	expectRefused(t, spare)
	// The address in use is still only ours.
	accepted := make(chan error, 1)
	go func() {
		conn, err := held.Accept()
		if err == nil {
			conn.Close()
		}
		accepted <- err
	}()
	probe, err := net.Dial("tcp", held.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a connection to the held address did not reach its listener")
	}

	t.Log("a good file")
	c.rewrite(t, oneServer(addr, b))
	c.hup(t)
	c.expectReloaded(t, 2)
	expectBackend(t, addr, "B")
}

// A reload adds a server (it listens and forwards) and removes one: new
// connections to it are refused, while its open stream runs on to an
// orderly end. The server whose address stays keeps serving.
func TestReloadAddsAndRemovesServers(t *testing.T) {
	a := tagBackend(t, "A")
	addrs := freeAddrs(t, 3)
	names := map[string]string{"/svc/echo": a}
	c, servers := startChild(t, nil, yardConfig("workers = 1", names,
		srv{listen: addrs[0], dst: "/svc/echo"}, srv{listen: addrs[1], dst: "/svc/echo"}))
	if len(servers) != 2 || servers[0] != addrs[0] || servers[1] != addrs[1] {
		t.Fatalf("servers %v, want %v", servers, addrs[:2])
	}
	expectRefused(t, addrs[2])

	long, tag, err := dialTag(addrs[1], 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	if tag != "A" {
		t.Fatalf("long stream reached %q", tag)
	}
	if err := roundTrip(long, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	c.rewrite(t, yardConfig("workers = 1", names,
		srv{listen: addrs[0], dst: "/svc/echo"}, srv{listen: addrs[2], dst: "/svc/echo"}))
	c.hup(t)
	c.expectReloaded(t, 2)

	expectBackend(t, addrs[2], "A") // added
	expectBackend(t, addrs[0], "A") // kept
	expectRefused(t, addrs[1])      // removed
	if err := roundTrip(long, 10*time.Second); err != nil {
		t.Fatalf("the open stream on the removed server: %v", err)
	}
	_, metrics := c.do(t, "GET", "/metrics")
	if want := `switchyard_connections_accepted_total{dst="/svc/echo",router="r",server="` + addrs[2] + `"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %q", want)
	}
	// The client ends the stream: an orderly end, not a reset.
	_ = long.(*net.TCPConn).CloseWrite()
	_ = long.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(long); err != nil || len(rest) != 0 {
		t.Errorf("the stream on the removed server ended with %q, %v; want an orderly EOF", rest, err)
	}
	c.waitOpen(t, 0)
	expectRefused(t, addrs[1])
}

// POST /reload reloads as SIGHUP does, answering 200 "reloaded..." or 400
// with the problems; GET /reload is 405. /config shows the new file,
// /metrics carries on, a changed runtime key is warned about and kept, and
// a changed dst and idle_timeout apply to new connections.
func TestReloadOverAdmin(t *testing.T) {
	a, b := tagBackend(t, "A"), tagBackend(t, "B")
	addr := freeAddrs(t, 1)[0]
	names := map[string]string{"/svc/a": a, "/svc/b": b}
	c, _ := startChild(t, nil, yardConfig("workers = 1", names, srv{listen: addr, dst: "/svc/a"}))
	expectBackend(t, addr, "A")

	if code, _ := c.do(t, "GET", "/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /reload = %d, want 405", code)
	}

	c.rewrite(t, yardConfig("workers = 2", names, srv{listen: addr, dst: "/svc/b", extra: "  idle_timeout = \"500ms\"\n"}))
	code, body := c.do(t, "POST", "/reload")
	if code != http.StatusOK || !strings.HasPrefix(body, "reloaded") {
		t.Fatalf("POST /reload = %d %q, want 200 \"reloaded...\"", code, body)
	}
	before := c.expectReloaded(t, 2)
	warned := false
	for _, m := range before {
		if m["level"] == "WARN" && strings.Contains(fmt.Sprint(m), "workers") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no WARN about the changed runtime.workers; lines: %v", before)
	}

	// dst changed: the next connection goes to /svc/b.
	expectBackend(t, addr, "B")
	// idle_timeout changed: a new connection left idle is closed after 500ms.
	idle, tag, err := dialTag(addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if tag != "B" {
		t.Fatalf("reached %q, want B", tag)
	}
	began := time.Now()
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); err == nil {
		t.Errorf("idle connection read %d bytes, want it closed", n)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("idle connection not closed within 10s: the new idle_timeout (500ms) is not in effect")
	} else if d := time.Since(began); d < 300*time.Millisecond {
		t.Errorf("idle connection closed after %v, before the idle_timeout of 500ms", d)
	}

	_, cfg := c.do(t, "GET", "/config")
	for _, want := range []string{`"dst": "/svc/b"`, `"idle_timeout": "500ms"`, `"workers": 1`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("/config after the reload lacks %s:\n%s", want, cfg)
		}
	}
	_, metrics := c.do(t, "GET", "/metrics")
	for _, want := range []string{
		"go_goroutines ",
		`switchyard_connections_accepted_total{dst="/svc/b",router="r",server="` + addr + `"} `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics after the reload lacks %q", want)
		}
	}

	c.rewrite(t, yardConfig("workers = 2", names, srv{listen: addr, dst: "/svc/a", extra: "  bogus = 1\n"}))
	code, body = c.do(t, "POST", "/reload")
	if code != http.StatusBadRequest || !strings.Contains(body, "routers[0].servers[0].bogus: unknown key") {
		t.Errorf("POST /reload of a bad file = %d %q, want 400 naming routers[0].servers[0].bogus", code, body)
	}
	problems := c.expectReloadFailed(t)
	if !strings.Contains(strings.Join(problems, "\n"), "bogus") {
		t.Errorf("logged problems %q lack the unknown key", problems)
	}
	expectBackend(t, addr, "B")
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as sd_notify's
// MONOTONIC_USEC.
func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// On SIGHUP systemd (Type=notify-reload) hears RELOADING=1 with
// MONOTONIC_USEC in the same datagram, then READY=1 when the reload is
// over, whether it succeeded or failed.
func TestReloadNotifiesSystemd(t *testing.T) {
	sock := notifySocket(t)
	a, b := tagBackend(t, "A"), tagBackend(t, "B")
	addr := freeAddrs(t, 1)[0]
	c, _ := startChild(t, nil, oneServer(addr, a))
	next := func() map[string]string {
		t.Helper()
		for {
			_ = sock.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 4096)
			n, err := sock.Read(buf)
			if err != nil {
				t.Fatalf("no sd_notify message: %v", err)
			}
			if string(buf[:n]) == "WATCHDOG=1" {
				continue
			}
			m := map[string]string{"": string(buf[:n])}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				k, v, _ := strings.Cut(line, "=")
				m[k] = v
			}
			return m
		}
	}
	if m := next(); m["READY"] != "1" {
		t.Fatalf("first message %q, want READY=1", m[""])
	}

	for _, tc := range []struct {
		name   string
		config string
		good   bool
	}{
		{"good", oneServer(addr, b), true},
		{"broken", oneServer(addr, a) + "  bogus = 1\n", false},
	} {
		t.Log(tc.name)
		c.rewrite(t, tc.config)
		sent := monotonicUsec(t)
		c.hup(t)
		m := next()
		for m["RELOADING"] == "" && m["READY"] == "" && m["STOPPING"] == "" {
			m = next() // STATUS= alone, say
		}
		if m["RELOADING"] != "1" {
			t.Fatalf("first message after SIGHUP %q, want RELOADING=1", m[""])
		}
		usec, err := strconv.ParseInt(m["MONOTONIC_USEC"], 10, 64)
		if err != nil {
			t.Fatalf("RELOADING=1 message %q: MONOTONIC_USEC: %v", m[""], err)
		}
		if now := monotonicUsec(t); usec < sent || usec > now {
			t.Errorf("MONOTONIC_USEC=%d, not between the signal (%d) and its receipt (%d)", usec, sent, now)
		}
		m = next()
		for m["READY"] == "" && m["RELOADING"] == "" && m["STOPPING"] == "" {
			m = next()
		}
		if m["READY"] != "1" {
			t.Fatalf("message after RELOADING=1: %q, want READY=1", m[""])
		}
		if _, ok := m["STATUS"]; !ok {
			t.Errorf("READY=1 after the reload %q: no STATUS=", m[""])
		}
		if tc.good {
			c.expectReloaded(t, 2)
			expectBackend(t, addr, "B")
		} else {
			c.expectReloadFailed(t)
			expectBackend(t, addr, "B")
		}
	}
}

// A reload that moves the admin endpoint to an address in use fails and
// leaves the endpoint where it was (the same one: a reload of the file it
// runs moves nothing); one that moves it to a free address starts it there
// and closes the old one.
func TestReloadMovesTheAdminEndpoint(t *testing.T) {
	a := tagBackend(t, "A")
	addr := freeAddrs(t, 1)[0]
	body := oneServer(addr, a)
	c, _ := startChild(t, nil, body)
	running := c.admin
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	withAdmin := func(listen string) string {
		return strings.Replace(body, `listen = "127.0.0.2:0"`, fmt.Sprintf("listen = %q", listen), 1)
	}

	c.rewrite(t, withAdmin(taken.Addr().String()))
	c.hup(t)
	problems := c.expectReloadFailed(t)
	if !strings.Contains(strings.Join(problems, "\n"), taken.Addr().String()) {
		t.Errorf("the failure does not name the admin address in use: %q", problems)
	}
	if code, _ := c.do(t, "GET", "/live"); code != http.StatusOK {
		t.Fatalf("the admin endpoint stopped answering after a failed move: %d", code)
	}

	c.rewrite(t, body)
	c.hup(t)
	last, _ := c.reloadOutcome(t)
	if last["msg"] != "reloaded" || last["generation"] != float64(2) {
		t.Fatalf("reload of the running file: %v", last)
	}
	if servers := fmt.Sprint(last["servers"]); !strings.Contains(servers, "admin:"+running) {
		t.Errorf("after reloading the running file the servers are %s, want the admin endpoint left at %s", servers, running)
	}
	if code, _ := c.do(t, "GET", "/live"); code != http.StatusOK {
		t.Fatalf("admin endpoint: %d", code)
	}

	moved := freeAddrs(t, 1)[0]
	c.rewrite(t, withAdmin(moved))
	c.hup(t)
	c.expectReloaded(t, 3)
	c.waitFor(t, "admin endpoint moved") // the old one closed after the reload answered
	c.admin = moved
	if code, _ := c.do(t, "GET", "/live"); code != http.StatusOK {
		t.Fatalf("the moved admin endpoint on %s: %d", moved, code)
	}
	expectRefused(t, running)
	expectBackend(t, addr, "A")
}
