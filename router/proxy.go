package router

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/duplex"
	"github.com/switchyard-proxy/switchyard/endpoint"
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
	sa   endpoint.SockaddrBuf
	free []*stream
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

// Proxy is a running Switchyard: its event loops and its routers.
type Proxy struct {
	log      *slog.Logger
	workers  []*worker
	routers  []*Router
	runErr   chan error
	events   *events
	stopping atomic.Bool // Stop has begun
	access   *accessLog  // nil unless [log] access
	// eventsRunning: Start got as far as running the event goroutine,
	// which Stop then ends.
	eventsRunning bool
	stop          sync.Once
	procs         int // GOMAXPROCS before Start, restored by Stop
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
	// max_connections = 0 is a share of the open-files limit, given to a
	// copy: the caller's configuration keeps saying 0.
	cfg = cfg.withServersCopied()
	limit, err := openFilesLimit()
	if err != nil {
		limit = fallbackOpenFiles
	}
	cfg.FitOpenFiles(limit)
	// Each loop holds its P even while it waits for events (see
	// netpoll.Loop.wait): keep one P for everything else.
	procs := runtime.GOMAXPROCS(0)
	if procs < n+1 {
		runtime.GOMAXPROCS(n + 1)
	}
	p := &Proxy{log: log, runErr: make(chan error, n), procs: procs, events: newEvents(log)}
	if cfg.Log.Access {
		if opt.AccessHandler == nil {
			opt.AccessHandler = func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }
		}
		a, err := newAccessLog(cfg.Log.AccessPath, opt.AccessHandler)
		if err != nil {
			runtime.GOMAXPROCS(procs)
			return nil, err
		}
		p.access = a
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
	loops := p.loops()
	for i := range cfg.Routers {
		r, err := newRouter(p, &cfg.Routers[i])
		if err != nil {
			p.Stop()
			return nil, err
		}
		p.routers = append(p.routers, r)
		if err := r.listen(loops); err != nil {
			p.Stop()
			return nil, err
		}
	}
	var watched []watchedServer
	for _, r := range p.routers {
		for _, srv := range r.servers {
			watched = append(watched, watchedServer{router: r.label, srv: srv})
		}
	}
	p.eventsRunning = true
	go p.events.run(func() []watchedServer { return watched })
	return p, nil
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

// Routers returns the routers in configuration order.
func (p *Proxy) Routers() []*Router { return p.routers }

// Workers is the number of event loops.
func (p *Proxy) Workers() int { return len(p.workers) }

// Stop closes every listener and connection (reason shutdown), stops the
// loops and the interpreters' watches, and waits for the loops to exit. It
// returns the loops' errors, if any. Safe to call more than once.
func (p *Proxy) Stop() error {
	var errs []error
	p.stop.Do(func() {
		p.stopping.Store(true)
		if p.access != nil {
			p.access.stop()
		}
		// No server takes a new connection from here on, on any loop,
		// while the loops close down one by one.
		for _, r := range p.routers {
			for _, s := range r.servers {
				s.Close()
			}
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
		// The loops have stopped: no stream records any more.
		if p.access != nil {
			if err := p.access.close(); err != nil {
				errs = append(errs, err)
			}
		}
		// Interpreters wake waiting connections by posting to the
		// loops: stop them before the loops' descriptors go.
		for _, r := range p.routers {
			if err := r.binder.Close(); err != nil {
				errs = append(errs, fmt.Errorf("router %s: %w", r.label, err))
			}
		}
		// Every loop has exited and every interpreter has stopped, so
		// nothing can post to a loop any more: their pools and
		// descriptors are ours to release.
		for _, w := range p.workers {
			w.pool.Close()
			w.loop.Free()
		}
		if runtime.GOMAXPROCS(0) > p.procs {
			runtime.GOMAXPROCS(p.procs)
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
	for _, r := range p.routers {
		for _, s := range r.servers {
			s.Shut()
		}
	}
}

// Open returns the number of connections open on every server.
func (p *Proxy) Open() int64 {
	var n int64
	for _, r := range p.routers {
		for _, s := range r.servers {
			n += s.Open()
		}
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
