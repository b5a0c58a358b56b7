package router

import (
	"fmt"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/binder"
	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/netpoll"
	"github.com/switchyard-proxy/switchyard/server"
)

// Router is one [[routers]] section: servers that accept connections, a
// binder that turns their destination names into balancers, and the client
// settings used to reach endpoints.
type Router struct {
	label   string
	proxy   *Proxy
	binder  *binder.Binder
	client  ClientConfig
	servers []*server.Server

	interpStats *interpreter.Stats
	kind        string // the interpreter's
}

func newRouter(p *Proxy, cfg *RouterConfig) (*Router, error) {
	stats := new(interpreter.Stats)
	interp, err := cfg.Interpreter.Settings.New(interpreter.Env{
		Router: cfg.Label,
		Log:    p.log.With("router", cfg.Label, "interpreter", cfg.Interpreter.Kind),
		Stats:  stats,
	})
	if err != nil {
		return nil, fmt.Errorf("router %s: interpreter %s: %w", cfg.Label, cfg.Interpreter.Kind, err)
	}
	r := &Router{
		label:       cfg.Label,
		proxy:       p,
		client:      cfg.Client,
		interpStats: stats,
		kind:        cfg.Interpreter.Kind,
		binder: binder.New(interp, binder.Options{
			Balancer: balancer.Options{
				Accrual:    cfg.Client.FailureAccrual,
				MaxWaiters: cfg.Client.MaxWaiters,
				Clock:      netpoll.Monotonic,
			},
			BindIdle: cfg.BindIdle,
			MaxNames: cfg.MaxNames,
			Clock:    netpoll.Monotonic,
		}),
	}
	for _, sc := range cfg.Servers {
		r.servers = append(r.servers, server.New(server.Config{
			Router:         cfg.Label,
			Listen:         sc.Listen,
			Dst:            sc.Dst,
			ConnectTimeout: sc.ConnectTimeout,
			Lifetime:       sc.Lifetime,
			IdleTimeout:    sc.IdleTimeout,
			MaxConnections: sc.MaxConnections,
			Inherited:      sc.Inherited,
		}, r))
	}
	return r, nil
}

func (r *Router) listen(loops []*netpoll.Loop) error {
	for _, s := range r.servers {
		if err := s.Listen(loops); err != nil {
			return fmt.Errorf("router %s: %w", r.label, err)
		}
	}
	return nil
}

// Label is the router's label.
func (r *Router) Label() string { return r.label }

// Servers returns the router's servers in configuration order.
func (r *Router) Servers() []*server.Server { return r.servers }

// Binder returns the router's binder.
func (r *Router) Binder() *binder.Binder { return r.binder }

// InterpreterStats returns the counters of the router's interpreter.
func (r *Router) InterpreterStats() *interpreter.Stats { return r.interpStats }

// Names returns the state of every name the router has cached: its
// answer, endpoints with their state and load, waiters. Safe from any
// goroutine; for the admin endpoint.
func (r *Router) Names() []binder.NameSnapshot { return r.binder.Snapshot() }

// Dispatch implements server.Dispatcher: it starts a stream for an accepted
// connection on the loop that accepted it.
func (r *Router) Dispatch(l *netpoll.Loop, fd int, env *server.Envelope) {
	w := r.proxy.worker(l)
	s := w.newStream()
	s.start(w, r, fd, env)
}
