package router

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/binder"
	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/server"
)

// The end-to-end tests of discovery run a real proxy whose interpreter
// talks to a fixture (a namerd, a directory, a DNS server) in front of
// backends that each answer with their own name, so that a test sees where
// a connection went.

// e2eWait bounds every wait of these tests for something to happen.
const e2eWait = 10 * time.Second

// discoveryConfig is testConfig with an interpreter of kind and settings st.
func discoveryConfig(kind string, st interpreter.Settings) *Config {
	cfg := testConfig()
	cfg.Routers[0].Interpreter = InterpreterConfig{Kind: kind, Settings: st}
	return cfg
}

// startNamedBackend starts a backend on 127.0.0.1 that answers every line
// it reads with its name.
func startNamedBackend(t testing.TB, name string) *backend {
	return startBackend(t, answerName(name))
}

// serveNamedBackend is startNamedBackend on a listener of the caller's.
func serveNamedBackend(t testing.TB, ln net.Listener, name string) *backend {
	return serveBackend(t, ln, answerName(name))
}

func answerName(name string) func(*net.TCPConn) {
	return func(c *net.TCPConn) {
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			if _, err := c.Write([]byte(name + "\n")); err != nil {
				return
			}
		}
	}
}

// errNoAnswer is a connection the proxy closed without an answer.
var errNoAnswer = errors.New("closed without an answer")

// ask makes one connection to addr, sends a line and returns the name of
// the backend that answered it. The connection is closed with a reset,
// so that tight loops of ask leave no socket in TIME_WAIT.
func ask(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, e2eWait)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetLinger(0)
	_ = c.SetDeadline(time.Now().Add(e2eWait))
	if _, err := c.Write([]byte("?\n")); err != nil {
		return "", errNoAnswer // the proxy may have closed it already
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", fmt.Errorf("no answer within %v", e2eWait)
		}
		return "", errNoAnswer
	}
	return line[:len(line)-1], nil
}

// askUntil asks addr until a connection reaches the backend named want,
// and returns how many connections it took. Connections that reach
// another backend, or fail with errNoAnswer, are the traffic of before the
// update; any other error, or no connection reaching want by deadline, is
// an error.
func askUntil(addr, want string, deadline time.Time) (int, error) {
	for n := 1; ; n++ {
		got, err := ask(addr)
		if err != nil && !errors.Is(err, errNoAnswer) {
			return n, err
		}
		if got == want {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("no connection reached %q in %d tries (the last: %q, %v)", want, n, got, err)
		}
	}
}

// waitRoute waits until new connections reach the backend named want, and
// checks that the next few do too. It returns how long the first took.
func waitRoute(t testing.TB, addr, want string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := askUntil(addr, want, start.Add(e2eWait)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	expectRoute(t, addr, want, 5)
	return took
}

// expectRoute checks that n new connections in a row reach want.
func expectRoute(t testing.TB, addr, want string, n int) {
	t.Helper()
	for i := range n {
		if got, err := ask(addr); err != nil || got != want {
			t.Fatalf("connection %d of %d reached %q (%v), want %q", i+1, n, got, err, want)
		}
	}
}

// waitNoEndpoints waits until new connections are closed with reason
// no_endpoints, and checks that the next few are too, at once.
func waitNoEndpoints(t testing.TB, p *testProxy) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for {
		before := p.srv.Stats().Ended[server.ReasonNoEndpoints]
		got, err := ask(p.addr)
		if errors.Is(err, errNoAnswer) {
			waitEnded(t, p.srv, server.ReasonNoEndpoints, before+1)
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections still reach %q after %v", got, e2eWait)
		}
	}
	before := p.srv.Stats().Ended[server.ReasonNoEndpoints]
	const n = 5
	start := time.Now()
	for i := range n {
		if got, err := ask(p.addr); !errors.Is(err, errNoAnswer) {
			t.Fatalf("connection %d of %d: %q, %v; want it closed (no endpoints)", i+1, n, got, err)
		}
	}
	// Failing fast: well before the connect timeout (5 s) that a
	// connection waiting for endpoints would end at.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%d connections to a name without endpoints took %v to close", n, d)
	}
	waitEnded(t, p.srv, server.ReasonNoEndpoints, before+n)
}

// nameState returns the snapshot of the proxy's one name.
func nameState(t testing.TB, p *testProxy) binder.NameSnapshot {
	t.Helper()
	snap := p.Routers()[0].Names()
	if len(snap) != 1 {
		t.Fatalf("%d names cached, want 1: %+v", len(snap), snap)
	}
	return snap[0]
}

// waitFailures waits until the proxy's one name has had n Failed answers:
// the interpreter has seen its source fail.
func waitFailures(t testing.TB, p *testProxy, n uint64) binder.NameSnapshot {
	t.Helper()
	var s binder.NameSnapshot
	waitFor(t, fmt.Sprintf("%d failed answers", n), e2eWait, func() bool {
		s = nameState(t, p)
		return s.Failures >= n
	})
	return s
}

// replaceFile writes content to dir/name through a temporary file renamed
// over it, as a deployment tool does, so that a reader never sees a part.
func replaceFile(t testing.TB, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}
