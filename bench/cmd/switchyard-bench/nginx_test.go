package main

import (
	"errors"
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

func TestNginxStreamModule(t *testing.T) {
	have := func(paths ...string) func(string) bool {
		return func(p string) bool {
			for _, q := range paths {
				if p == q {
					return true
				}
			}
			return false
		}
	}
	tests := []struct {
		name    string
		v       string
		exists  func(string) bool
		want    string
		wantErr bool
	}{
		{"dynamic, Debian", "configure arguments: --prefix=/usr/share/nginx --modules-path=/usr/lib/nginx/modules --with-stream=dynamic --with-stream_ssl_module",
			have("/usr/lib/nginx/modules/ngx_stream_module.so"), "/usr/lib/nginx/modules/ngx_stream_module.so", false},
		{"dynamic, own modules path", "--modules-path=/opt/ngx/mod --with-stream=dynamic",
			have("/opt/ngx/mod/ngx_stream_module.so", "/usr/lib/nginx/modules/ngx_stream_module.so"), "/opt/ngx/mod/ngx_stream_module.so", false},
		{"dynamic, module not installed", "--with-stream=dynamic", have(), "", true},
		{"built in", "--with-http_ssl_module --with-stream --with-stream_ssl_module", have(), "", false},
		{"none", "--with-http_ssl_module --with-stream_ssl_preread_module", have(), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nginxStreamModule(tt.v, tt.exists)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("nginxStreamModule = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errNoStream) {
				t.Fatalf("error %v is not errNoStream", err)
			}
		})
	}
}
