package router

import (
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/server"
)

// Operators read what happens to endpoints and connects in the log as it
// happens; the loops must not write it. A loop hands each event to the
// proxy's event goroutine through a bounded queue, without blocking or
// allocating; what the queue cannot take is counted and said later.

// eventQueue bounds the events waiting for the event goroutine.
const eventQueue = 256

// failureLogInterval is how often connect failures are summed up in the
// log, per server: at most one line per server per interval.
const failureLogInterval = time.Second

// setAside is an endpoint that failure accrual has just set aside.
type setAside struct {
	router, dst string
	addr        netip.AddrPort
	penalty     time.Duration
}

// events carries set-aside endpoints from the loops to the log.
type events struct {
	log     *slog.Logger
	queue   chan setAside
	dropped atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
}

func newEvents(log *slog.Logger) *events {
	return &events{log: log, queue: make(chan setAside, eventQueue), stop: make(chan struct{}), done: make(chan struct{})}
}

// setAside reports that e was set aside. Any goroutine; never blocks.
func (ev *events) setAside(r *Router, dst string, e *endpoint.Endpoint) {
	select {
	case ev.queue <- setAside{router: r.label, dst: dst, addr: e.Addr, penalty: r.client.FailureAccrual.Penalty}:
	default:
		ev.dropped.Add(1)
	}
}

// run logs events until close; every failureLogInterval it also logs the
// connect failures of each server since the last look.
func (ev *events) run(servers func() []watchedServer) {
	defer close(ev.done)
	tick := time.NewTicker(failureLogInterval)
	defer tick.Stop()
	last := map[*server.Server][server.NumConnectFailures]uint64{}
	for {
		select {
		case <-ev.stop:
			return
		case e := <-ev.queue:
			ev.log.Warn("endpoint set aside after consecutive connect failures",
				"router", e.router, "dst", e.dst, "endpoint", e.addr, "penalty", e.penalty)
			time.AfterFunc(e.penalty, func() {
				ev.log.Info("endpoint back in rotation: its penalty is over",
					"router", e.router, "dst", e.dst, "endpoint", e.addr)
			})
		case <-tick.C:
			if n := ev.dropped.Swap(0); n > 0 {
				ev.log.Warn("endpoint events not logged: too many at once", "dropped", n)
			}
			for _, ws := range servers() {
				now := ws.srv.Stats().ConnectFailures
				prev := last[ws.srv]
				last[ws.srv] = now
				if now == prev {
					continue
				}
				attrs := []any{"router", ws.router, "listen", ws.srv.Addr(), "dst", ws.srv.Config().Dst, "interval", failureLogInterval}
				for cause := range now {
					if d := now[cause] - prev[cause]; d > 0 {
						attrs = append(attrs, server.ConnectFailure(cause).String(), d)
					}
				}
				ev.log.Warn("connect attempts failed", attrs...)
			}
		}
	}
}

// watchedServer is a server and its router's label.
type watchedServer struct {
	router string
	srv    *server.Server
}

func (ev *events) close() {
	close(ev.stop)
	<-ev.done
}
