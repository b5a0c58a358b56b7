package destination

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/destination/destpb"
)

var errStreamEnded = errors.New("the Destination service ended the stream")

// A nameWatch is the state of one Resolve: what to ask, whom to tell, and
// what was told. Only its watch goroutine uses it, so the sink is never
// called concurrently.
type nameWatch struct {
	n       *Interpreter
	name    string
	req     *destpb.GetDestination
	sink    interpreter.Sink
	log     *slog.Logger
	ctx     context.Context // done when the watch is stopped, or at Close
	release func()          // ends ctx, and with it the stream; idempotent

	backoff interpreter.Backoff
	set     endpointSet
	last    interpreter.Resolution // the last good answer delivered, if hasLast
	hasLast bool                   // false until a good answer, and after each failure
	outage  interpreter.Outage     // logs the failures of a run once, then the recovery
}

func (n *Interpreter) newNameWatch(name, path string, sink interpreter.Sink) *nameWatch {
	wctx, cancel := context.WithCancel(n.ctx)
	return &nameWatch{
		n:       n,
		name:    name,
		req:     &destpb.GetDestination{Scheme: scheme, Path: path, ContextToken: n.st.ContextToken},
		sink:    sink,
		log:     n.log.With("name", name),
		ctx:     wctx,
		release: cancel,
		backoff: interpreter.Backoff{Min: n.st.BackoffMin, Max: n.st.BackoffMax},
	}
}

// watchLoop holds the name's stream open until w.ctx is done, applying
// updates as they come. When a stream ends or fails it delivers a Failed
// answer (the balancer keeps its last good set) and opens another after a
// backoff, which a good update resets.
func (w *nameWatch) watchLoop() {
	defer w.n.wg.Done()
	defer w.release()
	for first := true; ; first = false {
		if !first {
			w.n.env.Stats.Reconnects.Add(1)
		}
		err := w.stream()
		if w.ctx.Err() != nil {
			return
		}
		w.fail(err)
		if !interpreter.Sleep(w.ctx.Done(), w.backoff.Next()) {
			return
		}
	}
}

// stream runs one stream to its end and says why it ended. Opening it
// waits for the connection, which the timeout bounds; once open, the
// stream may be quiet for as long as the name does not change.
func (w *nameWatch) stream() error {
	start := time.Now()
	s, err := w.n.client.Get(w.ctx, w.req)
	if err != nil {
		if d := w.n.st.Timeout; status.Code(err) == codes.Unavailable && time.Since(start) >= d {
			return fmt.Errorf("no connection within the timeout (%s): %w", d, rpcError(err))
		}
		return rpcError(err)
	}
	w.set.newStream()
	for {
		u, err := s.Recv()
		if err == io.EOF {
			return errStreamEnded
		}
		if err != nil {
			return rpcError(err)
		}
		w.handle(u)
	}
}

// rpcError rewrites a gRPC status error as its message and code.
func rpcError(err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	return fmt.Errorf("%s (gRPC status %s)", s.Message(), s.Code())
}

// handle applies one update. It resets the backoff, and delivers the set
// unless it is the answer delivered last.
func (w *nameWatch) handle(u *destpb.Update) {
	dropped, known := w.set.apply(u)
	if !known {
		w.log.Debug("destination: update of an unknown kind ignored")
		return
	}
	stats := w.n.env.Stats
	if len(dropped) > 0 {
		stats.Errors.Add(uint64(len(dropped)))
		w.log.Warn("destination: invalid addresses left out of an update", "dropped", len(dropped), "errors", interpreter.JoinErrors(dropped, 5))
	}
	stats.LastGood.Store(time.Now().UnixNano())
	w.backoff.Reset()
	res := w.set.answer()
	w.outage.Answered(w.log, "destination", res)
	if w.hasLast && interpreter.SameAnswer(w.last, res) {
		return
	}
	w.last, w.hasLast = res, true
	if w.ctx.Err() != nil {
		return
	}
	stats.Updates.Add(1)
	// A copy: w.last must stay as it is whatever the sink does.
	w.sink.Update(interpreter.Resolution{State: res.State, Endpoints: slices.Clone(res.Endpoints)})
	w.log.Debug("destination: answer", "state", res.State, "endpoints", len(res.Endpoints))
}

// fail delivers a Failed answer for err. The first failure of a run is
// logged at Warn, the others at Debug; the balancer keeps its last good
// set, and the set stays as it is until the next stream's first update.
func (w *nameWatch) fail(err error) {
	if w.ctx.Err() != nil {
		return
	}
	w.n.env.Stats.Errors.Add(1)
	w.hasLast = false
	w.outage.Failed(w.log, "destination", err)
	w.sink.Update(interpreter.FailedWith(fmt.Errorf("destination: %s: %w", w.name, err)))
}
