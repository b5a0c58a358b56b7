package namerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// A poller asks namerd for one name's answer every period. Between requests
// the name holds a timer and no goroutine; each request runs on the timer's
// goroutine and schedules the next when it is done, so that one name never
// has two requests at once and its sink is never called concurrently.
//
// Every scheduled timer is counted in the interpreter's WaitGroup until it
// is stopped before running, or its run ends.
type poller struct {
	w *nameWatch

	mu      sync.Mutex // guards timer and stopped; each run takes it, which orders it after the schedule that armed it
	timer   *time.Timer
	stopped bool // the watch was stopped: schedule nothing more

	retry bool // the last request failed: the next is a retry
}

// startPolling schedules the first request at once and returns the
// watch's stop function, which Close also runs. Called with n.mu held.
func (w *nameWatch) startPolling() (stop func()) {
	p := &poller{w: w}
	p.schedule(0)
	unhook := context.AfterFunc(w.n.ctx, p.stop)
	return func() {
		unhook()
		p.stop()
	}
}

func (p *poller) schedule(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.w.n.wg.Add(1)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.run)
		return
	}
	p.timer.Reset(d)
}

// stop ends the polling: when the watch is stopped, or at Close. A timer
// it stops will not run, so its count is released here, last; a run under
// way releases its own. Idempotent.
func (p *poller) stop() {
	p.w.release()
	p.mu.Lock()
	p.stopped = true
	stopped := p.timer != nil && p.timer.Stop()
	p.mu.Unlock()
	if stopped {
		p.w.n.wg.Done()
	}
}

// run is one poll, on the timer's goroutine.
func (p *poller) run() {
	defer p.w.n.wg.Done()
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped {
		return
	}
	p.schedule(p.pollOnce())
}

// pollOnce sends one request and returns the delay before the next: the
// period after an answer, the backoff after an error. The period is cut by
// up to a tenth at random, so that names polled together drift apart.
func (p *poller) pollOnce() time.Duration {
	w := p.w
	if p.retry {
		w.n.env.Stats.Reconnects.Add(1)
	}
	err := w.poll()
	if w.ctx.Err() != nil {
		return 0 // stop has run or is about to: nothing more is scheduled
	}
	if err != nil {
		p.retry = true
		w.fail(err)
		return w.backoff.Next()
	}
	p.retry = false
	period := w.n.st.Period
	return period - rand.N(period/10+1)
}

// poll asks for the name's answer once and applies it. The whole request is
// bounded by the timeout.
func (w *nameWatch) poll() error {
	ctx, cancel := context.WithTimeout(w.ctx, w.n.st.Timeout)
	defer cancel()
	err := w.pollRequest(ctx)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within the timeout (%s)", w.n.st.Timeout)
	}
	return err
}

func (w *nameWatch) pollRequest(ctx context.Context) error {
	resp, err := w.n.get(ctx, w.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	ar := newAnswerReader(resp.Body)
	a, err := ar.Next()
	if err == io.EOF {
		return errors.New("namerd sent an empty response")
	}
	if err != nil {
		return err
	}
	// Reading the response to its end lets the connection be used again.
	ar.drain(maxTextSize)
	return w.handle(a)
}
