package server

import (
	"net/netip"
	"time"
)

// Envelope is what the router knows about an accepted connection before it
// is bound to a destination. Times are netpoll.Monotonic nanoseconds.
type Envelope struct {
	Source netip.AddrPort // the client's address
	Server *Server        // the server that accepted it
	// Counters are the accepting loop's counters of Server: the
	// connection counts into them, on that loop.
	Counters *Counters
	Dst      string // destination name to bind; with Handshake.SNI, a template with "{sni}"
	// Handshake is what to read before routing; nil: nothing.
	Handshake *Handshake

	Accepted         int64         // accept time
	ConnectDeadline  int64         // upstream must be established by then
	LifetimeDeadline int64         // the stream ends then; 0: no limit
	IdleTimeout      time.Duration // ends after no bytes for this long; 0: no limit
	Offload          bool          // the kernel moves the bytes once established (Route.Offload)
	OffloadAfter     uint16        // batches moved on the loop before that (Route.OffloadAfter)
}
