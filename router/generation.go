package router

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync/atomic"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/binder"
	"github.com/switchyard-proxy/switchyard/duplex"
	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/netpoll"
	"github.com/switchyard-proxy/switchyard/server"
)

// A Proxy is a long-lived runtime (event loops, pipe pools, listening
// sockets) running one generation at a time: what one configuration makes
// of it. Reload builds the next generation beside the running one and
// swaps it in. A stream belongs to the generation whose router accepted
// it, for its whole life; a generation swapped out is released, with
// whatever only it uses (binders, the access log), when its last stream
// ends.

// generation is the routers, routes and access log of one configuration.
// Immutable once built, but for the counts of its open streams.
type generation struct {
	p       *Proxy
	id      uint64
	cfg     *Config
	routers []*Router
	access  *accessLog // nil unless [log] access
	tallies []*tally   // one per server, its route's
	// open counts the streams started in the generation and not yet
	// finished, per loop: a loop adds to its own only.
	open []loopCount
	// retired: every loop has run a task posted after the generation
	// was swapped out, so none starts a stream in it any more.
	retired  atomic.Bool
	released atomic.Bool
}

type loopCount struct {
	n atomic.Int64
	_ [56]byte // one cache line per loop
}

// names is a router's binder and the interpreter behind it. Generations
// whose router has the same label and settings share one: names in use
// keep their balancers, endpoints and load across a reload.
type names struct {
	binder *binder.Binder
	interp interpreter.Interpreter
	stats  *interpreter.Stats
	cfg    RouterConfig // what it was built from, but for Servers
	// settings are the interpreter's now: cfg's, or what a reload gave
	// it in place since. Under Proxy.mu.
	settings interpreter.Settings
	refs     int // generations using it; under Proxy.mu
}

// tally is a route's counters and the labels they are reported under.
// Generations whose server has the same address, router and destination
// share one, so that a reload that changes neither keeps its counts.
type tally struct {
	t    *server.Tally
	key  tallyKey // its labels
	refs int      // generations using it; under Proxy.mu
}

type tallyKey struct {
	router, listen, dst string // listen: the bound address
}

// serverKey names a listening address across reloads: its configured
// address, and for port 0 (an ephemeral port per server) which of the
// servers on that address it is, in configuration order.
type serverKey struct {
	addr netip.AddrPort
	nth  int
}

func serverKeys(cfg *Config) [][]serverKey {
	seen := map[netip.AddrPort]int{}
	out := make([][]serverKey, len(cfg.Routers))
	for i, rc := range cfg.Routers {
		for _, sc := range rc.Servers {
			k := serverKey{addr: sc.Listen}
			if sc.Listen.Port() == 0 {
				k.nth = seen[sc.Listen]
				seen[sc.Listen]++
			}
			out[i] = append(out[i], k)
		}
	}
	return out
}

// plan is a generation built and not yet swapped in: what committing it
// does to the runtime, and what abandoning it undoes.
type plan struct {
	g       *generation
	servers map[serverKey]*server.Server // the new generation's
	fresh   []*server.Server             // bound for it, not yet accepting
	routes  []staged                     // routes for servers kept
	created []*names                     // binders made for it
	reconf  []reconfigure                // interpreters to give new settings
}

type staged struct {
	s  *server.Server
	rt *server.Route
}

type reconfigure struct {
	nm       *names
	r        interpreter.Reconfigurer
	settings interpreter.Settings
}

