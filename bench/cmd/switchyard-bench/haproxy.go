package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// haproxyProxy runs HAProxy in TCP mode with its default thread count
// (one per CPU).
type haproxyProxy struct{}

func (haproxyProxy) launch(dir string, r routes) (launch, error) {
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(r)), 0o644); err != nil {
		return launch{}, err
	}
	return launch{argv: []string{"haproxy", "-db", "-f", cfg}, anyExitOnStop: true, edge: r.edge()}, nil
}

// haproxyConfig forwards both routes. HAProxy sizes its fd needs as
// 2 per connection plus 2 per pipe and will not start beyond the hard
// limit, so maxpipes takes what maxconn leaves of nofile.
func haproxyConfig(r routes) string {
	maxPipes := (int64(r.nofile) - 2*int64(r.maxConns) - 100) / 2
	maxPipes = min(max(maxPipes, 16), 4096)
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn %d
    maxpipes %d

defaults
    mode tcp
    option splice-auto
    maxconn %d
    timeout connect 5s
    timeout client 10m
    timeout server 10m
`, r.maxConns, maxPipes, r.maxConns)
	for _, fe := range []struct{ name, listen, upstream string }{
		{"iperf", r.iperfListen, r.iperfUpstream},
		{"echo", r.echoListen, r.echoUpstream},
	} {
		fmt.Fprintf(&b, `
frontend %[1]s
    bind %[2]s
    default_backend %[1]s

backend %[1]s
    server %[1]s %[3]s
`, fe.name, fe.listen, fe.upstream)
	}
	if r.edge() {
		b.WriteString(haproxyEdge(r))
	}
	return b.String()
}

// haproxyEdge is the edge frontends, as routerConfig sets up Switchyard's:
// the standard SNI routing of a TLS passthrough (wait up to the
// inspect-delay for a ClientHello, route by its server name; a name
// without a backend is refused), to a backend named like the name
// Switchyard routes to; and a bind that takes a PROXY header (HAProxy's
// accept-proxy takes v1 and v2, from any peer) in front of the echo
// backend.
func haproxyEdge(r routes) string {
	return fmt.Sprintf(`
frontend sni
    bind %[1]s
    tcp-request inspect-delay %[2]s
    tcp-request content accept if { req_ssl_hello_type 1 }
    use_backend %[3]s if { req_ssl_sni -i %[3]s }

backend %[3]s
    server %[3]s %[4]s

frontend proxy
    bind %[5]s accept-proxy
    default_backend echo
`, r.sniListen, haproxyDuration(handshakeTimeout), benchServerName, r.echoUpstream, r.proxyListen)
}
