// Package binder maps destination names to balancers. A Binder belongs to
// one router and is shared by all its servers and event loops: the first
// connection to ask for a name creates the name's balancer and starts the
// interpreter's watch of it; every later connection finds it in the cache.
//
// The cache is bounded twice over: a name with no connection open or made
// to it for BindIdle is evicted (its watch stops), and at most MaxNames are
// cached, the least recently used idle one making room for a new one.
// Names that do not exist or failed to resolve are cached like any other,
// so a flood of connections to a bad name costs one lookup.
package binder

import (
	"cmp"
	"container/heap"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/netpoll"
)

// Defaults for Options left zero.
const (
	DefaultBindIdle = 10 * time.Minute
	DefaultMaxNames = 10000
)

// ErrFull is returned by Bind when MaxNames names are cached and every one
// of them has connections open.
var ErrFull = errors.New("binder: name cache full of names in use")

// Options are a binder's settings.
type Options struct {
	// Balancer is what each name's balancer is made with.
	Balancer balancer.Options
	// BindIdle is how long a name stays cached with no connection open
	// or made to it; 0: DefaultBindIdle.
	BindIdle time.Duration
	// MaxNames bounds the names cached at once; 0: DefaultMaxNames.
	MaxNames int
	// Clock returns the time the callers of Bind and Release pass in;
	// nil: netpoll.Monotonic, the loops' clock.
	Clock func() int64
}

// Binder is a cache of balancers by destination name. Safe for concurrent
// use: a lookup of a cached name takes no lock.
type Binder struct {
	interp interpreter.Interpreter
	opt    Options

	names sync.Map      // string → *Name
	mu    sync.Mutex    // serialises creation and eviction
	count int           // names in the map; under mu
	idle  atomic.Int64  // names in the map with no connection bound
	scans atomic.Uint64 // scans of the cache by Bind, the sweeper being behind

	stop chan struct{} // closed by Close
	done chan struct{} // closed when the sweeper has exited
	full chan struct{} // capacity 1: the cache nears MaxNames, the sweeper should trim it

	// The sweeper trims the cache to lowWater, least recently used idle
	// names first, whenever a new name takes it to highWater, so that new
	// names find room without a scan of the cache on an event loop.
	lowWater, highWater int
	closed              sync.Once
}

// Name is one cached name: its balancer and the connections bound to it.
type Name struct {
	name string
	bal  *balancer.Balancer
	// refs counts the connections bound to the name (from Bind to
	// Release); -1 once evicted, after which it never changes.
	refs     atomic.Int64
	lastUsed atomic.Int64  // Clock time the last connection was released; creation time before
	stop     func()        // stops the watch; set before the name is published
	idle     *atomic.Int64 // the binder's count of idle names
}

// Balancer returns the name's balancer.
func (n *Name) Balancer() *balancer.Balancer { return n.bal }

// acquire binds one more connection, unless the name was evicted.
func (n *Name) acquire() bool {
	for {
		r := n.refs.Load()
		if r < 0 {
			return false
		}
		if n.refs.CompareAndSwap(r, r+1) {
			if r == 0 {
				n.idle.Add(-1)
			}
			return true
		}
	}
}

// Release ends the binding of one connection made by Bind, at time now.
func (n *Name) Release(now int64) {
	// The time first: a sweep between the two must not see the name idle
	// since long ago.
	if n.refs.Load() == 1 {
		n.lastUsed.Store(now)
	}
	if n.refs.Add(-1) == 0 {
		n.lastUsed.Store(now)
		n.idle.Add(1)
	}
}

// New returns a binder that resolves names with interp. Close it to stop
// every watch.
func New(interp interpreter.Interpreter, o Options) *Binder {
	if o.BindIdle <= 0 {
		o.BindIdle = DefaultBindIdle
	}
	if o.MaxNames <= 0 {
		o.MaxNames = DefaultMaxNames
	}
	if o.Clock == nil {
		o.Clock = netpoll.Monotonic
	}
	b := &Binder{interp: interp, opt: o, stop: make(chan struct{}), done: make(chan struct{}), full: make(chan struct{}, 1)}
	b.highWater = o.MaxNames - max(1, o.MaxNames/64)
	b.lowWater = o.MaxNames - max(1, o.MaxNames/32)
	go b.sweeper()
	return b
}