// build makes a generation of cfg: it reuses the running generation's
// binders and listening sockets where cfg allows, and makes and binds the
// rest. Nothing accepts under the new generation until commit. Under p.mu.
func (p *Proxy) build(cfg *Config) (*plan, error) {
	g := &generation{p: p, cfg: cfg, open: make([]loopCount, len(p.workers))}
	pl := &plan{g: g, servers: map[serverKey]*server.Server{}}
	cur := p.gen.Load()
	if cfg.Log.Access {
		a, err := newAccessLog(cfg.Log.AccessPath, p.opt.AccessHandler)
		if err != nil {
			return nil, err
		}
		g.access = a
	}
	loops := p.loops()
	keys := serverKeys(cfg)
	p.prepareOffload(cfg)
	for i := range cfg.Routers {
		rc := &cfg.Routers[i]
		nm, err := p.names(pl, cur, rc)
		if err != nil {
			p.abandon(pl)
			return nil, fmt.Errorf("router %s: %w", rc.Label, err)
		}
		r := newRouter(rc, g, nm)
		g.routers = append(g.routers, r)
		for j, sc := range rc.Servers {
			key := keys[i][j]
			rt := &server.Route{
				Router:         rc.Label,
				Dst:            sc.Dst,
				ConnectTimeout: sc.ConnectTimeout,
				Lifetime:       sc.Lifetime,
				IdleTimeout:    sc.IdleTimeout,
				MaxConnections: sc.MaxConnections,
				Dispatcher:     r,
				Handshake:      handshakeOf(&sc),
				Offload:        sc.Offload == OffloadSockmap,
				OffloadAfter:   uint16(sc.OffloadAfter),
			}
			s := p.servers[key]
			if s == nil {
				s = server.New(server.Config{Listen: sc.Listen, Inherited: sc.Inherited}, rt)
				if err := s.Bind(loops); err != nil {
					p.abandon(pl)
					return nil, fmt.Errorf("router %s: %w", rc.Label, err)
				}
				pl.fresh = append(pl.fresh, s)
			} else {
				pl.routes = append(pl.routes, staged{s, rt})
			}
			// The bound address names the tally: a server on port 0
			// that a reload gives a new port counts anew.
			tk := tallyKey{router: rc.Label, listen: s.Label(), dst: sc.Dst}
			tl := p.tallies[tk]
			if tl == nil {
				tl = &tally{t: server.NewTally(len(loops)), key: tk}
			}
			rt.Tally = tl.t // before Start or SetRoute publishes rt
			pl.servers[key] = s
			r.servers = append(r.servers, s)
			g.tallies = append(g.tallies, tl)
		}
	}
	return pl, nil
}

// names returns the binder of rc: the running generation's router of the
// same label if its binder fits rc, else a new one.
func (p *Proxy) names(pl *plan, cur *generation, rc *RouterConfig) (*names, error) {
	if cur != nil {
		for _, r := range cur.routers {
			if r.label != rc.Label {
				continue
			}
			nm := r.names
			switch {
			case !sameBinder(&nm.cfg, rc):
			case reflect.DeepEqual(nm.settings, rc.Interpreter.Settings):
				return nm, nil
			default:
				if re, ok := nm.interp.(interpreter.Reconfigurer); ok && re.CanTake(rc.Interpreter.Settings) {
					pl.reconf = append(pl.reconf, reconfigure{nm, re, rc.Interpreter.Settings})
					return nm, nil
				}
			}
		}
	}
	stats := new(interpreter.Stats)
	interp, err := rc.Interpreter.Settings.New(interpreter.Env{
		Router: rc.Label,
		Log:    p.log.With("router", rc.Label, "interpreter", rc.Interpreter.Kind),
		Stats:  stats,
	})
	if err != nil {
		return nil, fmt.Errorf("interpreter %s: %w", rc.Interpreter.Kind, err)
	}
	nm := &names{
		interp:   interp,
		stats:    stats,
		cfg:      *rc,
		settings: rc.Interpreter.Settings,
		binder: binder.New(interp, binder.Options{
			Balancer: balancer.Options{
				Accrual:           rc.Client.FailureAccrual,
				MaxWaiters:        rc.Client.MaxWaiters,
				Clock:             netpoll.Monotonic,
				Policy:            policyOf(rc.Client.Balancer),
				HashBalanceFactor: rc.Client.HashBalanceFactor,
			},
			BindIdle: rc.BindIdle,
			MaxNames: rc.MaxNames,
			Clock:    netpoll.Monotonic,
		}),
	}
	nm.cfg.Servers = nil
	pl.created = append(pl.created, nm)
	return nm, nil
}

