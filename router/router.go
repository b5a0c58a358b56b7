package router

import (
	"github.com/switchyard-proxy/switchyard/binder"
	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/netpoll"
	"github.com/switchyard-proxy/switchyard/server"
)

// Router is one [[routers]] section of one generation: servers that
// accept connections, a binder that turns their destination names into
// balancers, and the client settings used to reach endpoints.
type Router struct {
	label   string
	gen     *generation
	names   *names
	client  ClientConfig
	servers []*server.Server

	// From client: the PROXY header sent to endpoints (0: none), and
	// whether the balancer hashes a key, by server name or source.
	sendProxy       server.ProxyVersion
	hashed, hashSNI bool
}

// Label is the router's label.
func (r *Router) Label() string { return r.label }

// Servers returns the router's servers in configuration order.
func (r *Router) Servers() []*server.Server { return r.servers }

// Binder returns the router's binder.
func (r *Router) Binder() *binder.Binder { return r.names.binder }

// InterpreterStats returns the counters of the router's interpreter.
func (r *Router) InterpreterStats() *interpreter.Stats { return r.names.stats }

// Names returns the state of every name the router has cached: its
// answer, endpoints with their state and load, waiters. Safe from any
// goroutine; for the admin endpoint.
func (r *Router) Names() []binder.NameSnapshot { return r.names.binder.Snapshot() }

// Dispatch implements server.Dispatcher: it starts a stream for an accepted
// connection on the loop that accepted it, in the router's generation.
func (r *Router) Dispatch(l *netpoll.Loop, fd int, env *server.Envelope) {
	w := r.gen.p.worker(l)
	r.gen.streamStarted(l)
	s := w.newStream()
	s.start(w, r, fd, env)
}
