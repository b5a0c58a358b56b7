// Package binder maps destination names to balancers. A Binder belongs to
// one router and is shared by all its servers and event loops: the first
// connection to ask for a name creates the name's balancer and starts the
// interpreter's watch of it; every later connection finds it in the cache.
package binder

import (
	"context"
	"fmt"
	"sync"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Binder is a cache of balancers by destination name. Safe for concurrent
// use: lookups of a cached name take no lock.
type Binder struct {
	ctx     context.Context
	interp  interpreter.Interpreter
	accrual endpoint.Accrual

	cache sync.Map   // name → *balancer.Balancer
	mu    sync.Mutex // serialises creation, so a name is watched once
}

// New returns a binder that resolves names with interp until ctx is done.
// Balancers it creates set endpoints aside according to accrual.
func New(ctx context.Context, interp interpreter.Interpreter, accrual endpoint.Accrual) *Binder {
	return &Binder{ctx: ctx, interp: interp, accrual: accrual}
}

// Bind returns the balancer for name, creating it and starting its watch on
// first use. It does not block on resolution: a balancer whose name has not
// resolved yet has no endpoints. Called from event loops.
func (b *Binder) Bind(name string) (*balancer.Balancer, error) {
	if v, ok := b.cache.Load(name); ok {
		return v.(*balancer.Balancer), nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.cache.Load(name); ok {
		return v.(*balancer.Balancer), nil
	}
	bal := balancer.New(name, b.accrual)
	if err := b.interp.Resolve(b.ctx, name, bal); err != nil {
		return nil, fmt.Errorf("binder: %s: %w", name, err)
	}
	b.cache.Store(name, bal)
	return bal, nil
}

// Balancers returns the balancers created so far.
func (b *Binder) Balancers() []*balancer.Balancer {
	var out []*balancer.Balancer
	b.cache.Range(func(_, v any) bool {
		out = append(out, v.(*balancer.Balancer))
		return true
	})
	return out
}