// sameBinder reports whether a binder built for a can serve b: the same
// router, interpreter kind, and settings of its cache and balancers.
func sameBinder(a, b *RouterConfig) bool {
	return a.Label == b.Label &&
		a.Interpreter.Kind == b.Interpreter.Kind &&
		a.BindIdle == b.BindIdle &&
		a.MaxNames == b.MaxNames &&
		a.Client.MaxWaiters == b.Client.MaxWaiters &&
		a.Client.FailureAccrual == b.Client.FailureAccrual &&
		a.Client.Balancer == b.Client.Balancer &&
		a.Client.HashBalanceFactor == b.Client.HashBalanceFactor
}

// newRouter is the router of rc in generation g, resolving through nm.
func newRouter(rc *RouterConfig, g *generation, nm *names) *Router {
	r := &Router{label: rc.Label, gen: g, names: nm, client: rc.Client}
	switch rc.Client.SendProxy {
	case "v1":
		r.sendProxy = server.ProxyV1
	case "v2":
		r.sendProxy = server.ProxyV2
	}
	r.hashed = rc.Client.Balancer == "hash"
	r.hashSNI = r.hashed && rc.Client.HashKey == "sni"
	return r
}

// policyOf is the balancer policy a validated configuration names.
func policyOf(name string) balancer.Policy {
	if name == "hash" {
		return balancer.PolicyHash
	}
	return balancer.PolicyP2C
}

// handshakeOf is what sc's connections send before routing; nil: nothing.
func handshakeOf(sc *ServerConfig) *server.Handshake {
	if sc.ProxyProtocol == "" && !sc.SNI() {
		return nil
	}
	hs := &server.Handshake{Timeout: sc.HandshakeTimeout, From: sc.ProxyProtocolFrom, SNI: sc.SNI(), Default: sc.SNIDefault}
	switch sc.ProxyProtocol {
	case "v1":
		hs.Proxy = server.ProxyAllowV1
	case "v2":
		hs.Proxy = server.ProxyAllowV2
	case "any":
		hs.Proxy = server.ProxyAllowAny
	}
	return hs
}

// abandon undoes a build that failed: the sockets bound for it and the
// binders made for it are closed. Under p.mu.
func (p *Proxy) abandon(pl *plan) {
	for _, s := range pl.fresh {
		s.Unbind()
	}
	for _, nm := range pl.created {
		if err := nm.binder.Close(); err != nil {
			p.log.Warn("closing an interpreter of a configuration not used", "router", nm.cfg.Label, "err", err)
		}
	}
	if pl.g.access != nil {
		_ = pl.g.access.close()
	}
}

// commit swaps pl's generation in: servers kept take its routes, new ones
// start accepting, those it does not have stop, and the generation it
// replaces is retired. It returns the servers stopped. Under p.mu.
func (p *Proxy) commit(pl *plan) (removed []*server.Server) {
	g := pl.g
	p.nextGen++
	g.id = p.nextGen // numbered here, so that a build that failed takes no number
	for _, rc := range pl.reconf {
		rc.r.Reconfigure(rc.settings)
		rc.nm.settings = rc.settings
	}
	for _, nm := range g.names() {
		nm.refs++
	}
	for _, tl := range g.tallies {
		p.tallies[tl.key] = tl
		tl.refs++
	}
	old := p.gen.Swap(g)
	p.live = append(p.live, g)
	for _, st := range pl.routes {
		st.s.SetRoute(st.rt)
	}
	for _, s := range pl.fresh {
		s.Start()
	}
	for k, s := range p.servers {
		if pl.servers[k] != s {
			// Accepting nothing more from here on, before the
			// barrier: once it has run, no loop starts a stream in
			// the old generation through s either. Its sockets are
			// closed by Reload, outside the lock.
			s.Close()
			removed = append(removed, s)
		}
	}
	p.servers = pl.servers
	p.gone = append(p.gone, removed...)
	if old != nil {
		p.retire(old)
	}
	return removed
}

