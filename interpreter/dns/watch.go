package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// watch is one name being resolved for one sink. Its state moves between
// three places, one at a time: its timer (waiting until the answer's TTL
// or the backoff runs out), the resolver's queue, and a worker running
// refresh. So refresh never runs twice at once for a watch, and the sink's
// calls are never concurrent.
type watch struct {
	r      *resolver
	target target
	ctx    context.Context
	sink   interpreter.Sink
	log    *slog.Logger
	cancel context.CancelFunc // ends ctx, aborting a lookup in flight
	ended  atomic.Bool        // end has run

	mu      sync.Mutex
	stopped bool
	timer   *time.Timer

	// Used by refresh only.
	backoff   interpreter.Backoff
	last      interpreter.Resolution // last answer delivered
	delivered bool
	outage    interpreter.Outage // the last lookup failed: logs a run of failures once, then the recovery
}

// end stops the watch: it is the stop function Resolve returns.
// Idempotent; it does not block.
func (w *watch) end() {
	if w.ended.Swap(true) {
		return
	}
	w.cancel()
	w.stop()
	w.r.forget(w)
}

// stop stops the timer; a refresh running sees ctx done and delivers
// nothing.
func (w *watch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *watch) done() bool { return w.ctx.Err() != nil || w.r.ctx.Err() != nil }

// refresh looks the name up once, delivers the answer if it differs from
// the last one delivered, and schedules the next lookup: when the answer's
// TTL runs out, or after a backoff if the lookup failed. Runs on a worker.
func (w *watch) refresh() {
	if w.done() {
		return
	}
	if w.outage.Failing() {
		w.r.stats.Reconnects.Add(1)
	}
	res, ttl, err := w.r.lookup(w.ctx, w.target)
	if w.done() {
		return
	}
	var next time.Duration
	if err != nil {
		next = w.fail(fmt.Errorf("dns: %w", err))
	} else {
		next = w.succeed(res, ttl)
	}
	w.schedule(next)
}

// succeed delivers a Bound or NotFound answer and returns when to ask
// again.
func (w *watch) succeed(res interpreter.Resolution, ttl uint32) time.Duration {
	w.r.stats.LastGood.Store(time.Now().UnixNano())
	w.backoff.Reset()
	next := w.r.refreshAfter(ttl)
	w.outage.Answered(w.log, "dns", res)
	if w.delivered && interpreter.SameAnswer(w.last, res) {
		w.log.Debug("dns: answer unchanged", "ttl", ttl, "next", next)
		return next
	}
	w.last, w.delivered = res, true
	w.r.stats.Updates.Add(1)
	w.log.Debug("dns: answer", "state", res.State, "endpoints", res.Endpoints, "ttl", ttl, "next", next)
	// A copy, so that a sink that keeps or edits the slice cannot change
	// what the next answer is compared with.
	w.sink.Update(interpreter.Resolution{State: res.State, Endpoints: slices.Clone(res.Endpoints)})
	return next
}

// fail delivers a Failed answer, so the sink keeps its last good set, and
// returns when to try again. Only the first failure in a row is logged
// above Debug.
func (w *watch) fail(err error) time.Duration {
	if qerr := (*queryError)(nil); !errors.As(err, &qerr) {
		w.r.stats.Errors.Add(1) // query counts the failures of servers
	}
	next := w.backoff.Next()
	w.outage.Failed(w.log, "dns", err, "retry", next)
	w.last, w.delivered = interpreter.FailedWith(err), true
	w.sink.Update(w.last)
	return next
}

// schedule arms the timer that hands the watch to a worker after d.
func (w *watch) schedule(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(d, func() { w.r.dispatch(w) })
		return
	}
	w.timer.Reset(d)
}
