package router

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/duplex"
	"github.com/switchyard-proxy/switchyard/netpoll"
	"github.com/switchyard-proxy/switchyard/server"
)

// copyBufferSize is the per-loop buffer of the duplex copy fallback.
const copyBufferSize = 64 << 10

// freeStreams bounds the stream structs a worker keeps for reuse.
const freeStreams = 1024

// worker is the per-loop state every stream on the loop shares. Loop only.
type worker struct {
	loop *netpoll.Loop
	pool *duplex.Pool
	rng  *rand.Rand
	free []*stream
	// peek is the buffer of handshakes (made at the loop's first),
	// proxyHdr that of the PROXY headers sent.
	peek     []byte
	proxyHdr [proxyHeaderRoom]byte
	// waiting holds the streams parked on this loop until their name's
	// first answer, by balancer. A balancer enters the map with its first
	// waiter on this loop, when the worker subscribes to its answer
	// (balancer.OnAnswer, at most once per worker and balancer), and
	// leaves it with its last waiter.
	waiting map[*balancer.Balancer][]*stream
	log     *slog.Logger
}

// wakeRetries and wakeRetryDelay bound how long postWake keeps trying a
// loop whose queue is full: past that, waiters are woken by the next
// connection to the name on this loop, or fail at their connect deadline.
const (
	wakeRetries    = 20
	wakeRetryDelay = 50 * time.Millisecond
)

// postWake is the balancer's call when the first answer of bal arrives:
// it runs on the interpreter's goroutine and hands the wake-up to the loop.
func (w *worker) postWake(bal *balancer.Balancer) { w.tryWake(bal, wakeRetries) }

func (w *worker) tryWake(bal *balancer.Balancer, retries int) {
	err := w.loop.Post(func() { w.wake(bal) })
	switch {
	case err == nil, errors.Is(err, netpoll.ErrStopped):
	case retries > 0:
		time.AfterFunc(wakeRetryDelay, func() { w.tryWake(bal, retries-1) })
	default:
		w.log.Warn("cannot wake the connections waiting for a name: the loop's queue stays full",
			"loop", w.loop.String(), "name", bal.Name())
	}
}

// wake lets every stream waiting on this loop for bal go on, now that bal
// has its first answer. Loop only.
func (w *worker) wake(bal *balancer.Balancer) {
	list, ok := w.waiting[bal]
	if !ok {
		return
	}
	delete(w.waiting, bal)
	for _, s := range list {
		bal.DoneWaiting()
		s.phase = phaseConnecting
		s.connect()
	}
}

// Proxy is a running Switchyard: the runtime (event loops, pipe pools,
// listening sockets) and the generation it runs (see generation).
type Proxy struct {
	log      *slog.Logger
	opt      Options
	workers  []*worker
	runErr   chan error
	events   *events
	stopping atomic.Bool // Stop has begun
	limit    uint64      // open files, for max_connections = 0
	// eventsRunning: Start got as far as running the event goroutine,
	// which Stop then ends.
	eventsRunning bool
	stop          sync.Once

	gen atomic.Pointer[generation] // the one new connections go to

	// mu serializes Reload, the release of generations and Stop, and
	// guards what follows.
	mu      sync.Mutex
	nextGen uint64
	live    []*generation                // not yet released, the current one last
	servers map[serverKey]*server.Server // the current generation's
	gone    []*server.Server             // removed by a reload, connections still open
	tallies map[tallyKey]*tally          // of the live generations
	// reloads counts reloads by result: taken, or failed (here or, as
	// ReloadFailed says, before the configuration reached the proxy).
	reloads [2]atomic.Uint64
	// releasing counts the release goroutines under way: Stop waits for
	// them before the loops go.
	releasing sync.WaitGroup
}

// Start builds the event loops and routers of cfg, binds every server and
// starts forwarding. On error nothing is left open.
func Start(cfg *Config, log *slog.Logger) (*Proxy, error) {
	return StartWith(cfg, log, Options{})
}

// Options are a proxy's settings that do not come from its configuration.
type Options struct {
	// AccessHandler makes the slog handler access lines are written with,
	// on the access log's file or stderr; nil: slog's text handler.
	AccessHandler func(io.Writer) slog.Handler
}

// StartWith is Start with options.
func StartWith(cfg *Config, log *slog.Logger, opt Options) (*Proxy, error) {
	n := cfg.workers()
	limit, err := openFilesLimit()
	if err != nil {
		limit = fallbackOpenFiles
	}
	if opt.AccessHandler == nil {
		opt.AccessHandler = func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }
	}
	p := &Proxy{
		log: log, opt: opt, limit: limit, runErr: make(chan error, n), events: newEvents(log),
		servers: map[serverKey]*server.Server{}, tallies: map[tallyKey]*tally{},
	}
	for i := 0; i < n; i++ {
		l, err := netpoll.NewLoop(i)
		if err != nil {
			p.Stop() // stops the loops already running
			return nil, err
		}
		w := &worker{
			loop: l,
			pool: duplex.NewPool(cfg.Runtime.PipeSize, cfg.Runtime.MaxPipes, copyBufferSize),
			rng:  rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),

			waiting: make(map[*balancer.Balancer][]*stream),
			log:     log,
		}
		p.workers = append(p.workers, w)
		go p.runLoop(w)
	}
	p.mu.Lock()
	pl, err := p.build(p.fit(cfg))
	if err == nil {
		p.commit(pl)
	}
	p.mu.Unlock()
	if err != nil {
		p.Stop()
		return nil, err
	}
	p.eventsRunning = true
	go p.events.run(p.watched)
	return p, nil
}

