package router

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/server"
)

// accessQueue bounds the access log lines waiting to be written: past it a
// line is dropped and counted, never waited for. A variable for the tests.
var accessQueue = 4096

// accessRecord is one closed stream, as the access log tells it. Built on
// a loop from what the stream holds, without allocating.
type accessRecord struct {
	router, listen, dst string
	source, endpoint    netip.AddrPort
	up, down            uint64
	duration            time.Duration
	reason              server.Reason
}

// accessLog writes one line per closed stream on its own goroutine.
type accessLog struct {
	log     *slog.Logger
	file    io.Closer // nil when the lines go to the process's log output
	queue   chan accessRecord
	dropped atomic.Uint64
	// stopping: the proxy stops, every open stream ends at once, and
	// nothing waits on the loops any more: record waits for room rather
	// than drop the lines, until giveUp is closed (stopWait after the
	// stop began), so that a stuck file never holds the stop up for good.
	stopping atomic.Bool
	giveUp   chan struct{}
	done     chan struct{}
}

// newAccessLog opens path for appending (stderr when empty) and starts the
// writer; handler makes the slog handler of the log format for w.
func newAccessLog(path string, handler func(io.Writer) slog.Handler) (*accessLog, error) {
	a := &accessLog{queue: make(chan accessRecord, accessQueue), done: make(chan struct{}), giveUp: make(chan struct{})}
	var w io.Writer = os.Stderr
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		w, a.file = f, f
	}
	a.log = slog.New(handler(w))
	go a.run()
	return a, nil
}

// record queues r for writing. Any goroutine; it never blocks, but while
// the proxy stops.
func (a *accessLog) record(r accessRecord) {
	select {
	case a.queue <- r:
	default:
		if a.stopping.Load() {
			select {
			case a.queue <- r:
				return
			case <-a.giveUp:
			}
		}
		a.dropped.Add(1)
	}
}

// run writes the queued records until close, then what is left.
func (a *accessLog) run() {
	defer close(a.done)
	for r := range a.queue {
		a.log.Info("access", "router", r.router, "server", r.listen, "source", r.source, "dst", r.dst,
			"endpoint", r.endpoint, "bytes_up", r.up, "bytes_down", r.down,
			"duration", r.duration, "reason", r.reason.String())
		if n := a.dropped.Swap(0); n > 0 {
			a.log.Warn("access log lines dropped: the writer fell behind", "dropped", n)
		}
	}
}

// stopWait bounds how long the streams ended by a stop wait for room in
// the queue.
const stopWait = 5 * time.Second

// stop makes record wait for room, for at most stopWait from now: every
// open stream is about to end at once.
func (a *accessLog) stop() {
	if a.stopping.CompareAndSwap(false, true) {
		time.AfterFunc(stopWait, func() { close(a.giveUp) })
	}
}

// close writes what is queued and closes the file. Call it once nothing
// records any more (the loops have stopped).
func (a *accessLog) close() error {
	close(a.queue)
	<-a.done
	if n := a.dropped.Load(); n > 0 {
		a.log.Warn("access log lines dropped: the writer fell behind", "dropped", n)
	}
	if a.file != nil {
		return a.file.Close()
	}
	return nil
}
