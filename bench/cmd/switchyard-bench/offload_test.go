package main

import (
	"io"
	"strings"
	"testing"

	"github.com/switchyard-proxy/switchyard/router"
)

func TestParseFlagsOffload(t *testing.T) {
	o, err := parseFlags([]string{"-switchyard", "switchyard=bin/switchyard", "-switchyard", "sockmap=bin/switchyard",
		"-offload", "sockmap=sockmap"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.offloads["sockmap"] != "sockmap" || o.offloads["switchyard"] != "" {
		t.Errorf("offloads = %v, want sockmap for the build sockmap only", o.offloads)
	}
	for _, args := range [][]string{
		{"-offload", "nosuch=sockmap"},
		{"-offload", "sockmap"},
		{"-offload", "switchyard="},
		{"-offload", "sockmap=sockmap:"},
		{"-offload", "sockmap=sockmap:x"},
		{"-offload", "sockmap=sockmap:08"},
		{"-offload", "sockmap=sockmap:10001"},
	} {
		if _, err := parseFlags(args, noEnv, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

// Every server of the configuration gets the key, and the router takes it.
func TestRouterConfigOffload(t *testing.T) {
	r := testRoutes
	r.sniListen, r.proxyListen = "127.0.0.1:7476", "127.0.0.1:7477"
	text := routerConfigOffload(r, 1, 0, "sockmap")
	if n := strings.Count(text, `offload = "sockmap"`); n != 4 {
		t.Errorf("offload on %d servers, want 4:\n%s", n, text)
	}
	cfg, err := router.Parse([]byte(noAdmin + text))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range cfg.Routers[0].Servers {
		if s.Offload != router.OffloadSockmap {
			t.Errorf("server %d: offload %q", i, s.Offload)
		}
	}
	cfg, err = router.Parse([]byte(noAdmin + routerConfigOffload(r, 1, 0, "sockmap:0")))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range cfg.Routers[0].Servers {
		if s.Offload != router.OffloadSockmap || s.OffloadAfter != 0 {
			t.Errorf("server %d: offload %q after %d, want sockmap after 0", i, s.Offload, s.OffloadAfter)
		}
	}
	if strings.Contains(routerConfig(testRoutes, 1, 0), "offload") {
		t.Errorf("routerConfig without an offload has the key")
	}
}