// fit returns a copy of cfg with max_connections = 0 made a share of the
// open-files limit: the caller's configuration keeps saying 0.
func (p *Proxy) fit(cfg *Config) *Config {
	cfg = cfg.withServersCopied()
	cfg.FitOpenFiles(p.limit)
	return cfg
}

// Reload builds a generation of cfg and swaps it in: servers whose address
// cfg keeps go on accepting on the same sockets (no connection is refused
// across the swap) under its settings, new ones start, those it drops stop
// accepting while their connections run to their end, and routers whose
// interpreter and balancer settings are unchanged (or can be taken in
// place, as static names can) keep their names, balancers and load.
// Connections open keep the generation they started in.
//
// What a running proxy cannot change (the [runtime] section) keeps its
// running value: each such key comes back in notes. On error nothing has
// changed. Safe from any goroutine; reloads run one at a time.
func (p *Proxy) Reload(cfg *Config) (notes []string, err error) {
	p.mu.Lock()
	if p.stopping.Load() {
		p.mu.Unlock()
		return nil, errors.New("reload: the proxy is stopping")
	}
	if n := len(p.live); n >= maxGenerations {
		p.mu.Unlock()
		p.reloads[reloadFailed].Add(1)
		return nil, fmt.Errorf("reload refused: %d configurations are live, the oldest still with connections open "+
			"(each reload keeps the one before until its last connection ends; lifetime and idle_timeout bound how long)", n)
	}
	cfg = cfg.withServersCopied()
	notes = keepRuntime(cfg, p.gen.Load().cfg) // before fit: it sizes by the runtime that runs
	cfg = p.fit(cfg)
	pl, err := p.build(cfg)
	if err != nil {
		p.mu.Unlock()
		p.reloads[reloadFailed].Add(1)
		return nil, err
	}
	removed := p.commit(pl)
	p.mu.Unlock()
	p.reloads[reloadTaken].Add(1)
	// Outside the lock: a loop slow to close its listener holds up only
	// this reload, not the release of older generations.
	for _, s := range removed {
		s.Shut()
	}
	return notes, nil
}

// Indexes of Proxy.reloads.
const (
	reloadTaken = iota
	reloadFailed
)

// ReloadFailed counts, for the metrics, a reload that failed before it
// reached Reload: the file could not be read or was not valid.
func (p *Proxy) ReloadFailed() { p.reloads[reloadFailed].Add(1) }

// maxGenerations bounds the generations live at once: the running one and
// those before it that still have connections open. Each holds its
// binders' watches and its access log; past the bound a reload is refused
// until the oldest is released.
const maxGenerations = 16

// keepRuntime sets cfg's [runtime] to the running one's and says which
// keys differed.
func keepRuntime(cfg, running *Config) []string {
	var notes []string
	note := func(key string, want, have int) {
		if want != have {
			notes = append(notes, fmt.Sprintf("runtime.%s = %d takes a restart: keeping %d", key, want, have))
		}
	}
	note("workers", cfg.Runtime.Workers, running.Runtime.Workers)
	note("pipe_size", cfg.Runtime.PipeSize, running.Runtime.PipeSize)
	note("max_pipes", cfg.Runtime.MaxPipes, running.Runtime.MaxPipes)
	cfg.Runtime = running.Runtime
	return notes
}

// Config returns the configuration running: the last one Start or Reload
// took, with max_connections = 0 made a number.
func (p *Proxy) Config() *Config { return p.gen.Load().cfg }

// Generation numbers the configuration running: 1 for Start's, one more
// for each reload.
func (p *Proxy) Generation() uint64 { return p.gen.Load().id }

// afterLoops calls done once every loop has run a task posted now, or has
// stopped: no loop is then inside a task that began before. A loop whose
// queue is full is asked again until it takes the task.
func (p *Proxy) afterLoops(done func()) {
	var left atomic.Int32
	left.Store(int32(len(p.workers)))
	one := func() {
		if left.Add(-1) == 0 {
			done()
		}
	}
	for _, w := range p.workers {
		postRetry(w.loop, one)
	}
}

// postRetryDelay is how long postRetry waits before asking a loop whose
// queue was full again.
const postRetryDelay = 10 * time.Millisecond

// postRetry runs f on l, or here if l has stopped.
func postRetry(l *netpoll.Loop, f func()) {
	switch err := l.Post(f); {
	case errors.Is(err, netpoll.ErrQueueFull):
		time.AfterFunc(postRetryDelay, func() { postRetry(l, f) })
	case err != nil:
		f()
	}
}

