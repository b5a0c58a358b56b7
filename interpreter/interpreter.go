// Package interpreter resolves destination names to sets of weighted
// endpoints. An interpreter is a watch, not a lookup: Resolve starts
// delivering resolutions for a name to a Sink and keeps delivering changes
// until the context ends. The binder calls Resolve once per name, the first
// time a connection asks for it; the balancer is the Sink.
//
// Resolve is called from an event loop and must not block: an interpreter
// that needs the network or the disk does that work on its own goroutine and
// calls the Sink from there.
package interpreter

import (
	"context"
	"net/netip"
)

// Endpoint is one address a name resolves to, with its relative weight
// (1 when not given; always > 0).
type Endpoint struct {
	Addr   netip.AddrPort
	Weight float64
}

// Resolution is the complete set of endpoints a name resolves to at one
// moment. An empty set is a valid answer: connections to the name fail fast.
type Resolution struct {
	Endpoints []Endpoint
}

// Sink receives resolutions. Update may be called from any goroutine; it
// must not block for long and must not keep the slice it is given.
type Sink interface {
	Update(Resolution)
}

// Interpreter starts a watch of name that feeds sink until ctx is done.
// Resolve must not block. An error means the name cannot be watched at all.
type Interpreter interface {
	Resolve(ctx context.Context, name string, sink Sink) error
}
