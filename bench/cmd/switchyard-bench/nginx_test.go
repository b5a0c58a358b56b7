package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestNginxConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := nginxConfig(testRoutes, dir, "/usr/lib/nginx/modules/ngx_stream_module.so")
	for _, want := range []string{
		"load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n",
		"daemon off;", "master_process on;", "worker_processes auto;",
		"worker_rlimit_nofile 20000;", "worker_connections 20000;",
		"pid " + filepath.Join(dir, "nginx.pid") + ";",
		"error_log " + filepath.Join(dir, "error.log") + " warn;",
		"listen 127.0.0.1:7474;\n        proxy_pass 127.0.0.1:5201;",
		"listen 127.0.0.1:7475;\n        proxy_pass 127.0.0.1:7007;",
		"proxy_timeout 10m;",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("nginx config lacks %q:\n%s", want, cfg)
		}
	}
	if cfg := nginxConfig(testRoutes, dir, ""); strings.Contains(cfg, "load_module") {
		t.Errorf("built-in stream module, yet load_module:\n%s", cfg)
	}
	sys := hostSystem()
	p, err := sys.nginx()
	if err != nil {
		t.Skip(err)
	}
	checkWithTool(t, "nginx", func(dir string) []string {
		l, err := p.launch(dir, testRoutes)
		if err != nil {
			t.Fatal(err)
		}
		return append(l.argv, "-t", "-q")
	})
}
