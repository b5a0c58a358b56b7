// Package balancer chooses which endpoint of a destination name a new
// connection goes to. A Balancer holds what is known of one name as an
// immutable snapshot swapped atomically (atomic.Pointer): the answer's state
// and, when the name is bound, its endpoint set. A discovery update never
// waits for traffic and never runs on the data path: the interpreter
// watching the name calls Update from its own goroutine, and event loops
// call Pick, or PickKey, without taking a lock or allocating.
//
// Until the first answer a balancer is pending: connections wait for it,
// parked on their own event loops. A loop subscribes with OnAnswer and is
// called back once the first answer is in; the balancer only counts the
// waiters (AddWaiter, DoneWaiting) to bound them.
package balancer

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/netpoll"
)

// State is what a balancer knows of its name.
type State uint8

const (
	Pending  State = iota // no answer yet: connections wait
	Bound                 // the name has an endpoint set (possibly empty)
	NotFound              // the name does not exist: connections fail fast
	Failed                // resolution failed before any set: connections fail fast
)

var stateNames = [...]string{"pending", "bound", "not_found", "failed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Options are a balancer's settings.
type Options struct {
	// Accrual is the failure-accrual policy for the name's endpoints,
	// returned by Accrual for the callers of endpoint.Failed.
	Accrual endpoint.Accrual
	// MaxWaiters bounds the connections waiting for the first answer.
	MaxWaiters int
	// Clock returns the event loops' time, in which penalties are set;
	// nil is netpoll.Monotonic, the loops' clock.
	Clock func() int64
	// Policy is how PickKey chooses: PolicyP2C (the zero value) or
	// PolicyHash. Pick is power of two choices under either.
	Policy Policy
	// HashBalanceFactor bounds the load of PolicyHash: no endpoint takes a
	// connection that would put it above this multiple of its share of
	// the load. Zero is 1.25, a negative value disables the bound, and a
	// value between 0 and 1 is taken as 1.
	HashBalanceFactor float64
}

// Balancer spreads the connections to one destination name over the
// endpoints the name resolves to. Create it with New.
type Balancer struct {
	name string
	opt  Options

	snap    atomic.Pointer[snapshot] // never nil
	waiters atomic.Int32

	mu       sync.Mutex                            // serialises Update and OnAnswer; Pick never takes it
	retired  map[netip.AddrPort]*endpoint.Endpoint // left the set with connections open or set aside
	notify   map[any]func()                        // to call on the first answer, by subscriber
	answers  uint64                                // Updates applied
	failures uint64                                // Failed answers
	lastErr  error                                 // of the last Failed answer
	scale    float64                               // of the last ring's weights; 0 before the first (see ringScale)
}

// snapshot is one state of a name. It is never modified after it is
// published, so readers need no lock.
type snapshot struct {
	state     State
	endpoints []*endpoint.Endpoint // Bound only: distinct addresses, in resolution order
	ring      *ring                // PolicyHash with two endpoints or more: endpoints on the ring
}

var pending = &snapshot{state: Pending}

var _ interpreter.Sink = (*Balancer)(nil)

// New returns a pending balancer for name.
func New(name string, o Options) *Balancer {
	if o.Clock == nil {
		o.Clock = netpoll.Monotonic
	}
	b := &Balancer{name: name, opt: o}
	b.snap.Store(pending)
	return b
}

// Name returns the destination name the balancer serves.
func (b *Balancer) Name() string { return b.name }

// State returns what the balancer knows of its name.
func (b *Balancer) State() State { return b.snap.Load().state }

// Resolved reports whether an answer has arrived.
func (b *Balancer) Resolved() bool { return b.State() != Pending }

// Endpoints returns the current endpoint set, nil unless Bound. The slice is
// shared and must not be modified.
func (b *Balancer) Endpoints() []*endpoint.Endpoint { return b.snap.Load().endpoints }

// AddWaiter counts a connection that starts waiting for the first answer.
// It returns false, counting nothing, when MaxWaiters connections already
// wait. Every true is matched by one DoneWaiting.
func (b *Balancer) AddWaiter() bool {
	limit := int32(min(b.opt.MaxWaiters, math.MaxInt32))
	for {
		n := b.waiters.Load()
		if n >= limit {
			return false
		}
		if b.waiters.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// DoneWaiting ends what AddWaiter started.
func (b *Balancer) DoneWaiting() { b.waiters.Add(-1) }

// Waiters returns the number of connections waiting for the first answer.
func (b *Balancer) Waiters() int { return int(b.waiters.Load()) }

// OnAnswer arranges for f to be called once, from the goroutine that
// delivers it, when the first answer arrives; f replaces an earlier
// function of the same subscriber, so a subscriber that comes back is
// called once. It returns false, and never calls f, if the answer is
// already in. f must not block: it posts to a loop.
func (b *Balancer) OnAnswer(subscriber any, f func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.snap.Load().state != Pending {
		return false
	}
	if b.notify == nil {
		b.notify = make(map[any]func())
	}
	b.notify[subscriber] = f
	return true
}

// Update applies an answer. It may be called from any goroutine,
// concurrently with Pick; Updates are applied one at a time.
//
// A Bound answer replaces the endpoint set. An address already in the set,
// or retired from it, keeps its *endpoint.Endpoint, so its load and failure
// state carry over; if its weight changed it gets a new one made by
// WithWeight, which shares that state. Addresses that appear more than once
// are merged with their weights summed; an IPv4-mapped IPv6 address is the
// same address as the IPv4 one. Entries with an invalid address or a
// weight that is not positive and finite are dropped. An endpoint that
// leaves the set is retired: it takes no new connections, while those open
// run to their end.
//
// A NotFound answer empties the set. A Failed answer keeps the set of an
// earlier answer; with none, the balancer is Failed.
//
// Under PolicyHash, Update also builds the hash ring of the new set, so
// that PickKey only reads it.
func (b *Balancer) Update(r interpreter.Resolution) {
	b.mu.Lock()
	old := b.snap.Load()
	now := b.opt.Clock()
	b.answers++
	var next *snapshot
	switch r.State {
	case interpreter.Bound:
		next = b.bind(old, r.Endpoints, now)
	case interpreter.NotFound:
		b.retire(old.endpoints, nil, now)
		next = &snapshot{state: NotFound}
	default:
		b.failures++
		b.lastErr = r.Err
		if old.state != Pending && old.state != Failed {
			b.mu.Unlock()
			return // the last good answer stands
		}
		next = &snapshot{state: Failed}
	}
	b.snap.Store(next)
	notify := b.notify
	b.notify = nil
	b.mu.Unlock()
	for _, f := range notify {
		f()
	}
}

// bind builds the snapshot of a Bound answer. b.mu is held.
func (b *Balancer) bind(old *snapshot, eps []interpreter.Endpoint, now int64) *snapshot {
	known := make(map[netip.AddrPort]*endpoint.Endpoint, len(old.endpoints)+len(b.retired))
	for k, e := range b.retired {
		known[k] = e
	}
	for _, e := range old.endpoints {
		known[key(e.Addr)] = e
	}

	type entry struct {
		addr   netip.AddrPort
		weight float64
	}
	var order []entry
	index := make(map[netip.AddrPort]int, len(eps))
	for _, re := range eps {
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

	next := &snapshot{state: Bound, endpoints: make([]*endpoint.Endpoint, 0, len(order))}
	for _, en := range order {
		k := key(en.addr)
		e, ok := known[k]
		switch {
		case !ok:
			e = endpoint.New(en.addr, en.weight)
		case e.Weight != en.weight:
			e = e.WithWeight(en.weight)
		}
		delete(b.retired, k)
		next.endpoints = append(next.endpoints, e)
	}
	b.retire(old.endpoints, index, now)
	next.ring = b.ring(old, next.endpoints)
	return next
}

// retire moves the endpoints of old that are not in keep to the retired
// set, and forgets retired endpoints with nothing left to remember: no
// connection open and no penalty running. b.mu is held.
func (b *Balancer) retire(old []*endpoint.Endpoint, keep map[netip.AddrPort]int, now int64) {
	for _, e := range old {
		k := key(e.Addr)
		if _, ok := keep[k]; ok {
			continue
		}
		if b.retired == nil {
			b.retired = make(map[netip.AddrPort]*endpoint.Endpoint)
		}
		b.retired[k] = e
	}
	for k, e := range b.retired {
		if e.Load() == 0 && e.Available(now) {
			delete(b.retired, k)
		}
	}
}

// key is the identity of an address in a set: IPv4-mapped IPv6 addresses
// are the IPv4 ones, as they are when dialled.
func key(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
