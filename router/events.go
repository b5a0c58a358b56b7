package router

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/netpoll"
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
	key     asideKey
	ep      *endpoint.Endpoint
	penalty time.Duration
}

// asideKey names an endpoint of a destination of a router.
type asideKey struct {
	router, dst string
	addr        netip.AddrPort
}

// asideState is an endpoint logged as set aside and not yet back.
type asideState struct {
	ep      *endpoint.Endpoint
	repeats int // set aside again (its penalty renewed) since logged
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
	case ev.queue <- setAside{key: asideKey{router: r.label, dst: dst, addr: e.Addr}, ep: e, penalty: r.client.FailureAccrual.Penalty}:
	default:
		ev.dropped.Add(1)
	}
}

// run logs events until close. An endpoint is logged once when it is set
// aside, however often its penalty is renewed meanwhile (as it is when no
// other endpoint is left to try), and once when it is back; every
// failureLogInterval run looks for endpoints back, and logs the connect
// failures of each server since the last look.
func (ev *events) run(tallies func() []*tally) {
	defer close(ev.done)
	tick := time.NewTicker(failureLogInterval)
	defer tick.Stop()
	last := map[*tally][server.NumConnectFailures]uint64{}
	aside := map[asideKey]*asideState{}
	for {
		select {
		case <-ev.stop:
			return
		case e := <-ev.queue:
			if st, ok := aside[e.key]; ok {
				st.repeats++
				st.ep = e.ep
				continue
			}
			aside[e.key] = &asideState{ep: e.ep}
			ev.log.Warn("endpoint set aside after consecutive connect failures",
				"router", e.key.router, "dst", e.key.dst, "endpoint", e.key.addr, "penalty", e.penalty)
		case <-tick.C:
			now := netpoll.Monotonic()
			for k, st := range aside {
				if st.ep.Available(now) {
					ev.log.Info("endpoint back in rotation: its penalty is over",
						"router", k.router, "dst", k.dst, "endpoint", k.addr, "set_aside_again", st.repeats)
					delete(aside, k)
				}
			}
			if n := ev.dropped.Swap(0); n > 0 {
				ev.log.Warn("endpoint events not logged: too many at once", "dropped", n)
			}
			current := tallies()
			for _, tl := range current {
				now := tl.t.Stats().ConnectFailures
				prev := last[tl]
				last[tl] = now
				if now == prev {
					continue
				}
				attrs := []any{"router", tl.key.router, "listen", tl.key.listen, "dst", tl.key.dst, "interval", failureLogInterval}
				for cause := range now {
					if d := now[cause] - prev[cause]; d > 0 {
						attrs = append(attrs, server.ConnectFailure(cause).String(), d)
					}
				}
				ev.log.Warn("connect attempts failed", attrs...)
			}
			for tl := range last {
				if !slices.Contains(current, tl) {
					delete(last, tl) // released with its generations
				}
			}
		}
	}
}

func (ev *events) close() {
	close(ev.stop)
	<-ev.done
}
