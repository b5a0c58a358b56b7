package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// A nameWatch is the state of one Resolve: its query loop, whom it tells,
// and what it told. Only the loop's goroutine uses it, so the sink is never
// called concurrently.
type nameWatch struct {
	n       *Interpreter
	name    string
	service string
	sink    interpreter.Sink
	log     *slog.Logger
	ctx     context.Context // done when the watch is stopped, or at Close
	release func()          // ends ctx; idempotent

	// index is the X-Consul-Index to block from; 0 before the first
	// answer and after a reset: the next query does not block.
	index   uint64
	bucket  tokenBucket
	backoff interpreter.Backoff
	last    interpreter.Resolution // the last good answer delivered, if hasLast
	hasLast bool                   // false until a good answer, and after each failure
	outage  interpreter.Outage     // logs the failures of a run once, then the recovery
}

func (n *Interpreter) newNameWatch(name, service string, sink interpreter.Sink) *nameWatch {
	wctx, cancel := context.WithCancel(n.ctx)
	return &nameWatch{
		n:       n,
		name:    name,
		service: service,
		sink:    sink,
		log:     n.log.With("name", name),
		ctx:     wctx,
		release: cancel,
		bucket:  tokenBucket{interval: n.lim.interval, burst: n.lim.burst},
		backoff: interpreter.Backoff{Min: n.st.BackoffMin, Max: n.st.BackoffMax},
	}
}

// loop queries the name until w.ctx is done: each query blocks from the
// index of the last answer, so that it returns when the service changes or
// the wait ends, and the next one follows at once unless the token bucket
// holds it back. After an error it delivers a Failed answer (the balancer
// keeps its last good set) and retries after a backoff, which a good answer
// resets; the index is kept, so that the retry blocks too.
func (w *nameWatch) loop() {
	defer w.n.wg.Done()
	defer w.n.active.Add(-1)
	defer w.release()
	retry := false
	for {
		if !pause(w.ctx, w.bucket.take(time.Now())) {
			return
		}
		if retry {
			w.n.env.Stats.Reconnects.Add(1)
		}
		err := w.step()
		if w.ctx.Err() != nil {
			return
		}
		retry = err != nil
		if retry {
			w.fail(err)
			if !pause(w.ctx, w.backoff.Next()) {
				return
			}
		}
	}
}

// pause waits for d unless ctx ends first, and reports whether it did not.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	return interpreter.Sleep(ctx.Done(), d)
}

// step sends one query and applies its answer. A query that does not block
// is bounded by the timeout; a blocking one first takes a slot, then is
// bounded by its wait, the up to wait/16 Consul adds, and the timeout.
func (w *nameWatch) step() error {
	var wait time.Duration
	limit := w.n.st.Timeout
	if w.index > 0 {
		if !w.n.acquire(w.ctx) {
			return w.ctx.Err()
		}
		defer w.n.releaseSlot()
		wait = w.n.blockingWait()
		limit += wait + wait/16
	}
	ctx, cancel := context.WithTimeout(w.ctx, limit)
	defer cancel()
	target := healthURL(w.n.api, w.service, w.n.st.Datacenter, w.n.st.Tag, w.index, wait)
	a, index, err := w.n.query(ctx, target)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && w.ctx.Err() == nil {
			if wait > 0 {
				return fmt.Errorf("no answer within %s (the wait of %s, what Consul may add to it, and the timeout)", limit, wait)
			}
			return fmt.Errorf("no answer within the timeout (%s)", limit)
		}
		return err
	}
	w.advance(index)
	if err := w.handle(a); err != nil {
		// Consul answered, but nothing in the answer can be used: that
		// is no reason to ask again before the service changes.
		w.fail(err)
	}
	return nil
}

// advance takes the index of an answer, as Consul's documentation asks: it
// is taken as at least 1, so that the next query blocks even when Consul
// wrongly answers 0; one lower than the last is reset to 0, which fetches
// afresh without blocking.
func (w *nameWatch) advance(index uint64) {
	index = max(index, 1)
	if index < w.index {
		w.log.Info("consul: the index went backwards; fetching the service afresh", "index", index, "was", w.index)
		w.index = 0
		return
	}
	w.index = index
}

// handle applies one answer. A good one (Bound or NotFound) resets the
// backoff and is delivered unless it repeats the last one delivered. A
// Failed one is returned, for the caller to pass to fail.
func (w *nameWatch) handle(a answer) error {
	if a.res.State == interpreter.Failed {
		return a.res.Err
	}
	stats := w.n.env.Stats
	stats.LastGood.Store(time.Now().UnixNano())
	w.backoff.Reset()
	w.outage.Answered(w.log, "consul", a.res)
	if w.hasLast && interpreter.SameAnswer(w.last, a.res) {
		w.log.Debug("consul: answer unchanged", "state", a.res.State, "index", w.index)
		return nil
	}
	if len(a.dropped) > 0 {
		stats.Errors.Add(uint64(len(a.dropped)))
		w.log.Warn("consul: instances left out of an answer",
			"dropped", len(a.dropped), "kept", len(a.res.Endpoints), "errors", interpreter.JoinErrors(a.dropped, 5))
	}
	w.last, w.hasLast = a.res, true
	if w.ctx.Err() != nil {
		return nil
	}
	stats.Updates.Add(1)
	// A copy: w.last must stay as it is whatever the sink does.
	w.sink.Update(interpreter.Resolution{State: a.res.State, Endpoints: slices.Clone(a.res.Endpoints)})
	w.log.Debug("consul: answer", "state", a.res.State, "endpoints", len(a.res.Endpoints), "index", w.index)
	return nil
}

// fail delivers a Failed answer for err. The first failure of a run is
// logged at Warn, the others at Debug; the balancer keeps its last good set.
func (w *nameWatch) fail(err error) {
	if w.ctx.Err() != nil {
		return
	}
	w.n.env.Stats.Errors.Add(1)
	w.hasLast = false
	w.outage.Failed(w.log, "consul", err)
	w.sink.Update(interpreter.FailedWith(fmt.Errorf("consul: %s: %w", w.name, err)))
}

// A tokenBucket paces one name's queries, as Consul's documentation
// advises for blocking loops: burst queries may follow each other at once,
// after which they come one per interval, so that a result that changes
// all the time is polled rather than fetched in a busy loop, while a
// change after a quiet spell is fetched without delay. It is a GCRA: tat is
// when the bucket is full again. Not safe for concurrent use.
type tokenBucket struct {
	interval time.Duration
	burst    int
	tat      time.Time
}

// take takes a token at now and returns how long to wait before using it.
func (b *tokenBucket) take(now time.Time) time.Duration {
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	b.tat = tat.Add(b.interval)
	return tat.Add(-time.Duration(b.burst-1) * b.interval).Sub(now)
}
