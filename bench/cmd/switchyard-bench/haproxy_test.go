package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHAProxyConfig(t *testing.T) {
	cfg := haproxyConfig(testRoutes)
	for _, want := range []string{
		"mode tcp", "option splice-auto", "maxconn 9900", "timeout client 10m", "timeout server 10m",
		// 20000 - 2*9900 - 100 leaves 100 fds: 50 pipes.
		"maxpipes 50",
		"frontend iperf\n    bind 127.0.0.1:7474\n    default_backend iperf",
		"backend iperf\n    server iperf 127.0.0.1:5201",
		"frontend echo\n    bind 127.0.0.1:7475\n    default_backend echo",
		"backend echo\n    server echo 127.0.0.1:7007",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("haproxy config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "nbthread") {
		t.Errorf("haproxy config sets nbthread; want the default thread count:\n%s", cfg)
	}
	small := testRoutes
	small.maxConns = 600
	if cfg := haproxyConfig(small); !strings.Contains(cfg, "maxpipes 4096") {
		t.Errorf("maxpipes not capped at 4096:\n%s", cfg)
	}
	checkWithTool(t, "haproxy", func(dir string) []string {
		path := filepath.Join(dir, "haproxy.cfg")
		os.WriteFile(path, []byte(cfg), 0o644)
		return []string{"haproxy", "-c", "-q", "-f", path}
	})
}
