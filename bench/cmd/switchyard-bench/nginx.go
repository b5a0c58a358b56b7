package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// nginxProxy runs nginx's stream module with one worker per CPU.
type nginxProxy struct {
	// loadModule is the stream module's .so when nginx was built with
	// --with-stream=dynamic, empty when it is built in.
	loadModule string
}

func (p nginxProxy) launch(dir string, r routes) (launch, error) {
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(nginxConfig(r, dir, p.loadModule)), 0o644); err != nil {
		return launch{}, err
	}
	// -e: the error log before the configuration is read, which would
	// otherwise go to the system's log file.
	argv := []string{"nginx", "-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", cfg}
	l := launch{argv: argv, anyExitOnStop: true}
	if r.edge() {
		l.noEdge = "connrate-edge compares switchyard with haproxy; nginx is not set up for it"
	}
	return l, nil
}

// nginxConfig forwards both routes. Each worker may end up with every
// connection, and counts both sides of each, so worker_connections gets
// the whole open-files limit.
func nginxConfig(r routes, dir, loadModule string) string {
	var b strings.Builder
	if loadModule != "" {
		fmt.Fprintf(&b, "load_module %s;\n", loadModule)
	}
	fmt.Fprintf(&b, `daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile %[1]d;
pid %[2]s;
error_log %[3]s warn;
events {
    worker_connections %[1]d;
}
stream {
`, r.nofile, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"))
	for _, s := range []struct{ listen, upstream string }{{r.iperfListen, r.iperfUpstream}, {r.echoListen, r.echoUpstream}} {
		fmt.Fprintf(&b, `    server {
        listen %s;
        proxy_pass %s;
        proxy_connect_timeout 5s;
        proxy_timeout 10m;
    }
`, s.listen, s.upstream)
	}
	b.WriteString("}\n")
	return b.String()
}
