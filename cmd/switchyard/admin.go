package main

import (
	"sync/atomic"

	"github.com/switchyard-proxy/switchyard/binder"
	"github.com/switchyard-proxy/switchyard/router"
)

// adminSource is what the admin endpoint shows and acts upon.
type adminSource struct {
	proxy    *router.Proxy
	cfg      *router.Config
	ready    atomic.Bool   // listeners bound, no drain begun
	shutdown chan struct{} // capacity 1: POST /shutdown asks serve to drain
}

func (a *adminSource) Ready() bool { return a.ready.Load() }

func (a *adminSource) Config() any { return a.cfg }

// routerState is one router in GET /routers.
type routerState struct {
	Router string                `json:"router"`
	Names  []binder.NameSnapshot `json:"names"`
}

func (a *adminSource) Routers() any {
	var out []routerState
	for _, r := range a.proxy.Routers() {
		out = append(out, routerState{Router: r.Label(), Names: r.Names()})
	}
	return out
}

func (a *adminSource) Shutdown() {
	select {
	case a.shutdown <- struct{}{}:
	default: // a drain is already asked for
	}
}
