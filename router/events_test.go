package router

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/server"
)

// syncBuffer is a log destination safe for the proxy's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLoggedRefused starts a proxy in front of one refused endpoint that
// is set aside for penalty at its first failure, logging into the buffer
// it returns. The test stops it (and may check the log after).
func startLoggedRefused(t *testing.T, penalty time.Duration) (*Proxy, *syncBuffer, string) {
	t.Helper()
	refused := refusedAddr(t)
	cfg := testConfig(refused)
	cfg.Routers[0].Client.FailureAccrual.ConsecutiveFailures = 1
	cfg.Routers[0].Client.FailureAccrual.Penalty = penalty
	logs := &syncBuffer{}
	p, err := Start(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p, logs, refused
}

// An endpoint set aside, and connect failures, are logged as they happen,
// not only counted for the summary at shutdown.
func TestSetAsideAndConnectFailuresAreLogged(t *testing.T) {
	p, logs, refused := startLoggedRefused(t, 200*time.Millisecond)
	t.Cleanup(func() { _ = p.Stop() })
	srv := p.Routers()[0].Servers()[0]
	expectClosed(t, dial(t, srv.Addr().String()), 5*time.Second)
	waitEnded(t, srv, server.ReasonConnectFailed, 1)
	for _, want := range []string{
		`msg="endpoint set aside after consecutive connect failures" router=test dst=/svc/test endpoint=` + refused,
		`msg="connect attempts failed" router=test listen=` + srv.Addr().String() + ` dst=/svc/test interval=1s refused=1`,
		`msg="endpoint back in rotation: its penalty is over" router=test dst=/svc/test endpoint=` + refused + ` set_aside_again=0`,
	} {
		waitFor(t, "log line "+want, 10*time.Second, func() bool { return strings.Contains(logs.String(), want) })
	}
}

// When every connect attempt fails before the server's connect_timeout,
// the connection ends as connect_failed (its attempts counted by cause):
// connect_timeout is the server's deadline only.
func TestAttemptsTimingOutEndAsConnectFailed(t *testing.T) {
	cfg := testConfig(stalledListener(t))
	cfg.Routers[0].Servers[0].ConnectTimeout = 10 * time.Second
	cfg.Routers[0].Client.ConnectTimeout = 100 * time.Millisecond
	p := startProxy(t, cfg)
	start := time.Now()
	expectClosed(t, dial(t, p.addr), 5*time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v: the server's deadline, not the attempt's", d)
	}
	st := waitEnded(t, p.srv, server.ReasonConnectFailed, 1)
	if st.Ended[server.ReasonConnectTimeout] != 0 || st.ConnectFailures[server.ConnectTimeout] != 1 {
		t.Errorf("ended %v, connect failures %v: want connect_failed after one timed-out attempt", st.Ended, st.ConnectFailures)
	}
}