// Bind returns the name's cache entry with one more connection bound to it,
// creating it and starting its watch on first use. It never waits for
// resolution: a new name's balancer is Pending until its first answer. The
// caller calls Release exactly once when the connection ends. now is the
// caller's Clock time. Called from event loops.
func (b *Binder) Bind(name string, now int64) (*Name, error) {
	for {
		if v, ok := b.names.Load(name); ok && v.(*Name).acquire() {
			return v.(*Name), nil
		}
		n, err := b.create(name, now)
		if n != nil || err != nil {
			return n, err
		}
		// Someone else created it meanwhile: take theirs.
	}
}

// create adds name with one connection bound, and starts its watch. It
// returns nil and no error when a live entry for name appeared meanwhile.
// The lock covers the map and the count, never the interpreter or a scan
// of the cache.
func (b *Binder) create(name string, now int64) (*Name, error) {
	b.mu.Lock()
	if b.live(name) {
		b.mu.Unlock()
		return nil, nil
	}
	if b.count >= b.opt.MaxNames {
		if b.idle.Load() == 0 {
			b.mu.Unlock()
			return nil, ErrFull
		}
		b.mu.Unlock()
		b.scans.Add(1)
		victims := b.leastRecentlyUsed(max(1, b.opt.MaxNames/64))
		b.mu.Lock()
		stop := b.evict(victims)
		full := b.count >= b.opt.MaxNames
		exists := b.live(name)
		if full || exists {
			b.mu.Unlock()
			stopWatches(stop)
			if exists {
				return nil, nil
			}
			return nil, ErrFull
		}
		defer stopWatches(stop)
	}
	n := &Name{name: name, bal: balancer.New(name, b.opt.Balancer), idle: &b.idle}
	n.refs.Store(1)
	n.lastUsed.Store(now)
	// The watch starts under the lock so that the name is never seen
	// without its stop; Resolve does no I/O and takes no lock of ours.
	n.stop = b.interp.Resolve(name, n.bal)
	b.names.Store(name, n)
	b.count++
	if b.count >= b.highWater {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
	return n, nil
}

// live reports whether name has an entry that takes connections. b.mu is
// held, so no entry is evicted meanwhile.
func (b *Binder) live(name string) bool {
	v, ok := b.names.Load(name)
	return ok && v.(*Name).refs.Load() >= 0
}

// leastRecentlyUsed returns the k least recently used idle names (fewer if
// fewer are idle), in no particular order. It takes no lock. The sweeper
// calls it to trim the cache, and Bind only when the sweeper has fallen
// behind: a sixty-fourth of the cache at a time, so that even then a flood
// of new names pays for a scan once per batch, not once per name.
func (b *Binder) leastRecentlyUsed(k int) []*Name {
	h := &lruHeap{}
	b.names.Range(func(_, v any) bool {
		n := v.(*Name)
		if n.refs.Load() != 0 {
			return true
		}
		c := candidate{n: n, last: n.lastUsed.Load()}
		switch {
		case h.Len() < k:
			heap.Push(h, c)
		case c.last < (*h)[0].last:
			(*h)[0] = c
			heap.Fix(h, 0)
		}
		return true
	})
	out := make([]*Name, h.Len())
	for i, c := range *h {
		out[i] = c.n
	}
	return out
}

// candidate is an idle name and its last use, read once.
type candidate struct {
	n    *Name
	last int64
}

// lruHeap is a max-heap by last use: its top is the most recently used of
// the candidates kept, the first to go when an older one turns up.
type lruHeap []candidate

func (h lruHeap) Len() int           { return len(h) }
func (h lruHeap) Less(i, j int) bool { return h[i].last > h[j].last }
func (h lruHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *lruHeap) Push(x any)        { *h = append(*h, x.(candidate)) }
func (h *lruHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// evict drops those of names that have no connection bound and returns
// their watches' stop functions, to call once b.mu is released. b.mu is
// held.
func (b *Binder) evict(names []*Name) []func() {
	var stop []func()
	for _, n := range names {
		if !n.refs.CompareAndSwap(0, -1) {
			continue
		}
		b.idle.Add(-1)
		b.names.CompareAndDelete(n.name, n)
		b.count--
		stop = append(stop, n.stop)
	}
	return stop
}

func stopWatches(stop []func()) {
	for _, f := range stop {
		f()
	}
}

// sweepInterval is how often idle names are looked for: often enough that
// a name is evicted within a quarter of BindIdle after it becomes due.
func (b *Binder) sweepInterval() time.Duration {
	return min(max(b.opt.BindIdle/4, 10*time.Millisecond), 10*time.Second)
}

// sweeper evicts the names idle for BindIdle until the binder is closed.
func (b *Binder) sweeper() {
	defer close(b.done)
	t := time.NewTicker(b.sweepInterval())
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.sweep(b.opt.Clock())
		case <-b.full:
			b.trim()
		}
	}
}

