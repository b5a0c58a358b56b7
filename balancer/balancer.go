// Package balancer chooses which endpoint of a destination name a new
// connection goes to. A Balancer holds the current endpoint set of one name
// as an immutable snapshot swapped atomically (atomic.Pointer), so a
// discovery update never waits for traffic and never runs on the data path:
// the interpreter watching the name calls Update from its own goroutine, and
// event loops call Pick without taking a lock or allocating.
package balancer

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Balancer spreads the connections to one destination name over the
// endpoints the name resolves to. Create it with New.
type Balancer struct {
	name    string
	accrual endpoint.Accrual

	mu   sync.Mutex               // serialises Update; Pick never takes it
	snap atomic.Pointer[snapshot] // nil until the first Update
}

// snapshot is one endpoint set. It is never modified after it is published,
// so readers need no lock.
type snapshot struct {
	endpoints []*endpoint.Endpoint // distinct addresses, in resolution order
}

var _ interpreter.Sink = (*Balancer)(nil)

// New returns a balancer for name with no endpoints yet. accrual is the
// failure-accrual policy for the name's endpoints, returned by Accrual for
// the callers of endpoint.Failed.
func New(name string, accrual endpoint.Accrual) *Balancer {
	return &Balancer{name: name, accrual: accrual}
}

// Name returns the destination name the balancer serves.
func (b *Balancer) Name() string { return b.name }

// Accrual returns the failure-accrual policy given to New.
func (b *Balancer) Accrual() endpoint.Accrual { return b.accrual }

// Resolved reports whether at least one Update has been applied.
func (b *Balancer) Resolved() bool { return b.snap.Load() != nil }

// Endpoints returns the current endpoint set, nil before the first Update.
// The slice is shared and must not be modified.
func (b *Balancer) Endpoints() []*endpoint.Endpoint {
	if s := b.snap.Load(); s != nil {
		return s.endpoints
	}
	return nil
}

// Update replaces the endpoint set with r. It may be called from any
// goroutine, concurrently with Pick; Updates are applied one at a time.
//
// An address already in the set keeps its *endpoint.Endpoint, so its load
// and failure state carry over; if its weight changed it gets a new one
// made by WithWeight, which shares that state. Addresses that appear more
// than once are merged with their weights summed; an IPv4-mapped IPv6
// address is the same address as the IPv4 one. Entries with an invalid
// address or a weight that is not positive and finite are dropped.
func (b *Balancer) Update(r interpreter.Resolution) {
	b.mu.Lock()
	defer b.mu.Unlock()

	old := make(map[netip.AddrPort]*endpoint.Endpoint)
	if s := b.snap.Load(); s != nil {
		for _, e := range s.endpoints {
			old[key(e.Addr)] = e
		}
	}

	type entry struct {
		addr   netip.AddrPort
		weight float64
	}
	var order []entry
	index := make(map[netip.AddrPort]int, len(r.Endpoints))
	for _, re := range r.Endpoints {
		if !re.Addr.IsValid() || !(re.Weight > 0) || math.IsInf(re.Weight, 1) {
			continue
		}
		k := key(re.Addr)
		if i, ok := index[k]; ok {
			order[i].weight = min(order[i].weight+re.Weight, math.MaxFloat64)
			continue
		}
		index[k] = len(order)
		order = append(order, entry{re.Addr, re.Weight})
	}

	next := &snapshot{endpoints: make([]*endpoint.Endpoint, 0, len(order))}
	for _, en := range order {
		e, ok := old[key(en.addr)]
		switch {
		case !ok:
			e = endpoint.New(en.addr, en.weight)
		case e.Weight != en.weight:
			e = e.WithWeight(en.weight)
		}
		next.endpoints = append(next.endpoints, e)
	}
	b.snap.Store(next)
}

// key is the identity of an address in a set: IPv4-mapped IPv6 addresses
// are the IPv4 ones, as they are when dialled.
func key(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
