package consul

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

const (
	// defaultMaxConns bounds the interpreter's connections to the agent
	// by default, well below Consul's default limit of 200 from one
	// address; max_connections sets it within [minConns, maxMaxConns].
	// Three in four may carry blocking queries (blockingSlots); the
	// others are kept for queries that do not block, so that these
	// never wait for a long poll to end.
	defaultMaxConns = 64
	minConns        = 4
	maxMaxConns     = 10000
	// queryInterval and queryBurst are each name's token bucket: after
	// two queries in a row, one a second at most.
	queryInterval = time.Second
	queryBurst    = 2
	// minSharedWait is the shortest wait a blocking query is given when
	// names take turns on the slots.
	minSharedWait = time.Second

	idleConnTimeout = 90 * time.Second
	maxHeaderBytes  = 64 << 10
	// TCP keepalive (HTTP/2 pings over https) finds a dead agent behind
	// a long poll well before its wait ends.
	keepAliveIdle     = 30 * time.Second
	keepAliveInterval = 10 * time.Second
	keepAliveCount    = 3
	// drainSize bounds what is read of a response after its use, so
	// that its connection can be used again.
	drainSize = 64 << 10
)

var errClosed = errors.New("consul: interpreter closed")

// limits are the interpreter's fixed bounds, set by newInterpreter from
// the constants above; tests shorten them before the first Resolve.
type limits struct {
	interval      time.Duration // token bucket: one query per interval...
	burst         int           // ...after a burst of this many
	slots         int           // the capacity of Interpreter.slots
	minSharedWait time.Duration
}

// Interpreter resolves names through a Consul agent's health endpoint.
// Every watched name runs one loop of queries on its own goroutine; all
// share one http.Client.
type Interpreter struct {
	st    Settings
	api   string // st.Addr without trailing slashes
	env   interpreter.Env
	log   *slog.Logger
	lim   limits
	token atomic.Pointer[string] // the ACL token sent, "" for none

	client *http.Client
	slots  chan struct{} // one element per blocking query under way
	active atomic.Int64  // names watched, for sharing the slots

	tokenMu   sync.Mutex // serialises re-reading the token file
	tokenRead time.Time  // when the token file was last read

	ctx    context.Context // done at Close; every watch's context derives from it
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed; makes every wg.Add of a Resolve happen before Close's Wait
	closed bool
	wg     sync.WaitGroup // the watch goroutines
}

var _ interpreter.Interpreter = (*Interpreter)(nil)

// blockingSlots is how many of maxConns connections may carry blocking
// queries: three in four.
func blockingSlots(maxConns int) int { return maxConns * 3 / 4 }

func newInterpreter(st Settings, api, token string, env interpreter.Env) *Interpreter {
	ctx, cancel := context.WithCancel(context.Background())
	n := &Interpreter{
		st:  st,
		api: api,
		env: env,
		log: env.Log.With("consul", api),
		lim: limits{interval: queryInterval, burst: queryBurst, slots: blockingSlots(st.MaxConnections), minSharedWait: minSharedWait},
		client: &http.Client{
			Transport: newTransport(st),
			// Consul does not redirect; a redirect is answered as an
			// error rather than followed somewhere unexpected.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		slots:     make(chan struct{}, blockingSlots(st.MaxConnections)),
		tokenRead: time.Now(),
		ctx:       ctx,
		cancel:    cancel,
	}
	n.token.Store(&token)
	return n
}

// newTransport is the interpreter's own transport: no proxy from the
// environment, bounded connecting, a bounded number of connections kept
// alive between queries, and HTTP/2 when an https agent offers it. No
// response header timeout: a blocking query's headers come with its
// answer; each query has its own deadline instead.
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
	return &http.Transport{
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    st.Timeout,
		MaxConnsPerHost:        st.MaxConnections,
		MaxIdleConns:           st.MaxConnections,
		MaxIdleConnsPerHost:    st.MaxConnections,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		ForceAttemptHTTP2:      true,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: keepAliveIdle,
			PingTimeout:     st.Timeout,
		},
	}
}

