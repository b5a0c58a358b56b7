package namerd

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// A nameWatch is the state of one Resolve: where to ask, whom to tell, and
// what was told. Only one goroutine uses it at a time (the watch goroutine,
// or the poll timer's run of the moment), so the sink is never called
// concurrently.
type nameWatch struct {
	n       *Interpreter
	name    string
	url     string // the resolve request, with watch=true in watch mode
	sink    interpreter.Sink
	log     *slog.Logger
	ctx     context.Context // done when the watch is stopped, or at Close
	release func()          // ends ctx; idempotent

	backoff interpreter.Backoff
	last    interpreter.Resolution // the last good answer delivered, if hasLast
	hasLast bool                   // false until a good answer, and after each failure
	outage  interpreter.Outage     // logs the failures of a run once, then the recovery
}

func (n *Interpreter) newNameWatch(name string, sink interpreter.Sink) *nameWatch {
	wctx, cancel := context.WithCancel(n.ctx)
	return &nameWatch{
		n:       n,
		name:    name,
		url:     resolveURL(n.api, n.st.Namespace, name, n.st.Watch),
		sink:    sink,
		log:     n.log.With("name", name),
		ctx:     wctx,
		release: cancel,
		backoff: interpreter.Backoff{Min: n.st.BackoffMin, Max: n.st.BackoffMax},
	}
}

// handle applies one answer from namerd. A good one (Bound or NotFound)
// resets the backoff and is delivered unless it repeats the last one
// delivered. A Failed one is returned, for the caller to pass to fail.
func (w *nameWatch) handle(a answer) error {
	if a.pending {
		w.log.Debug("namerd: answer pending")
		return nil
	}
	if a.res.State == interpreter.Failed {
		return a.res.Err
	}
	stats := w.n.env.Stats
	stats.LastGood.Store(time.Now().UnixNano())
	w.backoff.Reset()
	w.outage.Answered(w.log, "namerd", a.res)
	if w.hasLast && interpreter.SameAnswer(w.last, a.res) {
		w.log.Debug("namerd: answer unchanged", "state", a.res.State)
		return nil
	}
	if len(a.dropped) > 0 {
		stats.Errors.Add(uint64(len(a.dropped)))
		w.log.Warn("namerd: invalid addresses left out of an answer",
			"dropped", len(a.dropped), "kept", len(a.res.Endpoints), "errors", interpreter.JoinErrors(a.dropped, 5))
	}
	w.last, w.hasLast = a.res, true
	if w.ctx.Err() != nil {
		return nil
	}
	stats.Updates.Add(1)
	// A copy: w.last must stay as it is whatever the sink does.
	w.sink.Update(interpreter.Resolution{State: a.res.State, Endpoints: slices.Clone(a.res.Endpoints)})
	w.log.Debug("namerd: answer", "state", a.res.State, "endpoints", len(a.res.Endpoints))
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
	w.outage.Failed(w.log, "namerd", err)
	w.sink.Update(interpreter.FailedWith(fmt.Errorf("namerd: %s: %w", w.name, err)))
}
