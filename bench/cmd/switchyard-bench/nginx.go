package main

import (
	"errors"
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

var errNoStream = errors.New("nginx has no stream module (apt-get install -y libnginx-mod-stream)")

// nginxStreamModule reads `nginx -V` output: the .so to load_module when
// the stream module is dynamic, "" when it is built in, errNoStream when
// there is none. exists tells whether a file exists.
func nginxStreamModule(v string, exists func(string) bool) (string, error) {
	dirs := []string{"/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules"}
	dynamic := false
	for _, f := range strings.Fields(v) {
		switch {
		case f == "--with-stream":
			return "", nil
		case f == "--with-stream=dynamic":
			dynamic = true
		case strings.HasPrefix(f, "--modules-path="):
			dirs = append([]string{strings.TrimPrefix(f, "--modules-path=")}, dirs...)
		}
	}
	if dynamic {
		for _, d := range dirs {
			if so := filepath.Join(d, "ngx_stream_module.so"); exists(so) {
				return so, nil
			}
		}
	}
	return "", errNoStream
}