// Resolve starts the query loop of name on a new goroutine. It does no
// I/O. A name that is not /svc/<service>, or a Resolve after Close, gets a
// Failed answer at once.
func (n *Interpreter) Resolve(name string, sink interpreter.Sink) (stop func()) {
	service, err := serviceOf(name)
	if err != nil {
		n.env.Stats.Errors.Add(1)
		sink.Update(interpreter.FailedWith(fmt.Errorf("consul: %w", err)))
		return func() {}
	}
	stop = n.start(name, service, sink)
	if stop == nil {
		sink.Update(interpreter.FailedWith(errClosed))
		return func() {}
	}
	return stop
}

// start starts the watch of name unless the interpreter is closed, and
// returns its stop function (nil when closed).
func (n *Interpreter) start(name, service string, sink interpreter.Sink) func() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	w := n.newNameWatch(name, service, sink)
	n.wg.Add(1)
	n.active.Add(1)
	go w.loop()
	return w.release
}

// Close stops every watch and waits for their goroutines to end. It may be
// called more than once.
func (n *Interpreter) Close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	n.client.CloseIdleConnections()
	return nil
}

// blockingWait is the wait of the next blocking query: the configured
// wait, shared out when more names are watched than there are slots (each
// slot then serves several names in turn, so each query waits less, and
// every name is still asked about once per wait), then cut by up to a
// sixteenth at random.
func (n *Interpreter) blockingWait() time.Duration {
	wait := n.st.Wait
	if active, slots := time.Duration(n.active.Load()), time.Duration(n.lim.slots); active > slots {
		wait = max(wait*slots/active, min(n.lim.minSharedWait, wait))
	}
	return waitMillis(wait - rand.N(wait/16+1))
}

// acquire takes a blocking query slot, or reports that ctx ended first.
// The goroutines waiting for one are served in turn.
func (n *Interpreter) acquire(ctx context.Context) bool {
	select {
	case n.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (n *Interpreter) releaseSlot() { <-n.slots }

// query sends one health query and decodes its answer and index. A
// response other than a 200 with an X-Consul-Index and a JSON array is an
// error.
func (n *Interpreter) query(ctx context.Context, target string) (answer, uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return answer{}, 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "switchyard")
	if token := *n.token.Load(); token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return answer{}, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answer{}, 0, n.statusError(resp)
	}
	index, err := parseIndex(resp.Header.Values("X-Consul-Index"))
	if err != nil {
		return answer{}, 0, err
	}
	a, err := readHealth(resp.Body)
	if err != nil {
		return answer{}, 0, err
	}
	// Reading the response to its end lets the connection be used again.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainSize))
	return a, index, nil
}

// parseIndex reads the X-Consul-Index header, which every answer of a
// blocking endpoint carries.
func parseIndex(vals []string) (uint64, error) {
	if len(vals) == 0 {
		return 0, errors.New("response has no X-Consul-Index header (is addr a Consul agent?)")
	}
	index, err := strconv.ParseUint(vals[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("response has X-Consul-Index %s, not an unsigned integer", clip(vals[0]))
	}
	return index, nil
}

// statusError describes a response other than 200 with the start of its
// body, where Consul puts the reason ("ACL not found"). A 401 or 403 also
// has the token file read again, in case the token was rotated.
func (n *Interpreter) statusError(resp *http.Response) error {
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		n.rereadToken()
	}
	status := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if text := http.StatusText(resp.StatusCode); text != "" {
		status += " " + text
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxTextSize+1))
	if len(body) == 0 {
		return errors.New(status)
	}
	return fmt.Errorf("%s: %s", status, excerpt(body))
}

// rereadToken reads the token file again, at most once per backoff_min,
// and takes the token it holds from then on.
func (n *Interpreter) rereadToken() {
	if n.st.TokenFile == "" {
		return
	}
	n.tokenMu.Lock()
	defer n.tokenMu.Unlock()
	if time.Since(n.tokenRead) < n.st.BackoffMin {
		return
	}
	n.tokenRead = time.Now()
	token, err := readTokenFile(n.st.TokenFile)
	switch {
	case err != nil:
		n.log.Warn("consul: Consul denied a query and the token file cannot be read again; keeping the token", "error", err)
	case token != *n.token.Load():
		n.token.Store(&token)
		n.log.Info("consul: Consul denied a query; read a new token from the token file", "token_file", n.st.TokenFile)
	}
}
