package main

import (
	"fmt"
	"strings"
)

// routerConfig is a switchyard configuration with one router serving both
// routes. pipeSize 0 leaves runtime.pipe_size at the router's default.
func routerConfig(r routes, workers, pipeSize int) string {
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
	for _, s := range []struct{ listen, dst string }{{r.iperfListen, "/svc/iperf"}, {r.echoListen, "/svc/echo"}} {
		fmt.Fprintf(&b, `
  [[routers.servers]]
  listen = %q
  dst = %q
  idle_timeout = "10m"
  max_connections = %d
`, s.listen, s.dst, r.maxConns)
	}
	return b.String()
}
