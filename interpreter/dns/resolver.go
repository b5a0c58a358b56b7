// Package dns is the interpreter of kind "dns": it resolves names
// /dns/<host>/<port> to the A and AAAA records of host, and
// /dnssrv/<_service._proto.domain> to the targets and ports of its SRV
// records, by querying DNS servers, and asks again as the answers' TTLs
// run out.
//
// An idle name costs a timer, not a goroutine: when a name is due, its
// timer hands it to a worker, and at most maxInFlight workers query at
// once; names due while every worker is busy wait in a FIFO queue.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// maxInFlight bounds the lookups one interpreter runs at once.
const maxInFlight = 64

// resolver is the dns interpreter.
type resolver struct {
	servers                []string // "IP:port", asked in order
	timeout                time.Duration
	backoffMin, backoffMax time.Duration
	ttlMin, ttlMax         time.Duration
	maxInFlight            int
	log                    *slog.Logger
	stats                  *interpreter.Stats

	// ctx is the parent of every query; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	watches map[*watch]struct{} // live watches
	queue   []*watch            // due, waiting for a worker; each watch at most once
	workers int
	// wg counts the workers.
	wg sync.WaitGroup
}

var _ interpreter.Interpreter = (*resolver)(nil)

var errClosed = errors.New("dns: interpreter closed")

func newResolver(st *Settings, servers []string, env interpreter.Env) *resolver {
	ctx, cancel := context.WithCancel(context.Background())
	return &resolver{
		servers:     servers,
		timeout:     st.Timeout,
		backoffMin:  st.BackoffMin,
		backoffMax:  st.BackoffMax,
		ttlMin:      st.TTLMin,
		ttlMax:      st.TTLMax,
		maxInFlight: maxInFlight,
		log:         env.Log,
		stats:       env.Stats,
		ctx:         ctx,
		cancel:      cancel,
		watches:     make(map[*watch]struct{}),
	}
}

// Resolve starts watching name: its first lookup starts at once on a
// worker. It does no I/O itself. A name CheckName rejects gets a Failed
// answer before Resolve returns, and nothing more.
func (r *resolver) Resolve(name string, sink interpreter.Sink) (stop func()) {
	t, err := parseName(name)
	if err != nil {
		r.stats.Errors.Add(1)
		sink.Update(interpreter.FailedWith(fmt.Errorf("dns: %w", err)))
		return func() {}
	}
	w := &watch{r: r, target: t, sink: sink, log: r.log.With("name", name)}
	w.backoff = interpreter.Backoff{Min: r.backoffMin, Max: r.backoffMax}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		sink.Update(interpreter.FailedWith(errClosed))
		return func() {}
	}
	w.ctx, w.cancel = context.WithCancel(r.ctx)
	r.watches[w] = struct{}{}
	r.mu.Unlock()
	r.dispatch(w)
	return w.end
}

// dispatch runs w's lookup on a new worker, or queues it when all are
// busy. It never blocks for long: timers call it.
func (r *resolver) dispatch(w *watch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.workers >= r.maxInFlight {
		r.queue = append(r.queue, w)
		return
	}
	r.workers++
	r.wg.Add(1)
	go r.work(w)
}

// work runs w's lookup, then those of the watches queued meanwhile, until
// the queue is empty.
func (r *resolver) work(w *watch) {
	defer r.wg.Done()
	for w != nil {
		w.refresh()
		w = r.next()
	}
}

// next takes the first queued watch, or retires the calling worker.
func (r *resolver) next() *watch {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.queue) == 0 {
		r.workers--
		return nil
	}
	w := r.queue[0]
	r.queue[0] = nil
	r.queue = r.queue[1:]
	return w
}

// forget drops an ended watch.
func (r *resolver) forget(w *watch) {
	r.mu.Lock()
	delete(r.watches, w)
	r.mu.Unlock()
}

// Close stops every watch, aborts the queries in flight and waits for
// every goroutine of the interpreter to end. No sink is called once it
// has returned.
func (r *resolver) Close() error {
	r.mu.Lock()
	watches := r.watches
	r.closed, r.watches, r.queue = true, nil, nil
	r.mu.Unlock()
	r.cancel()
	for w := range watches {
		w.stop()
	}
	r.wg.Wait()
	return nil
}

// refreshAfter is how long an answer of the given TTL holds.
func (r *resolver) refreshAfter(ttl uint32) time.Duration {
	return min(max(time.Duration(ttl)*time.Second, r.ttlMin), r.ttlMax)
}
