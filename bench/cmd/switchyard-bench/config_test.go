package main

import (
	"strings"
	"testing"
)

var testRoutes = routes{
	iperfListen: "127.0.0.1:7474", iperfUpstream: "127.0.0.1:5201",
	echoListen: "127.0.0.1:7475", echoUpstream: "127.0.0.1:7007",
	maxConns: 9900, nofile: 20000,
}

func TestRouterConfig(t *testing.T) {
	cfg := routerConfig(testRoutes, 2, 0)
	for _, want := range []string{
		"workers = 2",
		`"/svc/iperf" = ["127.0.0.1:5201"]`,
		`"/svc/echo" = ["127.0.0.1:7007"]`,
		"listen = \"127.0.0.1:7474\"\n  dst = \"/svc/iperf\"",
		"listen = \"127.0.0.1:7475\"\n  dst = \"/svc/echo\"",
		"max_connections = 9900",
		`idle_timeout = "10m"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "pipe_size") {
		t.Errorf("pipe size 0 should leave pipe_size out:\n%s", cfg)
	}
	if cfg := routerConfig(testRoutes, 0, 65536); !strings.Contains(cfg, "pipe_size = 65536\n") {
		t.Errorf("config lacks pipe_size:\n%s", cfg)
	}
}
