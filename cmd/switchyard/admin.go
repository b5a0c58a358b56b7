package main

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/switchyard-proxy/switchyard/binder"
	"github.com/switchyard-proxy/switchyard/router"
)

// adminSource is what the admin endpoint shows and acts upon.
type adminSource struct {
	proxy    *router.Proxy
	ready    atomic.Bool   // listeners bound, no drain begun
	shutdown chan struct{} // capacity 1: POST /shutdown asks serve to drain
	// reloads carries POST /reload to serve, which answers on the
	// channel sent (capacity 1, so that serve never waits on it).
	reloads chan chan reloadResult
}

func (a *adminSource) Ready() bool { return a.ready.Load() }

func (a *adminSource) Config() any { return a.proxy.Config() }

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

// errNotTaken answers a POST /reload that the process could not take:
// it is stopping, or the endpoint is closing (a reload moved it).
var errNotTaken = errors.New("not taken: the process is stopping or the admin endpoint closing; nothing changed")

func (a *adminSource) Reload(stop <-chan struct{}) (string, error) {
	reply := make(chan reloadResult, 1)
	select {
	case a.reloads <- reply:
	case <-stop:
		return "", errNotTaken
	}
	res := <-reply
	if res.err != nil {
		return "", errors.New(problemsText(res.err))
	}
	return fmt.Sprintf("reloaded: configuration %d", res.generation), nil
}
