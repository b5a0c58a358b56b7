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
// descriptors or memory since the last look: the loops only count. It
// follows reloads: the servers it looks at are the running ones.
type resourceWatch struct {
	p    *router.Proxy
	last map[*server.Server]server.Stats
}

func newResourceWatch(p *router.Proxy) *resourceWatch {
	w := &resourceWatch{p: p, last: map[*server.Server]server.Stats{}}
	w.look(func(string, *server.Server, server.Stats, server.Stats) {})
	return w
}

func (w *resourceWatch) report(log *slog.Logger) {
	w.look(func(router string, srv *server.Server, st, last server.Stats) {
		accept := st.AcceptErrors - last.AcceptErrors
		waits := st.ResourceWaits - last.ResourceWaits
		if accept > 0 || waits > 0 {
			log.Warn("out of file descriptors or memory: accepting paused, connects delayed",
				"router", router, "listen", srv.Addr(), "accept_errors", accept,
				"resource_waits", waits, "active", st.Active, "interval", resourceWatchInterval)
		}
	})
}

// look calls f for each running server with its counts now and at the
// last look (zero for a server new since, or whose counts a reload
// started again), and forgets the servers gone.
func (w *resourceWatch) look(f func(router string, srv *server.Server, st, last server.Stats)) {
	seen := make(map[*server.Server]server.Stats, len(w.last))
	for _, r := range w.p.Routers() {
		for _, s := range r.Servers() {
			st := s.Stats()
			last := w.last[s]
			if st.AcceptErrors < last.AcceptErrors || st.ResourceWaits < last.ResourceWaits {
				last = server.Stats{}
			}
			f(r.Label(), s, st, last)
			seen[s] = st
		}
	}
	w.last = seen
}