// names returns the binders of g's routers, each once.
func (g *generation) names() []*names {
	var out []*names
	for _, r := range g.routers {
		if !slices.Contains(out, r.names) {
			out = append(out, r.names)
		}
	}
	return out
}

// retire releases g once no loop can start a stream in it any more and
// its last stream has ended.
func (p *Proxy) retire(g *generation) {
	p.afterLoops(func() {
		g.retired.Store(true)
		g.maybeRelease()
	})
}

// streamStarted counts a stream of g on loop l. Loop only.
func (g *generation) streamStarted(l *netpoll.Loop) { g.open[l.ID()].n.Add(1) }

// streamEnded counts the end of a stream of g on loop l: the last one of
// a retired generation releases it. Loop only.
func (g *generation) streamEnded(l *netpoll.Loop) {
	g.open[l.ID()].n.Add(-1)
	if g.retired.Load() {
		g.maybeRelease()
	}
}

// maybeRelease releases g, once, if no stream of it is open. g is retired.
func (g *generation) maybeRelease() {
	var open int64
	for i := range g.open {
		open += g.open[i].n.Load()
	}
	if open == 0 && g.released.CompareAndSwap(false, true) {
		g.p.releasing.Add(1)
		go g.p.release(g)
	}
}

// release lets go of what only g used: binders no other generation has,
// the tallies of its routes, its access log. Off the loops.
func (p *Proxy) release(g *generation) {
	defer p.releasing.Done()
	p.mu.Lock()
	if p.stopping.Load() {
		p.mu.Unlock()
		return // Stop closes what is left
	}
	for i, x := range p.live {
		if x == g {
			p.live = append(p.live[:i], p.live[i+1:]...)
			break
		}
	}
	var closing []*names
	for _, nm := range g.names() {
		if nm.refs--; nm.refs == 0 {
			closing = append(closing, nm)
		}
	}
	for _, tl := range g.tallies {
		if tl.refs--; tl.refs == 0 && p.tallies[tl.key] == tl {
			delete(p.tallies, tl.key)
		}
	}
	p.gone = pruneGone(p.gone)
	p.mu.Unlock()
	for _, nm := range closing {
		if err := nm.binder.Close(); err != nil {
			p.log.Warn("closing the interpreter of a configuration no longer used", "router", nm.cfg.Label, "err", err)
		}
	}
	if g.access != nil {
		if err := g.access.close(); err != nil {
			p.log.Warn("closing the access log of a configuration no longer used", "err", err)
		}
	}
	p.log.Debug("configuration generation released", "generation", g.id)
}

// pruneGone drops the servers a reload removed whose last connection has
// ended.
func pruneGone(gone []*server.Server) []*server.Server {
	out := gone[:0]
	for _, s := range gone {
		if s.Open() > 0 {
			out = append(out, s)
		}
	}
	clear(gone[len(out):])
	return out
}

// liveGenerations counts the generations not yet released.
func (p *Proxy) liveGenerations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// prepareOffload makes the sockmap offload's maps and program here, on the
// control plane, when a server of cfg wants them: loading a BPF program
// (the verifier) must not stall an event loop at its first offloaded
// stream. When it cannot be done, the operator is told now; the streams
// are spliced and counted as they come.
func (p *Proxy) prepareOffload(cfg *Config) {
	for i := range cfg.Routers {
		for _, sc := range cfg.Routers[i].Servers {
			if sc.Offload != OffloadSockmap {
				continue
			}
			if err := duplex.OffloadSupported(); err != nil {
				p.log.Warn("offload: sockmap unavailable, streams will be spliced", "server", sc.Listen.String(), "err", err)
			}
			return
		}
	}
}