// watched is the tallies the event goroutine logs connect failures of.
func (p *Proxy) watched() []*tally {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*tally, 0, len(p.tallies))
	for _, tl := range p.tallies {
		out = append(out, tl)
	}
	return out
}

// runLoop runs one loop: it is the loop's goroutine, named for stack dumps.
func (p *Proxy) runLoop(w *worker) {
	err := w.loop.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w", w.loop, err)
	}
	p.runErr <- err
}

func (p *Proxy) loops() []*netpoll.Loop {
	out := make([]*netpoll.Loop, len(p.workers))
	for i, w := range p.workers {
		out[i] = w.loop
	}
	return out
}

func (p *Proxy) worker(l *netpoll.Loop) *worker { return p.workers[l.ID()] }

// Routers returns the running generation's routers in configuration order.
func (p *Proxy) Routers() []*Router { return p.gen.Load().routers }

// Workers is the number of event loops.
func (p *Proxy) Workers() int { return len(p.workers) }

// allServers returns every server with a listening socket or a
// connection open: the running generation's and those a reload removed.
func (p *Proxy) allServers() []*server.Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*server.Server, 0, len(p.servers)+len(p.gone))
	for _, s := range p.servers {
		out = append(out, s)
	}
	return append(out, p.gone...)
}

// Stop closes every listener and connection (reason shutdown), stops the
// loops and the interpreters' watches, and waits for the loops to exit. It
// returns the loops' errors, if any. Safe to call more than once.
func (p *Proxy) Stop() error {
	var errs []error
	p.stop.Do(func() {
		p.mu.Lock()
		p.stopping.Store(true) // under mu: no Reload or release after this
		live := slices.Clone(p.live)
		servers := make([]*server.Server, 0, len(p.servers)+len(p.gone))
		for _, s := range p.servers {
			servers = append(servers, s)
		}
		servers = append(servers, p.gone...)
		p.mu.Unlock()
		for _, g := range live {
			if g.access != nil {
				g.access.stop()
			}
		}
		// No server takes a new connection from here on, on any loop,
		// while the loops close down one by one.
		for _, s := range servers {
			s.Close()
		}
		for _, w := range p.workers {
			w.loop.Stop()
		}
		for _, w := range p.workers {
			<-w.loop.Done()
			if err := <-p.runErr; err != nil {
				errs = append(errs, err)
			}
		}
		if p.eventsRunning {
			p.events.close()
		}
		// The loops have stopped: no stream records any more, and no
		// generation is released from here on but by us.
		p.releasing.Wait()
		var closing []*names
		for _, g := range live {
			if g.access != nil {
				if err := g.access.close(); err != nil {
					errs = append(errs, err)
				}
			}
			for _, nm := range g.names() {
				if !slices.Contains(closing, nm) {
					closing = append(closing, nm)
				}
			}
		}
		// Interpreters wake waiting connections by posting to the
		// loops: stop them before the loops' descriptors go.
		for _, nm := range closing {
			if err := nm.binder.Close(); err != nil {
				errs = append(errs, fmt.Errorf("router %s: %w", nm.cfg.Label, err))
			}
		}
		// Every loop has exited and every interpreter has stopped, so
		// nothing can post to a loop any more: their pools and
		// descriptors are ours to release.
		for _, w := range p.workers {
			w.pool.Close()
			w.loop.Free()
		}
	})
	return errors.Join(errs...)
}

// ServerStats is a server's counter snapshot (see server.Stats).
type ServerStats = server.Stats

// ReasonName names a connection-end reason by its index in ServerStats.Ended.
func ReasonName(i int) string { return server.Reason(i).String() }

// ConnectFailureName names a connect-failure cause by its index in
// ServerStats.ConnectFailures.
func ConnectFailureName(i int) string { return server.ConnectFailure(i).String() }

// Shut stops every server accepting and closes the listening sockets:
// new connections are refused while those open run on (a drain). Safe
// from any goroutine.
func (p *Proxy) Shut() {
	for _, s := range p.allServers() {
		s.Shut()
	}
}

// Open returns the number of connections open on every server.
func (p *Proxy) Open() int64 {
	var n int64
	for _, s := range p.allServers() {
		n += s.Open()
	}
	return n
}

// Ping reports whether every event loop runs a task posted to it within
// timeout: a loop wedged in a handler, or with a queue that does not
// drain, fails it. For systemd's watchdog. Safe from any goroutine.
func (p *Proxy) Ping(timeout time.Duration) error {
	answered := make(chan int, len(p.workers))
	for i, w := range p.workers {
		if err := w.loop.Post(func() { answered <- i }); err != nil {
			return fmt.Errorf("%s: %w", w.loop, err)
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for range p.workers {
		select {
		case <-answered:
		case <-deadline.C:
			return fmt.Errorf("an event loop did not answer within %s", timeout)
		}
	}
	return nil
}
