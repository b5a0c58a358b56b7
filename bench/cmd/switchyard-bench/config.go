package main

import (
	"fmt"
	"strings"
)

// routerConfig is a switchyard configuration with one router serving all
// routes. pipeSize 0 leaves runtime.pipe_size at the router's default.
//
// The edge servers, when r has them, are set up as haproxyConfig sets up
// HAProxy's: one routes by the server name of the ClientHello
// ("/svc/{sni}"; the static name "/svc/bench.test" is the echo server),
// the other takes a PROXY v2 header from loopback and goes where the
// plain echo route goes. Both wait handshakeTimeout for what they read,
// like HAProxy's inspect-delay.
func routerConfig(r routes, workers, pipeSize int) string {
	return routerConfigOffload(r, workers, pipeSize, "")
}

// routerConfigOffload is routerConfig with offload = offload on every
// server; "": the key left out. An offload of "KIND:AFTER" sets
// offload_after = AFTER as well.
func routerConfigOffload(r routes, workers, pipeSize int, offload string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[runtime]\nworkers = %d\n", workers)
	if pipeSize > 0 {
		fmt.Fprintf(&b, "pipe_size = %d\n", pipeSize)
	}
	fmt.Fprintf(&b, `
[[routers]]
label = "bench"
  [routers.interpreter]
  kind = "static"
  [routers.interpreter.names]
  "/svc/iperf" = [%q]
  "/svc/echo" = [%q]
`, r.iperfUpstream, r.echoUpstream)
	if r.edge() {
		fmt.Fprintf(&b, "  %q = [%q]\n", "/svc/"+benchServerName, r.echoUpstream)
	}
	var off string
	if offload != "" {
		kind, after, ok := strings.Cut(offload, ":")
		off = fmt.Sprintf("  offload = %q\n", kind)
		if ok {
			off += fmt.Sprintf("  offload_after = %s\n", after)
		}
	}
	servers := []struct{ listen, dst, extra string }{{r.iperfListen, "/svc/iperf", off}, {r.echoListen, "/svc/echo", off}}
	if r.edge() {
		hs := fmt.Sprintf("  handshake_timeout = %q\n", handshakeTimeout.String())
		servers = append(servers,
			struct{ listen, dst, extra string }{r.sniListen, "/svc/{sni}", hs + off},
			struct{ listen, dst, extra string }{r.proxyListen, "/svc/echo",
				fmt.Sprintf("  proxy_protocol = \"v2\"\n  proxy_protocol_from = [%q]\n", proxyFrom) + hs + off})
	}
	for _, s := range servers {
		fmt.Fprintf(&b, `
  [[routers.servers]]
  listen = %q
  dst = %q
%s  idle_timeout = "10m"
  max_connections = %d
`, s.listen, s.dst, s.extra, r.maxConns)
	}
	return b.String()
}
