package namerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

const (
	// pollConns bounds the connections of a polling interpreter: a request
	// beyond it waits, within its timeout, for one to be free instead of
	// dialing another. Watch mode holds one connection per name and has
	// no such bound.
	pollConns = 32
	// idleConns bounds the kept-alive connections waiting for a request.
	idleConns       = 32
	idleConnTimeout = 90 * time.Second
	maxHeaderBytes  = 64 << 10
	// TCP keepalive finds a dead namerd behind a quiet watch stream, which
	// may rightly carry nothing for hours: about a minute after the last
	// byte from a peer that is gone, the stream fails and is retried.
	keepAliveIdle     = 30 * time.Second
	keepAliveInterval = 10 * time.Second
	keepAliveCount    = 3
)

var errClosed = errors.New("namerd: interpreter closed")

// Interpreter resolves names through namerd. All its requests share one
// http.Client; each watched name holds one streaming request on its own
// goroutine (watch mode) or a timer that sends one request per period
// (poll mode).
type Interpreter struct {
	st     Settings
	api    string // st.BaseURL without trailing slashes
	env    interpreter.Env
	log    *slog.Logger
	client *http.Client
	ctx    context.Context // done at Close; every watch's context derives from it
	cancel context.CancelFunc

	mu     sync.Mutex // guards closed; makes every wg.Add of a Resolve happen before Close's Wait
	closed bool
	wg     sync.WaitGroup // watch goroutines and poll timers, pending or running
}

var _ interpreter.Interpreter = (*Interpreter)(nil)

func newInterpreter(st Settings, api string, env interpreter.Env) *Interpreter {
	ctx, cancel := context.WithCancel(context.Background())
	return &Interpreter{
		st:  st,
		api: api,
		env: env,
		log: env.Log.With("namerd", api),
		client: &http.Client{
			Transport: newTransport(st),
			// namerd does not redirect; a redirect is answered as an error
			// rather than followed somewhere unexpected.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx:    ctx,
		cancel: cancel,
	}
}

// newTransport is the interpreter's own transport: no proxy from the
// environment, bounded connecting and waiting for headers, bounded idle
// connections, and no compression, which would hold back streamed answers.
func newTransport(st Settings) *http.Transport {
	dialer := &net.Dialer{
		Timeout: st.Timeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     keepAliveIdle,
			Interval: keepAliveInterval,
			Count:    keepAliveCount,
		},
	}
	t := &http.Transport{
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    st.Timeout,
		ResponseHeaderTimeout:  st.Timeout,
		MaxIdleConns:           idleConns,
		MaxIdleConnsPerHost:    idleConns,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		DisableCompression:     true,
	}
	if !st.Watch {
		t.MaxConnsPerHost = pollConns
	}
	return t
}

// Resolve starts watching name: on a new goroutine in watch mode, on a
// timer in poll mode. It does no I/O. A name that is not a valid namerd
// path, or a Resolve after Close, gets a Failed answer at once.
func (n *Interpreter) Resolve(name string, sink interpreter.Sink) (stop func()) {
	if err := checkPath(name); err != nil {
		n.env.Stats.Errors.Add(1)
		sink.Update(interpreter.FailedWith(fmt.Errorf("namerd: %w", err)))
		return func() {}
	}
	stop = n.start(name, sink)
	if stop == nil {
		sink.Update(interpreter.FailedWith(errClosed))
		return func() {}
	}
	return stop
}

// start starts the watch of name unless the interpreter is closed, and
// returns its stop function (nil when closed).
func (n *Interpreter) start(name string, sink interpreter.Sink) func() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	w := n.newNameWatch(name, sink)
	if n.st.Watch {
		n.wg.Add(1)
		go w.watchLoop()
		return w.release
	}
	return w.startPolling()
}

// Close stops every watch and waits for their goroutines and timers to end.
// It may be called more than once.
func (n *Interpreter) Close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	n.client.CloseIdleConnections()
	return nil
}

// resolveURL is the resolve request for name in namespace ns.
func resolveURL(api, ns, name string, watch bool) string {
	q := url.Values{"path": {name}}
	if watch {
		q.Set("watch", "true")
	}
	return api + "/api/1/resolve/" + url.PathEscape(ns) + "?" + q.Encode()
}

// get sends a GET of target and returns the response if it is a 200. For
// any other status it reads a bounded part of the body into the error.
func (n *Interpreter) get(ctx context.Context, target string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "switchyard")
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp, nil
}

// statusError describes a response other than 200 with the start of its
// body, where namerd puts the reason ("Invalid path: ...").
func statusError(resp *http.Response) error {
	status := strings.TrimSpace(fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxTextSize+1))
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New(status)
	}
	return fmt.Errorf("%s: %s", status, excerpt(body))
}
