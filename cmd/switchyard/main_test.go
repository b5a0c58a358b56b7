package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

// TestMain builds the real binary once; the tests run it as a child.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchyard-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchyard")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchyard.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "switchyard ") {
		t.Fatalf("-version printed %q", out)
	}
}

func TestCheck(t *testing.T) {
	valid := `
[[routers]]
label = "r"
  [routers.interpreter]
  kind = "static"
  [routers.interpreter.names]
  "/svc/a" = ["127.0.0.1:8080"]
  [[routers.servers]]
  listen = "127.0.0.1:7474"
  dst = "/svc/a"
`
	for _, tc := range []struct {
		name     string
		config   string
		wantCode int
		want     []string
	}{
		{"valid", valid, 0, []string{"configuration is valid"}},
		{"example", "", 0, []string{"configuration is valid"}},
		{"unknown key", valid + "  bogus = 1\n", 1, []string{"routers[0].servers[0].bogus: unknown key"}},
		{"bad duration", valid + `  idle_timeout = "5 minutes"` + "\n", 1, []string{"routers[0].servers[0].idle_timeout", `"5 minutes"`}},
		{"bad address", strings.Replace(valid, "127.0.0.1:7474", "localhost:7474", 1), 1, []string{"routers[0].servers[0].listen", "localhost:7474"}},
		{"missing dst", strings.Replace(valid, `dst = "/svc/a"`, "", 1), 1, []string{"routers[0].servers[0].dst: required"}},
		{"duplicate listen", valid + "  [[routers.servers]]\n  listen = \"127.0.0.1:7474\"\n  dst = \"/svc/a\"\n", 1, []string{"routers[0].servers[1].listen", "already used by routers[0].servers[0]"}},
		{"unknown interpreter kind", strings.Replace(valid, `kind = "static"`, `kind = "zookeeper"`, 1), 1, []string{`routers[0].interpreter.kind: unknown interpreter kind "zookeeper"`}},
		{"not toml", "[[routers]\n", 1, []string{"expected end of table array name"}},
		{"file kind without dir", strings.Replace(valid, `kind = "static"`, `kind = "file"`, 1), 1, []string{
			`routers[0].interpreter.dir: required`, `routers[0].interpreter.names: unknown key`}},
		{"dns name", strings.NewReplacer(`kind = "static"`, `kind = "dns"`, `[routers.interpreter.names]`, "", `"/svc/a" = ["127.0.0.1:8080"]`, "").Replace(valid), 1, []string{
			`routers[0].servers[0].dst: "/svc/a"`}},
		{"namerd url", strings.NewReplacer(`kind = "static"`, "kind = \"namerd\"\n  base_url = \"ftp://x\"", `[routers.interpreter.names]`, "", `"/svc/a" = ["127.0.0.1:8080"]`, "").Replace(valid), 1, []string{
			`routers[0].interpreter.base_url`}},
		{"router keys", strings.Replace(valid, `label = "r"`, "label = \"r\"\nbind_idle = \"0s\"\nmax_names = 0", 1), 1, []string{
			`routers[0].bind_idle: must be greater than 0`, `routers[0].max_names: must be between 1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "../../config.example.toml"
			if tc.config != "" {
				path = writeConfig(t, tc.config)
			}
			cmd := exec.Command(binary, "-check", "-config", path)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, tc.wantCode, out)
			}
			for _, w := range tc.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-log-format", "xml", "-config", "x"}, {"-config", "x", "extra"}} {
		err := exec.Command(binary, args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit code 2", args, err)
		}
	}
}

// child is a running switchyard with its JSON log lines delivered on a
// channel.
type child struct {
	admin string // the admin endpoint's address, if any
	cmd   *exec.Cmd
	lines chan map[string]any
	wait  chan error
}

func startChild(t *testing.T, prefix []string, config string) (*child, []string) {
	t.Helper()
	return startChildWith(t, prefix, config, nil)
}

// startChildWith is startChild with extra descriptors for the child (fd 3
// on).
func startChildWith(t *testing.T, prefix []string, config string, extra []*os.File) (*child, []string) {
	t.Helper()
	args := append(prefix, binary, "-log-format", "json", "-config", writeConfig(t, config))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.ExtraFiles = extra
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan map[string]any, 100), wait: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"msg": "unparsed", "line": sc.Text()}
			}
			c.lines <- m
		}
		close(c.lines)
		c.wait <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	started := c.waitFor(t, "started")
	var servers []string
	for _, s := range started["servers"].([]any) {
		// "label:addr->dst", and "admin:addr"
		s := s.(string)
		if a, ok := strings.CutPrefix(s, "admin:"); ok {
			c.admin = a
			continue
		}
		s = s[strings.Index(s, ":")+1 : strings.Index(s, "->")]
		servers = append(servers, s)
	}
	return c, servers
}

func (c *child) waitFor(t *testing.T, msg string) map[string]any {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-c.lines:
			if !ok {
				t.Fatalf("switchyard exited before logging %q", msg)
			}
			if m["msg"] == msg {
				return m
			}
			if m["level"] == "ERROR" {
				t.Fatalf("switchyard logged an error: %v", m)
			}
		case <-timeout:
			t.Fatalf("no %q log line", msg)
		}
	}
}

func echoBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// forwardConfig is a one-server configuration forwarding to backend. The
// admin endpoint listens on an ephemeral port of 127.0.0.2 (so that
// replacing "127.0.0.1:0" moves the server only); extra goes after its
// keys: more [admin] keys, then other tables.
func forwardConfig(backend string, extra string) string {
	return fmt.Sprintf(`
[runtime]
workers = 1
[admin]
listen = "127.0.0.2:0"
%s
[[routers]]
label = "r"
  [routers.interpreter]
  kind = "static"
  [routers.interpreter.names]
  "/svc/echo" = [%q]
  [[routers.servers]]
  listen = "127.0.0.1:0"
  dst = "/svc/echo"
`, extra, backend)
}

func roundTrip(c net.Conn, d time.Duration) error {
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	var buf [4]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return err
	}
	if string(buf[:]) != "ping" {
		return fmt.Errorf("echo returned %q", buf[:])
	}
	return nil
}

func TestRunForwardsAndStopsOnSIGTERM(t *testing.T) {
	c, servers := startChild(t, nil, forwardConfig(echoBackend(t), "drain_timeout = \"0s\"\n"))
	conn, err := net.Dial("tcp", servers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := roundTrip(conn, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// SIGHUP is not fatal.
	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(conn, 10*time.Second); err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	summary := c.waitFor(t, "server stopped")
	ended, _ := summary["ended"].(map[string]any)
	if ended["shutdown"] != float64(1) {
		t.Errorf("summary %v: want the open connection ended with reason shutdown", summary)
	}
	c.waitFor(t, "stopped")
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
	// The open connection was closed by the stop.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after stop")
	}
}

func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	var u, s int64
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &s)
	return u + s
}

// Out of descriptors, the router stops accepting for a moment, counts it,
// does not spin, and serves the waiting clients once descriptors free up.
func TestEMFILEPausesAcceptingWithoutSpinning(t *testing.T) {
	// An explicit max_connections far over what 40 descriptors allow: the
	// default would share the limit out, and never reach EMFILE.
	cfg := forwardConfig(echoBackend(t), "") + "  connect_timeout = \"60s\"\n  max_connections = 10000\n"
	c, servers := startChild(t, []string{"prlimit", "--nofile=40:40"}, cfg)
	const n = 30 // needs ~60 fds in the router: far over the limit
	type result struct {
		i   int
		err error
	}
	conns := make([]net.Conn, n)
	results := make(chan result, n)
	for i := range conns {
		conn, err := net.Dial("tcp", servers[0]) // the kernel backlog completes the handshake
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns[i] = conn
		go func() { results <- result{i, roundTrip(conn, 60*time.Second)} }()
	}
	// Some are served at once; the rest wait in the backlog.
	done := map[int]error{}
	for len(done) == 0 {
		r := <-results
		done[r.i] = r.err
	}
	ticks := cpuTicks(t, c.cmd.Process.Pid)
	time.Sleep(time.Second) // the interval CPU use is measured over, not synchronisation
	if used := cpuTicks(t, c.cmd.Process.Pid) - ticks; used > 30 {
		t.Errorf("router used %d ticks of CPU in 1s while out of fds: spinning", used)
	}
	// Free descriptors by closing the finished connections; every other
	// client must then be answered, none left hanging.
	for drained := false; !drained; {
		select {
		case r := <-results:
			done[r.i] = r.err
		default:
			drained = true
		}
	}
	if len(done) == n {
		t.Fatalf("all %d connections finished at once, the limit did not bite: %v", n, done)
	}
	first := len(done)
	for i := range done {
		conns[i].Close()
	}
	for len(done) < n {
		r := <-results
		if r.err != nil {
			t.Errorf("connection %d, waiting while fds ran out: %v", r.i, r.err)
		}
		done[r.i] = r.err
		conns[r.i].Close()
	}
	t.Logf("%d connections served before fds ran out, %d after", first, n-first)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	summary := c.waitFor(t, "server stopped")
	accErrs, _ := summary["accept_errors"].(float64)
	waits, _ := summary["resource_waits"].(float64)
	if accErrs+waits == 0 {
		t.Errorf("summary %v: want accept_errors or resource_waits > 0", summary)
	}
}

// A router on a directory that does not exist yet: its name is not found
// until the directory and the file appear, then traffic follows the file.
func TestRunFollowsADirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "svc")
	c, servers := startChild(t, nil, fmt.Sprintf(`
[runtime]
workers = 1
[[routers]]
label = "r"
  [routers.interpreter]
  kind = "file"
  dir = %q
  [[routers.servers]]
  listen = "127.0.0.1:0"
  dst = "/svc/echo"
`, dir))
	conn, err := net.Dial("tcp", servers[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(conn, 10*time.Second); err == nil {
		t.Fatal("a name with no directory behind it was routed")
	}
	conn.Close()

	backend := echoBackend(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(backend)
	if err := os.WriteFile(filepath.Join(dir, "echo"), []byte(host+" "+port+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", servers[0])
		if err != nil {
			t.Fatal(err)
		}
		err = roundTrip(conn, 5*time.Second)
		if err == nil {
			// End the stream before the stop, so that it counts as eof.
			_ = conn.(*net.TCPConn).CloseWrite()
			_, _ = io.ReadAll(conn)
			conn.Close()
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("still not routed 10s after the file appeared: %v", err)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	summary := c.waitFor(t, "server stopped")
	ended, _ := summary["ended"].(map[string]any)
	if ended["no_endpoints"] == nil || ended["eof"] == nil {
		t.Errorf("summary %v: want no_endpoints before the file and eof after", summary)
	}
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// A second Switchyard on the address of a running one must not join its
// SO_REUSEPORT group and take part of its connections: it fails to start,
// saying why.
func TestSecondInstanceOnTheSameAddressFails(t *testing.T) {
	_, servers := startChild(t, nil, forwardConfig(echoBackend(t), ""))
	second := strings.Replace(forwardConfig(echoBackend(t), ""), "127.0.0.1:0", servers[0], 1)
	cmd := exec.Command(binary, "-config", writeConfig(t, second))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("second instance on %s: %v, want exit code 1; output:\n%s", servers[0], err, out)
	}
	if !bytes.Contains(out, []byte(servers[0])) || !bytes.Contains(out, []byte("in use")) {
		t.Errorf("the error does not name the address and say it is in use:\n%s", out)
	}
}

// Under systemd (Type=notify, WatchdogSec): READY=1 once the listeners
// are bound, WATCHDOG=1 every half watchdog interval while the loops
// answer, STOPPING=1 on SIGTERM; read in order from a real datagram socket.
func TestSystemdNotify(t *testing.T) {
	sock := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	c, _ := startChild(t, nil, forwardConfig(echoBackend(t), ""))
	next := func() string {
		t.Helper()
		_ = sock.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v", err)
		}
		return string(buf[:n])
	}
	if got, want := next(), "READY=1\nSTATUS=serving 1 servers on 1 event loops"; got != want {
		t.Fatalf("first message %q, want %q", got, want)
	}
	for range 3 {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("message %q, want WATCHDOG=1", got)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		got := next()
		if got == "WATCHDOG=1" {
			continue // sent before the signal arrived
		}
		if want := "STOPPING=1\nSTATUS=stopping on terminated"; got != want {
			t.Fatalf("message %q, want %q", got, want)
		}
		break
	}
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// Socket activation: a server whose listen address is that of a socket
// systemd passed (LISTEN_FDS) accepts on it instead of binding, so clients
// that connected before Switchyard ran are served; a socket no server
// wants is closed.
func TestSocketActivation(t *testing.T) {
	files, addrs := systemdSockets(t, "public", "spare")
	addr := addrs[0]
	// A client that connects before Switchyard runs waits in the backlog.
	early, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	config := strings.Replace(forwardConfig(echoBackend(t), "drain_timeout = \"0s\"\n"), "127.0.0.1:0", addr, 1)
	c, servers := startActivated(t, config, files)
	if servers[0] != addr {
		t.Fatalf("server on %s, want the inherited %s", servers[0], addr)
	}
	if err := roundTrip(early, 10*time.Second); err != nil {
		t.Fatalf("the client that connected before start: %v", err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := roundTrip(conn, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", addrs[1], 5*time.Second); err == nil {
		t.Error("the socket no server wanted still accepts connections")
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// A stop signal drains: listeners close at once (new connections are
// refused), an open stream runs to its end, then the process exits 0.
func TestDrainLetsStreamsFinish(t *testing.T) {
	c, servers := startChild(t, nil, forwardConfig(echoBackend(t), "drain_timeout = \"20s\"\n"))
	conn, err := net.Dial("tcp", servers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := roundTrip(conn, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "draining: listeners closed, waiting for open connections to end")
	if _, err := net.DialTimeout("tcp", servers[0], 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a new connection while draining: %v, want connection refused", err)
	}
	if err := roundTrip(conn, 10*time.Second); err != nil {
		t.Fatalf("the open stream while draining: %v", err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	_, _ = io.ReadAll(conn)
	c.waitFor(t, "drained: every connection ended")
	summary := c.waitFor(t, "server stopped")
	if ended, _ := summary["ended"].(map[string]any); ended["eof"] != float64(1) || ended["shutdown"] != nil {
		t.Errorf("summary %v: want the stream ended eof, none cut", summary)
	}
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// A stream longer than drain_timeout is cut with reason shutdown; a second
// signal ends a drain at once.
func TestDrainEnds(t *testing.T) {
	for _, tc := range []struct {
		name, drain string
		second      bool
		want        string
	}{
		{"drain_timeout", "300ms", false, "drain_timeout passed: closing the connections left"},
		{"second signal", "60s", true, "second signal: closing the connections left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, servers := startChild(t, nil, forwardConfig(echoBackend(t), "drain_timeout = \""+tc.drain+"\"\n"))
			conn, err := net.Dial("tcp", servers[0])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := roundTrip(conn, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			c.waitFor(t, "draining: listeners closed, waiting for open connections to end")
			if tc.second {
				if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			}
			c.waitFor(t, tc.want)
			summary := c.waitFor(t, "server stopped")
			if ended, _ := summary["ended"].(map[string]any); ended["shutdown"] != float64(1) {
				t.Errorf("summary %v: want the stream cut with reason shutdown", summary)
			}
			for range c.lines {
			}
			if err := <-c.wait; err != nil {
				t.Fatalf("exit: %v", err)
			}
		})
	}
}

// With max_connections left at 0, servers share the open-files limit:
// under a tiny limit the server pauses at its share instead of running out
// of descriptors, and every client is served in turn, without one accept
// error. (Start logs no warning: nothing set explicitly goes unmet.)
func TestDefaultMaxConnectionsFitsTheOpenFilesLimit(t *testing.T) {
	c, servers := startChild(t, []string{"prlimit", "--nofile=40:40"}, forwardConfig(echoBackend(t), ""))
	const n = 30
	errs := make(chan error, n)
	for range n {
		conn, err := net.Dial("tcp", servers[0])
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer conn.Close()
			err := roundTrip(conn, 30*time.Second)
			if err == nil {
				_ = conn.(*net.TCPConn).CloseWrite()
				_, err = io.ReadAll(conn)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	summary := c.waitFor(t, "server stopped")
	if summary["accept_errors"] != float64(0) || summary["resource_waits"] != float64(0) || summary["accepted"] != float64(n) {
		t.Errorf("summary %v: want %d accepted and no descriptor shortage", summary, n)
	}
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// A server takes the socket its systemd_socket names (LISTEN_FDNAMES) when
// no socket has its listen address, as with ListenStream=80, which binds
// [::]:80 for a server configured on 0.0.0.0:80.
func TestSocketActivationByName(t *testing.T) {
	files, addrs := systemdSockets(t, "public")
	addr := addrs[0]
	// The configured address is another one, never bound.
	config := forwardConfig(echoBackend(t), "drain_timeout = \"0s\"\n") + "  systemd_socket = \"public\"\n"
	c, servers := startActivated(t, config, files)
	if servers[0] != addr {
		t.Fatalf("server on %s, want the socket named public, %s", servers[0], addr)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := roundTrip(conn, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// [log] access: the real binary appends a line per closed stream, in its
// log format, to the file.
func TestAccessLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	c, servers := startChild(t, nil, forwardConfig(echoBackend(t), fmt.Sprintf("[log]\naccess = true\npath = %q\n", path)))
	conn, err := net.Dial("tcp", servers[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(conn, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	_, _ = io.ReadAll(conn)
	conn.Close()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(data), &line); err != nil {
		t.Fatalf("access log %q: %v", data, err)
	}
	if line["msg"] != "access" || line["reason"] != "eof" || line["bytes_up"] != float64(4) || line["server"] != servers[0] {
		t.Errorf("access line %v", line)
	}
}

// The admin endpoint of the real binary: live, ready, the effective
// configuration and the routers' names; POST /shutdown drains as SIGTERM
// does, /ready saying 503 meanwhile.
func TestAdminEndpoint(t *testing.T) {
	c, servers := startChild(t, nil, forwardConfig(echoBackend(t), `drain_timeout = "20s"`+"\n"))
	base := "http://" + c.admin
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("GET", "/live"); code != 200 {
		t.Errorf("/live = %d", code)
	}
	if code, _ := get("GET", "/ready"); code != 200 {
		t.Errorf("/ready = %d", code)
	}
	conn, err := net.Dial("tcp", servers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := roundTrip(conn, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	_, cfg := get("GET", "/config")
	if !strings.Contains(cfg, `"drain_timeout": "20s"`) || !strings.Contains(cfg, `"idle_timeout": "5m0s"`) {
		t.Errorf("/config does not show the file's keys with defaults:\n%s", cfg)
	}
	_, routers := get("GET", "/routers")
	if !strings.Contains(routers, `"name": "/svc/echo"`) || !strings.Contains(routers, `"state": "bound"`) || !strings.Contains(routers, `"connections": 1`) {
		t.Errorf("/routers:\n%s", routers)
	}
	_, metrics := get("GET", "/metrics")
	for _, want := range []string{
		`switchyard_connections_accepted_total{dst="/svc/echo",router="r",server="` + servers[0] + `"} 1`,
		`switchyard_connections_open{dst="/svc/echo",router="r",server="` + servers[0] + `"} 1`,
		`switchyard_build_info{goversion="`, "go_goroutines ", "process_open_fds ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	if resp, err := http.DefaultClient.Do(req); err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/openmetrics-text") {
		t.Errorf("/metrics asked for OpenMetrics: %v, %v", err, resp.Header.Get("Content-Type"))
	} else {
		resp.Body.Close()
	}
	if code, _ := get("GET", "/shutdown"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /shutdown = %d, want 405", code)
	}
	if code, _ := get("POST", "/shutdown"); code != http.StatusAccepted {
		t.Errorf("POST /shutdown = %d, want 202", code)
	}
	c.waitFor(t, "draining: listeners closed, waiting for open connections to end")
	if code, _ := get("GET", "/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/ready while draining = %d, want 503", code)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	_, _ = io.ReadAll(conn)
	c.waitFor(t, "drained: every connection ended")
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// systemdSockets makes a listening socket on 127.0.0.1 for each name, as a
// .socket unit would, and sets LISTEN_FDS and LISTEN_FDNAMES for the child.
// Only the returned files (the child's copies) hold them.
func systemdSockets(t *testing.T, names ...string) ([]*os.File, []string) {
	t.Helper()
	var files []*os.File
	var addrs []string
	for range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File() // a duplicate, for the child
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	t.Setenv("LISTEN_FDS", strconv.Itoa(len(names)))
	t.Setenv("LISTEN_FDNAMES", strings.Join(names, ":"))
	return files, addrs
}

// startActivated starts switchyard with files as its inherited sockets.
// LISTEN_PID must be the child's own pid: a shell sets it to its pid, then
// becomes switchyard with exec, keeping the pid. The parent's copies are
// closed once the child has its own.
func startActivated(t *testing.T, config string, files []*os.File) (*child, []string) {
	t.Helper()
	c, servers := startChildWith(t, []string{"sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`}, config, files)
	for _, f := range files {
		f.Close()
	}
	return c, servers
}

// notifySocket is a datagram socket that stands for systemd's: the
// children started after it send their sd_notify messages to it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return sock
}
