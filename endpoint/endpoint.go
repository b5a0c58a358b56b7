// Package endpoint holds the per-address state that every event loop shares:
// how many connections are open or pending to an address, and whether failed
// connects have set it aside. The balancer creates endpoints when a name
// resolves; event loops call Acquire, Release, Succeeded and Failed as their
// connect attempts progress.
//
// All state is mutated with atomics, so an Endpoint is safe for concurrent
// use without locks, and every method except String is allocation-free.
// Time is always passed in by the caller as monotonic nanoseconds in an
// arbitrary epoch (the event loop's cached clock); nothing here reads the
// clock.
package endpoint

import (
	"math"
	"net/netip"
	"strconv"
	"sync/atomic"
)

// Endpoint is one address of a destination with its weight and the load and
// health state the event loops share. Create endpoints with New; Addr, Weight
// and the prebuilt socket address never change after that.
type Endpoint struct {
	// Addr is the address connections are made to, as resolved.
	Addr netip.AddrPort
	// Weight is the relative share of connections the endpoint should
	// take; always positive and finite.
	Weight float64

	sa    *rawSockaddr // read-only, shared with WithWeight
	state *state       // shared with every endpoint made by WithWeight
}

// state is the mutable part of an Endpoint. It sits behind a pointer so that
// an endpoint whose weight changes can be replaced without losing the count
// of connections still open against the old one.
type state struct {
	load         atomic.Int64 // open + pending connections
	failures     atomic.Int32 // consecutive connect failures
	penaltyUntil atomic.Int64 // set aside while now < penaltyUntil
}

// New returns an endpoint for addr with the given weight, neither set aside
// nor loaded. It panics if weight is not positive and finite or addr is not
// valid: both are checked by whoever builds the resolution.
func New(addr netip.AddrPort, weight float64) *Endpoint {
	if !addr.IsValid() {
		panic("endpoint: New with invalid address")
	}
	checkWeight(weight)
	st := &state{}
	st.penaltyUntil.Store(math.MinInt64)
	return &Endpoint{Addr: addr, Weight: weight, sa: newRawSockaddr(addr), state: st}
}

// WithWeight returns an endpoint for the same address with weight w that
// shares e's load and failure state: connections acquired through either one
// are counted once, and releasing through e after the swap still lowers the
// load the new endpoint reports. The balancer uses it when a resolution
// changes only an address's weight. It panics on a weight New rejects.
func (e *Endpoint) WithWeight(w float64) *Endpoint {
	checkWeight(w)
	return &Endpoint{Addr: e.Addr, Weight: w, sa: e.sa, state: e.state}
}

func checkWeight(w float64) {
	if !(w > 0) || math.IsInf(w, 1) {
		panic("endpoint: weight " + strconv.FormatFloat(w, 'g', -1, 64) + ", want positive and finite")
	}
}

// Load returns the number of open and pending connections.
func (e *Endpoint) Load() int64 { return e.state.load.Load() }

// Acquire counts a connect attempt that is starting. Every Acquire is
// matched by exactly one Release, when the attempt fails or the connection
// it produced closes.
func (e *Endpoint) Acquire() { e.state.load.Add(1) }

// Release ends what Acquire started.
func (e *Endpoint) Release() { e.state.load.Add(-1) }

// String returns the address, followed by "*weight" when the weight is not 1
// (the form ParseEndpoint in package interpreter accepts).
func (e *Endpoint) String() string {
	if e.Weight == 1 {
		return e.Addr.String()
	}
	return e.Addr.String() + "*" + strconv.FormatFloat(e.Weight, 'g', -1, 64)
}
