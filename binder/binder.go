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
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

// ErrFull is returned by Bind when MaxNames names are cached and every one
// of them has connections open.
var ErrFull = errors.New("binder: name cache full of names in use")

// Options are a binder's settings.
type Options struct {
	// Balancer is what each name's balancer is made with.
	Balancer balancer.Options
	// BindIdle is how long a name stays cached with no connection open
	// or made to it.
	BindIdle time.Duration
	// MaxNames bounds the names cached at once.
	MaxNames int
	// Clock returns the monotonic time the callers of Bind and Release
	// pass in (netpoll.Monotonic).
	Clock func() int64
}

// Binder is a cache of balancers by destination name. Safe for concurrent
// use: a lookup of a cached name takes no lock.
type Binder struct {
	interp interpreter.Interpreter
	opt    Options

	names sync.Map   // string → *Name
	mu    sync.Mutex // serialises creation and eviction
	count int        // names in the map; under mu

	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when the sweeper has exited
	closed sync.Once
}

// Name is one cached name: its balancer and the connections bound to it.
type Name struct {
	name string
	bal  *balancer.Balancer
	// refs counts the connections bound to the name (from Bind to
	// Release); -1 once evicted, after which it never changes.
	refs     atomic.Int64
	lastUsed atomic.Int64 // Clock time the last connection was released; creation time before
	cancel   context.CancelFunc
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
			return true
		}
	}
}

// Release ends the binding of one connection made by Bind, at time now.
func (n *Name) Release(now int64) {
	if n.refs.Add(-1) == 0 {
		n.lastUsed.Store(now)
	}
}

// New returns a binder that resolves names with interp. Close it to stop
// every watch.
func New(interp interpreter.Interpreter, o Options) *Binder {
	b := &Binder{interp: interp, opt: o, stop: make(chan struct{}), done: make(chan struct{})}
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
// The lock covers the map and the count, never the interpreter.
func (b *Binder) create(name string, now int64) (*Name, error) {
	b.mu.Lock()
	if v, ok := b.names.Load(name); ok && v.(*Name).refs.Load() >= 0 {
		b.mu.Unlock()
		return nil, nil
	}
	if b.count >= b.opt.MaxNames && b.evictLRU() == 0 {
		b.mu.Unlock()
		return nil, ErrFull
	}
	// Each watch has a context of its own, not a child of one shared
	// context, which would keep a map entry per name it ever had.
	ctx, cancel := context.WithCancel(context.Background())
	n := &Name{name: name, bal: balancer.New(name, b.opt.Balancer), cancel: cancel}
	n.refs.Store(1)
	n.lastUsed.Store(now)
	b.names.Store(name, n)
	b.count++
	b.mu.Unlock()
	b.interp.Resolve(ctx, name, n.bal)
	return n, nil
}

// evictLRU makes room for new names when the cache is full: it evicts the
// least recently used idle names, a sixty-fourth of the cache at a time so
// that a flood of new names pays for the scan once per batch, not once per
// name. It returns how many it evicted. b.mu is held.
func (b *Binder) evictLRU() int {
	var idle []*Name
	b.names.Range(func(_, v any) bool {
		if n := v.(*Name); n.refs.Load() == 0 {
			idle = append(idle, n)
		}
		return true
	})
	slices.SortFunc(idle, func(x, y *Name) int { return cmp.Compare(x.lastUsed.Load(), y.lastUsed.Load()) })
	evicted := 0
	for _, n := range idle {
		if evicted >= max(1, b.opt.MaxNames/64) {
			break
		}
		if b.evict(n) {
			evicted++
		}
	}
	return evicted
}

// evict drops n if no connection is bound to it, and stops its watch.
// b.mu is held.
func (b *Binder) evict(n *Name) bool {
	if !n.refs.CompareAndSwap(0, -1) {
		return false
	}
	b.names.CompareAndDelete(n.name, n)
	b.count--
	n.cancel()
	return true
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
	for _, n := range stale {
		if n.lastUsed.Load() <= due {
			b.evict(n)
		}
	}
	b.mu.Unlock()
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
			v.(*Name).cancel()
			return true
		})
		err = b.interp.Close()
	})
	return err
}
