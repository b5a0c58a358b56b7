package main

import (
	"strings"
	"testing"
)

func TestRouterConfig(t *testing.T) {
	cfg := routerConfig("127.0.0.1:7474", "127.0.0.1:5201", 2, 0)
	for _, want := range []string{"workers = 2", `listen = "127.0.0.1:7474"`, `"/svc/iperf" = ["127.0.0.1:5201"]`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "pipe_size") {
		t.Errorf("pipe size 0 should leave pipe_size out:\n%s", cfg)
	}
	if cfg := routerConfig("a", "b", 0, 65536); !strings.Contains(cfg, "pipe_size = 65536\n") {
		t.Errorf("config lacks pipe_size:\n%s", cfg)
	}
}
