package namerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// watchLoop holds a watch stream of the name open until w.ctx is done,
// applying answers as namerd sends them. When a stream ends or fails it
// delivers a Failed answer (the balancer keeps its last good set) and opens
// another after a backoff, which a good answer resets.
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

// stream runs one watch request to its end and says why it ended. The
// stream itself may be quiet for as long as the name does not change;
// reaching the response headers, and each answer once begun, are bounded
// by the timeout.
func (w *nameWatch) stream() error {
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	dl := &deadline{d: w.n.st.Timeout, cancel: cancel}
	defer dl.disarm()

	dl.arm("connecting and receiving the response headers")
	resp, err := w.n.get(ctx, w.url)
	if err != nil {
		return dl.explain(err)
	}
	defer resp.Body.Close()
	dl.disarm()

	ar := newAnswerReader(resp.Body)
	ar.begin = func() { dl.arm("receiving an answer") }
	ar.end = dl.disarm
	for {
		a, err := ar.Next()
		if err == io.EOF {
			return errors.New("namerd ended the watch stream")
		}
		if err != nil {
			return dl.explain(err)
		}
		if err := w.handle(a); err != nil {
			w.fail(err)
		}
	}
}

// A deadline cancels a watch request when it stays armed longer than d. It
// is used by the watch goroutine only; the timer's function touches nothing
// but fired and cancel.
type deadline struct {
	d      time.Duration
	cancel context.CancelFunc
	timer  *time.Timer
	what   string // what was under way when last armed
	fired  atomic.Bool
}

func (dl *deadline) arm(what string) {
	dl.what = what
	if dl.timer == nil {
		dl.timer = time.AfterFunc(dl.d, dl.expire)
		return
	}
	dl.timer.Reset(dl.d)
}

func (dl *deadline) disarm() {
	if dl.timer != nil {
		dl.timer.Stop()
	}
}

func (dl *deadline) expire() {
	dl.fired.Store(true)
	dl.cancel()
}

// explain replaces err, the cancellation the deadline caused, by what took
// too long.
func (dl *deadline) explain(err error) error {
	if dl.fired.Load() {
		return fmt.Errorf("%s took longer than the timeout (%s)", dl.what, dl.d)
	}
	return err
}
