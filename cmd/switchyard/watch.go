package main

import (
	"log/slog"
	"time"

	"github.com/switchyard-proxy/switchyard/router"
	"github.com/switchyard-proxy/switchyard/server"
)

// resourceWatchInterval is how often the counters of resource trouble are
// checked; at most one warning per server per interval is logged, so a
// flood of EMFILEs costs a line every few seconds, not one per accept.
const resourceWatchInterval = 5 * time.Second

// resourceWatch logs, off the event loops, when servers ran short of
// descriptors or memory since the last look: the loops only count.
type resourceWatch struct {
	servers []watched
}

type watched struct {
	router string
	srv    *server.Server
	last   server.Stats
}

func newResourceWatch(p *router.Proxy) *resourceWatch {
	w := &resourceWatch{}
	for _, r := range p.Routers() {
		for _, s := range r.Servers() {
			w.servers = append(w.servers, watched{router: r.Label(), srv: s, last: s.Stats()})
		}
	}
	return w
}

func (w *resourceWatch) report(log *slog.Logger) {
	for i := range w.servers {
		s := &w.servers[i]
		st := s.srv.Stats()
		accept := st.AcceptErrors - s.last.AcceptErrors
		waits := st.ResourceWaits - s.last.ResourceWaits
		if accept > 0 || waits > 0 {
			log.Warn("out of file descriptors or memory: accepting paused, connects delayed",
				"router", s.router, "listen", s.srv.Addr(), "accept_errors", accept,
				"resource_waits", waits, "active", st.Active, "interval", resourceWatchInterval)
		}
		s.last = st
	}
}
