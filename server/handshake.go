package server

import (
	"net/netip"
	"time"
)

// Handshake is what a server's connections send before they can be
// routed: a PROXY protocol header, a TLS ClientHello whose server name
// completes the destination, or both, the header first. The router reads
// it on the connection's loop (see router's handshake). Immutable.
type Handshake struct {
	// Timeout bounds the handshake, from the accept.
	Timeout time.Duration
	// Proxy is the PROXY header versions accepted; 0: no header. Only
	// the peers in From may send one; the others are refused.
	Proxy ProxyAllow
	From  []netip.Prefix
	// SNI: the Route's Dst has "{sni}", to be replaced by the
	// ClientHello's server name; Default is the destination of the
	// connections whose ClientHello names none or is not one ("": they
	// are closed).
	SNI     bool
	Default string
}