// sweep evicts every name idle since before now-BindIdle.
func (b *Binder) sweep(now int64) {
	due := now - int64(b.opt.BindIdle)
	var stale []*Name
	b.names.Range(func(_, v any) bool {
		if n := v.(*Name); n.refs.Load() == 0 && n.lastUsed.Load() <= due {
			stale = append(stale, n)
		}
		return true
	})
	if len(stale) == 0 {
		return
	}
	b.mu.Lock()
	stale = slices.DeleteFunc(stale, func(n *Name) bool { return n.lastUsed.Load() > due })
	stop := b.evict(stale)
	b.mu.Unlock()
	stopWatches(stop)
}

// trim evicts the least recently used idle names until the cache is down
// to lowWater or no name is idle.
func (b *Binder) trim() {
	for {
		b.mu.Lock()
		over := b.count - b.lowWater
		b.mu.Unlock()
		if over <= 0 || b.idle.Load() == 0 {
			return
		}
		victims := b.leastRecentlyUsed(min(over, max(1, b.opt.MaxNames/64)))
		b.mu.Lock()
		stop := b.evict(victims)
		b.mu.Unlock()
		stopWatches(stop)
		if len(stop) == 0 {
			return
		}
	}
}

// Len returns the number of names cached.
func (b *Binder) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

// Balancers returns the balancers of the names cached now.
func (b *Binder) Balancers() []*balancer.Balancer {
	var out []*balancer.Balancer
	b.names.Range(func(_, v any) bool {
		out = append(out, v.(*Name).bal)
		return true
	})
	return out
}

// Snapshot returns the state of every cached name, sorted by name, for the
// admin endpoint. Safe from any goroutine.
func (b *Binder) Snapshot() []NameSnapshot {
	var out []NameSnapshot
	b.names.Range(func(_, v any) bool {
		n := v.(*Name)
		refs := n.refs.Load()
		if refs < 0 {
			return true
		}
		out = append(out, NameSnapshot{
			Snapshot:    n.bal.Snapshot(),
			Connections: refs,
			LastUsed:    n.lastUsed.Load(),
		})
		return true
	})
	slices.SortFunc(out, func(x, y NameSnapshot) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// NameSnapshot is a cached name as Snapshot sees it.
type NameSnapshot struct {
	balancer.Snapshot
	// Connections bound to the name: waiting, connecting or established.
	Connections int64 `json:"connections"`
	// LastUsed is the Clock time the last connection ended (or the name
	// was created), for idle times.
	LastUsed int64 `json:"-"`
}

// Close stops the sweeper and every watch, then closes the interpreter and
// returns its error. Connections still bound keep their balancers.
func (b *Binder) Close() error {
	var err error
	b.closed.Do(func() {
		close(b.stop)
		<-b.done
		b.names.Range(func(_, v any) bool {
			v.(*Name).stop()
			return true
		})
		err = b.interp.Close()
	})
	return err
}
