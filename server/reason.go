package server

// Reason is why a connection ended. Every connection ends with exactly one.
type Reason uint8

const (
	ReasonEOF              Reason = iota // both sides closed cleanly
	ReasonReset                          // a side reset or failed
	ReasonIdleTimeout                    // no bytes either way for idle_timeout
	ReasonLifetime                       // the stream outlived lifetime
	ReasonConnectTimeout                 // no upstream established by connect_timeout
	ReasonConnectFailed                  // every connect attempt failed
	ReasonNoEndpoints                    // the destination had no endpoint, does not exist, failed to resolve, or had no answer yet with max_waiters 0
	ReasonWaitersFull                    // max_waiters connections already waited for the name's first answer
	ReasonNamesFull                      // max_names names cached, every one with connections open
	ReasonShutdown                       // the router stopped
	ReasonNoSNI                          // the ClientHello named no server, with no sni_default
	ReasonBadHandshake                   // not TLS, a malformed ClientHello or a malformed PROXY header, with no sni_default
	ReasonHandshakeTimeout               // no complete PROXY header or ClientHello within handshake_timeout
	ReasonProxyRefused                   // a PROXY protocol server's peer is not in proxy_protocol_from
	NumReasons
)

var reasonNames = [NumReasons]string{
	"eof", "reset", "idle_timeout", "lifetime", "connect_timeout",
	"connect_failed", "no_endpoints", "waiters_full", "names_full", "shutdown",
	"no_sni", "bad_handshake", "handshake_timeout", "proxy_refused",
}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}
