package main

import (
	"fmt"
	"strings"
)

// routerConfig is a switchyard configuration forwarding listen to upstream.
// pipeSize 0 leaves runtime.pipe_size at the router's default.
func routerConfig(listen, upstream string, workers, pipeSize int) string {
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
  [[routers.servers]]
  listen = %q
  dst = "/svc/iperf"
`, upstream, listen)
	return b.String()
}
